CREATE OR REPLACE FUNCTION wlsync._drain_lock(p_mode text, p_consumer integer)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._drain_lock(p_mode, p_consumer)
--   The advisory lock that keeps a consumer's consistent-mode drain alone on
--   its queue (README, "Consistent mode"): its snapshot batch must take every
--   event its snapshot sees, so no other claim of the consumer may hold (SKIP
--   LOCKED) or consume any. One lock per consumer.
--     'take_exclusive'  session level, only if free: the consistent driver's
--                       claim connection, for as long as it lives (a
--                       session that already holds it takes nothing more);
--     'held_exclusive'  whether this session holds it exclusively;
--     'try_shared'      transaction level, only if no consistent driver holds
--                       it: every READ COMMITTED claim, so that a consistent
--                       driver and normal claims exclude each other.
-- Parameters: p_mode  one of the above; p_consumer  a consumer_id
-- Returns:    whether the lock is held
-- Raises:     22023 for another mode.
-- Touches:    pg_advisory_lock / pg_advisory_xact_lock_shared on the key
--             (7749003, p_consumer) of this database; reads pg_locks
--             ('held_exclusive', 'take_exclusive').
-- ---------------------------------------------------------------------------
DECLARE
    c_class constant integer := 7749003;  -- 'wlsync consistent drain', arbitrary and fixed (7749001: capture, 7749002: maintenance)
    v_held boolean;
BEGIN
    CASE p_mode
        WHEN 'held_exclusive', 'take_exclusive' THEN
            -- A two-integer advisory key shows in pg_locks as classid, objid, objsubid 2.
            v_held := EXISTS (SELECT 1 FROM pg_locks AS l
                              WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                                AND l.database = (SELECT d.oid FROM pg_database AS d
                                                  WHERE d.datname = current_database())
                                AND l.classid = c_class::oid AND l.objid = p_consumer::oid
                                AND l.objsubid = 2 AND l.mode = 'ExclusiveLock' AND l.granted);
            IF p_mode = 'held_exclusive' OR v_held THEN
                RETURN v_held;
            END IF;
            RETURN pg_try_advisory_lock(c_class, p_consumer);
        WHEN 'try_shared' THEN RETURN pg_try_advisory_xact_lock_shared(c_class, p_consumer);
        ELSE RAISE EXCEPTION 'wlsync._drain_lock: unknown mode %', p_mode
                 USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END
$function$;

COMMENT ON FUNCTION wlsync._drain_lock(text, integer) IS
    'Internal: advisory lock keeping a consistent-mode drain alone on the queue';
