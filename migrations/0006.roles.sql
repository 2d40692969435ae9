-- Least privilege: two group roles (NOLOGIN; grant them to login roles).
--   wlsync_driver  claims, reads tracked rows, manages dead letters, all through
--                  wlsync's SECURITY DEFINER functions: no rights on the queue,
--                  the tracked tables, the trigger functions or other schemas.
--   wlsync_admin   also tracks, untracks and backfills tables.
-- Writers of tracked tables need nothing from wlsync. The EXECUTE grants are
-- (re)applied by post-apply.py with the functions. Roles are cluster-wide:
-- an existing role of that name is reused.
-- Records the function changes: track, untrack, backfill, tracked_columns,
-- arm_wakeup and disarm_wakeup become SECURITY DEFINER.
-- depends: 0005.dead-letters
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wlsync_driver') THEN
        CREATE ROLE wlsync_driver NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wlsync_admin') THEN
        CREATE ROLE wlsync_admin NOLOGIN;
    END IF;
END
$roles$;
GRANT USAGE ON SCHEMA wlsync TO wlsync_driver, wlsync_admin;
GRANT SELECT ON wlsync.dead_letters TO wlsync_driver, wlsync_admin;
