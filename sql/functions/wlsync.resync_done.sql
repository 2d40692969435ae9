CREATE OR REPLACE FUNCTION wlsync.resync_done(p_consumer text, p_requested_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.resync_done(p_consumer, p_requested_at)
--   A driver rebuilt its consumer's WL (verify --repair: every key that
--   differs is enqueued again, those WL holds and MDB no longer has included)
--   after the resync requested at p_requested_at (wlsync.consumer_work):
--   clears the request, unless events were dropped again since (a later
--   request stands, and the driver rebuilds again).
-- Parameters: p_consumer      the consumer
--             p_requested_at  resync_requested_at as the driver read it
--                             before it started rebuilding
-- Returns:    whether the request was cleared
-- Raises:     22023 when there is no such consumer.
-- Touches:    updates wlsync.consumer.
-- ---------------------------------------------------------------------------
DECLARE
    v_cleared bigint;
BEGIN
    UPDATE wlsync.consumer SET resync_requested_at = NULL
    WHERE consumer_id = wlsync._consumer_id(p_consumer) AND resync_requested_at = p_requested_at;
    GET DIAGNOSTICS v_cleared = ROW_COUNT;
    RETURN v_cleared > 0;
END
$function$;

COMMENT ON FUNCTION wlsync.resync_done(text, timestamptz) IS
    'Driver: clear a consumer''s resync request once its WL was rebuilt (unless events were dropped again since)';
