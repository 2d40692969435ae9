CREATE OR REPLACE FUNCTION wlsync._current_queue()
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._current_queue()
--   The ring slot that SQL enqueuers (TRUNCATE capture, backfill,
--   enqueue_keys, record_failure) insert into. Takes the capture lock in
--   shared mode until the caller's transaction ends, so no rotation can
--   retire that slot before the caller's rows are committed in it.
-- Returns:    the slot's table name, quoted and qualified (wlsync.queue_1)
-- Touches:    shared advisory lock (wlsync._capture_lock); reads wlsync.queue_slot.
-- ---------------------------------------------------------------------------
BEGIN
    PERFORM wlsync._capture_lock('shared');
    RETURN (SELECT format('wlsync.%I', 'queue_' || s.slot) FROM wlsync.queue_slot AS s WHERE s.state = 'current');
END
$function$;

COMMENT ON FUNCTION wlsync._current_queue() IS
    'Internal: the ring slot SQL enqueuers insert into (holds the capture lock shared)';
