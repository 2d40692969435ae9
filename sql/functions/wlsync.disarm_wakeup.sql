CREATE OR REPLACE FUNCTION wlsync.disarm_wakeup()
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.disarm_wakeup()
--   Capture functions stop sending NOTIFY wlsync_v1. A driver calls it when
--   it finds itself busy (a notified drain took at least a full batch): under
--   load notifications are useless and NOTIFY's commit-time global lock costs
--   writers most of their throughput. A no-op when not armed.
-- Returns:    void
-- Touches:    wlsync.capture_state; regenerates every capture function
--             (pg_proc) when it was armed. Skipped (stays armed until its
--             period ends) while another session holds the capture lock.
-- ---------------------------------------------------------------------------
BEGIN
    IF (SELECT c.notify_until > now() FROM wlsync.capture_state AS c)
       AND wlsync._capture_lock('try_exclusive') THEN
        UPDATE wlsync.capture_state SET notify_until = NULL;
        PERFORM wlsync._regenerate_captures();
    END IF;
END
$function$;

COMMENT ON FUNCTION wlsync.disarm_wakeup() IS
    'Driver: capture functions stop sending NOTIFY wlsync_v1 (a driver is busy draining)';
