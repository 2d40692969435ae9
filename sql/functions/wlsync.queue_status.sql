CREATE OR REPLACE FUNCTION wlsync.queue_status()
RETURNS TABLE (table_schema name, table_name name, pending_events bigint,
               oldest_enqueued_at timestamptz, oldest_age interval,
               retrying_keys bigint, dead_letters bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.queue_status()
--   What is waiting, without consuming it: one row per tracked table with its
--   pending events and the age of the oldest (NULL when none), and its keys
--   WL rejected (wlsync.dead_letters): retrying, and parked. Events held by a
--   driver's open batch still count until that batch commits.
-- Returns:    table_schema, table_name, pending_events, oldest_enqueued_at,
--             oldest_age (now() - oldest_enqueued_at), retrying_keys,
--             dead_letters (parked keys)
-- Touches:    reads the queue ring through wlsync.queue (a full scan: it counts),
--             wlsync.tracked_table and wlsync.dead_letter; takes no row locks.
-- ---------------------------------------------------------------------------
BEGIN
    RETURN QUERY
    SELECT n.nspname, c.relname, coalesce(q.pending, 0), q.oldest, now() - q.oldest,
           (SELECT count(*) FROM wlsync.dead_letter AS d WHERE d.table_id = t.table_id AND d.parked_at IS NULL),
           (SELECT count(*) FROM wlsync.dead_letter AS d WHERE d.table_id = t.table_id AND d.parked_at IS NOT NULL)
    FROM wlsync.tracked_table AS t
    JOIN pg_class AS c ON c.oid = t.relid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN (SELECT qq.table_id, count(*) AS pending, min(qq.enqueued_at) AS oldest
               FROM wlsync.queue AS qq GROUP BY qq.table_id) AS q ON q.table_id = t.table_id
    ORDER BY n.nspname, c.relname;
END
$function$;

COMMENT ON FUNCTION wlsync.queue_status() IS
    'Pending events and age of the oldest, per tracked table (reads only)';
