CREATE OR REPLACE FUNCTION wlsync.arm_wakeup(p_for interval)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.arm_wakeup(p_for)
--   Called by a driver that found the queue empty, just before it sleeps on
--   LISTEN wlsync_v1: until now() + p_for, every captured change also sends a
--   NOTIFY wlsync_v1 (empty payload). The end of that period is a constant of
--   the regenerated capture functions (wlsync._install_capture), so a writer
--   pays no table read for it; while no driver is asleep writers send no
--   NOTIFY, so a busy MDB never pays NOTIFY's commit-time global lock. The
--   period ends by itself if the sleeping driver dies. Arming again while
--   more than half of p_for is left changes nothing (no regeneration), so a
--   driver woken often by a trickle of changes does not rewrite functions.
--   After arming, the driver claims once more: a change committed while it
--   was arming did not notify.
-- Parameters: p_for  how long the arming lasts (the driver passes twice its
--             sweep interval)
-- Returns:    true when armed; false when another session holds the capture
--             lock (a rotation, a track, a backfill in flight): the driver
--             then sleeps briefly instead of relying on a notification.
-- Raises:     22023 when p_for is not positive.
-- Touches:    wlsync.capture_state (autocommit, brief); regenerates every
--             capture function (pg_proc) when the period is renewed.
-- ---------------------------------------------------------------------------
BEGIN
    IF p_for IS NULL OR p_for <= interval '0' THEN
        RAISE EXCEPTION 'wlsync.arm_wakeup: p_for must be a positive interval, got %', p_for
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT c.notify_until >= now() + p_for / 2 FROM wlsync.capture_state AS c) THEN
        RETURN true;
    END IF;
    IF NOT wlsync._capture_lock('try_exclusive') THEN
        RETURN false;
    END IF;
    UPDATE wlsync.capture_state SET notify_until = now() + p_for;
    PERFORM wlsync._regenerate_captures();
    RETURN true;
END
$function$;

COMMENT ON FUNCTION wlsync.arm_wakeup(interval) IS
    'Driver: capture functions NOTIFY wlsync_v1 for the given time (a driver is asleep); false if it could not arm now';
