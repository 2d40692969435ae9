CREATE OR REPLACE FUNCTION wlsync._wake_drivers()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._wake_drivers()
--   NOTIFY wlsync_v1 if a driver sleeps waiting for it (wlsync.arm_wakeup),
--   for the enqueuers off the hot path (TRUNCATE, backfill, enqueue_keys); the
--   generated row capture triggers inline the same test.
-- Touches:    reads wlsync.wakeup; NOTIFY takes a global lock at commit.
-- ---------------------------------------------------------------------------
BEGIN
    IF (SELECT w.armed_until > now() FROM wlsync.wakeup AS w) THEN
        PERFORM pg_notify('wlsync_v1', '');
    END IF;
END
$function$;

COMMENT ON FUNCTION wlsync._wake_drivers() IS
    'Internal: NOTIFY wlsync_v1 when a driver is asleep';
