CREATE OR REPLACE FUNCTION wlsync._drain_lock(p_mode text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._drain_lock(p_mode)
--   The advisory lock that keeps a consistent-mode drain alone on the queue
--   (README, "Consistent mode"): its snapshot batch must take every event its
--   snapshot sees, so no other claim may hold (SKIP LOCKED) or consume any.
--     'take_exclusive'  session level, only if free: the consistent driver's
--                       claim connection, for as long as it lives (a
--                       session that already holds it takes nothing more);
--     'held_exclusive'  whether this session holds it exclusively;
--     'try_shared'      transaction level, only if no consistent driver holds
--                       it: every READ COMMITTED claim, so that a consistent
--                       driver and normal claims exclude each other.
-- Parameters: p_mode  one of the above
-- Returns:    whether the lock is held
-- Raises:     22023 for another mode.
-- Touches:    pg_advisory_lock / pg_advisory_xact_lock_shared on one key of
--             this database; reads pg_locks ('held_exclusive', 'take_exclusive').
-- ---------------------------------------------------------------------------
DECLARE
    c_key constant bigint := 7749003::bigint;  -- 'wlsync consistent drain', arbitrary and fixed (7749001: capture, 7749002: maintenance)
    v_held boolean;
BEGIN
    CASE p_mode
        WHEN 'held_exclusive', 'take_exclusive' THEN
            -- An advisory bigint key shows in pg_locks as classid (high half),
            -- objid (low half), objsubid 1.
            v_held := EXISTS (SELECT 1 FROM pg_locks AS l
                              WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                                AND l.database = (SELECT d.oid FROM pg_database AS d
                                                  WHERE d.datname = current_database())
                                AND l.classid = (c_key >> 32)::oid AND l.objid = (c_key & 4294967295)::oid
                                AND l.objsubid = 1 AND l.mode = 'ExclusiveLock' AND l.granted);
            IF p_mode = 'held_exclusive' OR v_held THEN
                RETURN v_held;
            END IF;
            RETURN pg_try_advisory_lock(c_key);
        WHEN 'try_shared' THEN RETURN pg_try_advisory_xact_lock_shared(c_key);
        ELSE RAISE EXCEPTION 'wlsync._drain_lock: unknown mode %', p_mode
                 USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END
$function$;

COMMENT ON FUNCTION wlsync._drain_lock(text) IS
    'Internal: advisory lock keeping a consistent-mode drain alone on the queue';
