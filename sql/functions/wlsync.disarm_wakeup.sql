CREATE OR REPLACE FUNCTION wlsync.disarm_wakeup()
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.disarm_wakeup()
--   Called by a driver woken by NOTIFY wlsync_v1, before it drains: writers
--   stop notifying until a driver sleeps again (wlsync.arm_wakeup).
-- Returns:    void
-- Touches:    updates the single row of wlsync.wakeup when it is armed.
-- ---------------------------------------------------------------------------
BEGIN
    UPDATE wlsync.wakeup SET armed_until = NULL WHERE armed_until IS NOT NULL;
END
$function$;

COMMENT ON FUNCTION wlsync.disarm_wakeup() IS
    'Driver: capture triggers stop sending NOTIFY wlsync_v1 (a driver is draining)';
