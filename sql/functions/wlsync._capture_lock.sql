CREATE OR REPLACE FUNCTION wlsync._capture_lock(p_mode text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._capture_lock(p_mode)
--   The transaction-level advisory lock that keeps the capture functions and
--   the ring slot writers insert into in step:
--     'exclusive'      wait for it: changing what capture functions are built
--                      from (wlsync.track);
--     'try_exclusive'  take it only if free: rotation and the wake-up, which
--                      a driver may as well do next time;
--     'shared'         wait for it: enqueuing through SQL (TRUNCATE capture,
--                      backfill, enqueue_keys), whose rows must land in the
--                      slot that is current until they commit;
--     'try_shared'     take it only if no change is in flight: maintain_queue,
--                      to know that the last rotation has released it.
--   Row writers never take it: their capture functions carry the slot.
-- Parameters: p_mode  one of the above
-- Returns:    whether the lock is held (false only for the 'try_' modes)
-- Raises:     22023 for another mode.
-- Touches:    pg_advisory_xact_lock* on one key of this database.
-- ---------------------------------------------------------------------------
DECLARE
    c_key constant bigint := 7749001::bigint;  -- 'wlsync capture', arbitrary and fixed
BEGIN
    CASE p_mode
        WHEN 'exclusive' THEN PERFORM pg_advisory_xact_lock(c_key);
        WHEN 'try_exclusive' THEN RETURN pg_try_advisory_xact_lock(c_key);
        WHEN 'shared' THEN PERFORM pg_advisory_xact_lock_shared(c_key);
        WHEN 'try_shared' THEN RETURN pg_try_advisory_xact_lock_shared(c_key);
        ELSE RAISE EXCEPTION 'wlsync._capture_lock: unknown mode %', p_mode
                 USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    RETURN true;
END
$function$;

COMMENT ON FUNCTION wlsync._capture_lock(text) IS
    'Internal: advisory lock serialising capture function changes against SQL enqueuers';
