CREATE OR REPLACE FUNCTION wlsync.consumer_work(p_consumer text DEFAULT 'default')
RETURNS TABLE (resync_requested_at timestamptz, dropped_events bigint, backfill_tables regclass[])
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.consumer_work(p_consumer DEFAULT 'default')
--   What a consumer's driver must do besides draining: rebuild its WL after
--   its pending events were dropped (resync_requested_at, see
--   wlsync.maintain_queue's max_pending; then wlsync.resync_done), and run
--   the backfill passes still incomplete (wlsync.add_consumer starts them).
--   Cheap: drivers call it when they connect and every few seconds.
-- Parameters: p_consumer  the consumer; default 'default'
-- Returns:    one row: resync_requested_at (NULL: none needed),
--             dropped_events (since the consumer was created), backfill_tables
--             (tables with an incomplete pass; empty when none)
-- Raises:     22023 when there is no such consumer.
-- Touches:    reads wlsync.consumer and wlsync.backfill_state.
-- ---------------------------------------------------------------------------
DECLARE
    v_id integer := wlsync._consumer_id(p_consumer);
BEGIN
    RETURN QUERY
    SELECT c.resync_requested_at, c.dropped_events,
           ARRAY(SELECT t.relid::regclass FROM wlsync.backfill_state AS b
                 JOIN wlsync.tracked_table AS t ON t.table_id = b.table_id
                 WHERE b.consumer_id = v_id AND b.completed_at IS NULL ORDER BY t.table_id)
    FROM wlsync.consumer AS c WHERE c.consumer_id = v_id;
END
$function$;

COMMENT ON FUNCTION wlsync.consumer_work(text) IS
    'Driver: whether the consumer needs a resync (events dropped past max_pending) and which backfill passes to run';
