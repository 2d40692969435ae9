CREATE OR REPLACE FUNCTION wlsync.queue_status(p_consumer text DEFAULT 'default')
RETURNS TABLE (table_schema name, table_name name, pending_events bigint,
               oldest_enqueued_at timestamptz, oldest_age interval,
               retrying_keys bigint, dead_letters bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.queue_status(p_consumer DEFAULT 'default')
--   What is waiting for a consumer, without consuming it: one row per table
--   it receives with its pending events (in its ring, and in the writers'
--   ring not yet fanned out) and the age of the oldest (NULL when none), and
--   its keys WL rejected (wlsync.dead_letters): retrying, and parked. Events
--   held by a driver's open batch still count until that batch commits.
-- Parameters: p_consumer  whose queue (wlsync.consumers); default 'default'
-- Returns:    table_schema, table_name, pending_events, oldest_enqueued_at,
--             oldest_age (now() - oldest_enqueued_at), retrying_keys,
--             dead_letters (parked keys)
-- Raises:     22023 when there is no such consumer.
-- Touches:    reads the rings through wlsync.queue (a full scan: it counts),
--             wlsync.tracked_table and wlsync.dead_letter; takes no row locks.
-- ---------------------------------------------------------------------------
DECLARE
    v_consumer integer := wlsync._consumer_id(p_consumer);
BEGIN
    RETURN QUERY
    SELECT n.nspname, c.relname, coalesce(q.pending, 0), q.oldest, now() - q.oldest,
           (SELECT count(*) FROM wlsync.dead_letter AS d
            WHERE d.consumer_id = v_consumer AND d.table_id = t.table_id AND d.parked_at IS NULL),
           (SELECT count(*) FROM wlsync.dead_letter AS d
            WHERE d.consumer_id = v_consumer AND d.table_id = t.table_id AND d.parked_at IS NOT NULL)
    FROM wlsync.tracked_table AS t
    JOIN wlsync.consumer_table AS ct ON ct.table_id = t.table_id AND ct.consumer_id = v_consumer
    JOIN pg_class AS c ON c.oid = t.relid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN (SELECT qq.table_id, count(*) AS pending, min(qq.enqueued_at) AS oldest
               FROM wlsync.queue AS qq WHERE qq.ring IN (0, v_consumer) GROUP BY qq.table_id) AS q
           ON q.table_id = t.table_id
    ORDER BY n.nspname, c.relname;
END
$function$;

COMMENT ON FUNCTION wlsync.queue_status(text) IS
    'Pending events and age of the oldest, per table of a consumer (reads only)';
