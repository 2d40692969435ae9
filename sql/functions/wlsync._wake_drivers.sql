CREATE OR REPLACE FUNCTION wlsync._wake_drivers()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._wake_drivers()
--   NOTIFY wlsync_v1 if a driver sleeps waiting for it (wlsync.arm_wakeup),
--   for the enqueuers off the hot path (TRUNCATE, backfill, enqueue_keys,
--   retry_dead_letters); the generated capture functions carry the same test
--   as a constant.
-- Touches:    reads wlsync.capture_state; NOTIFY takes a global lock at commit.
-- ---------------------------------------------------------------------------
BEGIN
    IF (SELECT c.notify_until > now() FROM wlsync.capture_state AS c) THEN
        PERFORM pg_notify('wlsync_v1', '');
    END IF;
END
$function$;

COMMENT ON FUNCTION wlsync._wake_drivers() IS
    'Internal: NOTIFY wlsync_v1 when a driver is asleep';
