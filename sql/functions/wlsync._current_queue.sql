CREATE OR REPLACE FUNCTION wlsync._current_queue(p_ring integer DEFAULT 0)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._current_queue(p_ring DEFAULT 0)
--   The slot of a ring that SQL enqueuers insert into: in the writers' ring
--   (0) the TRUNCATE capture; in a consumer's ring backfill, enqueue_keys and
--   wlsync.fan_out. Holds a lock until the caller's transaction ends, so no
--   rotation can retire or seal that slot before the caller's rows are
--   committed in it: the capture lock (wlsync._capture_lock) shared for ring
--   0, the ring's lock (wlsync._ring_lock) shared for a consumer's.
-- Parameters: p_ring  0 (the writers' ring) or a consumer_id
-- Returns:    the slot's table name, quoted and qualified (wlsync.queue_1,
--             wlsync.pending_3_0)
-- Touches:    a shared advisory lock; reads wlsync.queue_slot.
-- ---------------------------------------------------------------------------
BEGIN
    IF p_ring = 0 THEN
        PERFORM wlsync._capture_lock('shared');
    ELSE
        PERFORM wlsync._ring_lock(p_ring, 'shared');
    END IF;
    RETURN (SELECT format('wlsync.%I', wlsync._slot_table(p_ring, s.slot))
            FROM wlsync.queue_slot AS s WHERE s.ring = p_ring AND s.state = 'current');
END
$function$;

COMMENT ON FUNCTION wlsync._current_queue(integer) IS
    'Internal: the ring slot SQL enqueuers insert into (holds a lock that keeps it current until commit)';
