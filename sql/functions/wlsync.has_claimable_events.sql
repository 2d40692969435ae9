CREATE OR REPLACE FUNCTION wlsync.has_claimable_events()
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.has_claimable_events()
--   Whether the queue holds an event that a claim will take sooner or later:
--   any event whose key is not held back by a dead letter that is not due.
--   A claim can come back empty while such events exist, because other
--   batches hold their keys (a key is claimed only with all its events, and
--   two batches can each hold part of a key's events until they commit). A
--   driver that gets an empty claim asks this before it concludes the queue
--   is drained, and claims again shortly if it is not.
-- Returns:    boolean
-- Touches:    reads wlsync.queue up to the first such event, and
--             wlsync.dead_letter; takes no locks.
-- ---------------------------------------------------------------------------
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM wlsync.queue AS q
        WHERE NOT EXISTS (
            SELECT 1 FROM wlsync.dead_letter AS d
            WHERE d.table_id = q.table_id AND d.pk = q.pk AND (d.retry_at IS NULL OR d.retry_at > now())));
END
$function$;

COMMENT ON FUNCTION wlsync.has_claimable_events() IS
    'Driver: whether events remain that a claim will take (an empty claim does not prove the queue drained)';
