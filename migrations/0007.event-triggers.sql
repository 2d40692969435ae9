-- Keep capture in step with DDL on tracked tables: ALTER TABLE re-runs
-- wlsync.track (refusing key changes), DROP TABLE forgets the table, dropping
-- a capture trigger alone is refused (sql/functions/wlsync._on_*.sql).
-- The functions are created here as empty stubs only so that the event
-- triggers can name them; post-apply.py replaces their bodies right after.
-- Event triggers need a superuser: without one they are left out (notice), and
-- the README's rules for DDL on tracked tables must be followed by hand.
-- depends: 0006.roles
DO $events$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE OR REPLACE FUNCTION wlsync._on_ddl_command_end() RETURNS event_trigger
            LANGUAGE plpgsql AS 'BEGIN END';
        CREATE OR REPLACE FUNCTION wlsync._on_sql_drop() RETURNS event_trigger
            LANGUAGE plpgsql AS 'BEGIN END';
        CREATE EVENT TRIGGER wlsync_ddl_command_end ON ddl_command_end
            WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION wlsync._on_ddl_command_end();
        CREATE EVENT TRIGGER wlsync_sql_drop ON sql_drop
            WHEN TAG IN ('DROP TABLE', 'DROP TRIGGER', 'DROP SCHEMA', 'DROP OWNED')
            EXECUTE FUNCTION wlsync._on_sql_drop();
    ELSE
        RAISE NOTICE 'wlsync: not a superuser, DDL event triggers not installed';
    END IF;
END
$events$;
