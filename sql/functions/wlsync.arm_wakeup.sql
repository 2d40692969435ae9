CREATE OR REPLACE FUNCTION wlsync.arm_wakeup(p_for interval)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.arm_wakeup(p_for)
--   Called by a driver that found the queue empty, just before it sleeps on
--   LISTEN wlsync_v1: until now() + p_for, every captured change also sends a
--   NOTIFY wlsync_v1 (empty payload). While no driver is asleep, writers send
--   none, so a busy MDB never pays NOTIFY's commit-time global lock. The expiry
--   stops the NOTIFYs by itself if the sleeping driver dies; a sleeping driver
--   re-arms at every sweep. After arming, the driver claims once more: a change
--   committed while it was arming would otherwise wait for the next sweep.
-- Parameters: p_for  how long the arming lasts (the driver passes twice its
--             sweep interval)
-- Returns:    void
-- Raises:     22023 when p_for is not positive.
-- Touches:    updates the single row of wlsync.wakeup (autocommit, brief).
-- ---------------------------------------------------------------------------
BEGIN
    IF p_for IS NULL OR p_for <= interval '0' THEN
        RAISE EXCEPTION 'wlsync.arm_wakeup: p_for must be a positive interval, got %', p_for
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE wlsync.wakeup SET armed_until = now() + p_for;
END
$function$;

COMMENT ON FUNCTION wlsync.arm_wakeup(interval) IS
    'Driver: ask capture triggers to NOTIFY wlsync_v1 for the given time (a driver is asleep)';
