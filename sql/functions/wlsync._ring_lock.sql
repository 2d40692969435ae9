CREATE OR REPLACE FUNCTION wlsync._ring_lock(p_ring integer, p_mode text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._ring_lock(p_ring, p_mode)
--   The transaction-level advisory lock of a consumer's ring: what
--   wlsync._capture_lock is for the writers' ring.
--     'shared'         wait for it: inserting into the ring's current slot
--                      (wlsync._current_queue);
--     'try_exclusive'  take it only if free: rotating the ring
--                      (wlsync.maintain_queue), which can wait for a later call.
--   p_ring 0 stands for the set of consumers itself: fan-outs hold it shared
--   while they copy events into the rings, add_consumer and remove_consumer
--   take it exclusive ('exclusive': wait for it), so no fan-out copies into a
--   ring being dropped. (An advisory lock: row locks on wlsync.consumer taken
--   by concurrent fan-outs would burn a multixact each.)
-- Parameters: p_ring  a consumer_id, or 0; p_mode  one of the above
-- Returns:    whether the lock is held (false only for 'try_exclusive')
-- Raises:     22023 for another mode.
-- Touches:    pg_advisory_xact_lock_shared / pg_try_advisory_xact_lock on the
--             key (7749004, p_ring) of this database.
-- ---------------------------------------------------------------------------
DECLARE
    c_class constant integer := 7749004;  -- 'wlsync consumer ring', arbitrary and fixed
BEGIN
    CASE p_mode
        WHEN 'shared' THEN PERFORM pg_advisory_xact_lock_shared(c_class, p_ring);
        WHEN 'try_exclusive' THEN RETURN pg_try_advisory_xact_lock(c_class, p_ring);
        WHEN 'exclusive' THEN PERFORM pg_advisory_xact_lock(c_class, p_ring);
        ELSE RAISE EXCEPTION 'wlsync._ring_lock: unknown mode %', p_mode
                 USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    RETURN true;
END
$function$;

COMMENT ON FUNCTION wlsync._ring_lock(integer, text) IS
    'Internal: advisory lock keeping a consumer ring''s current slot in step with its inserters';
