"""Install or upgrade wlsync's schema in MDB (``make migrate``, ``make functions``).

The migrations in ``migrations/`` are applied with yoyo; its post-apply hook
(re)installs every ``sql/functions/*.sql`` file. ``functions`` re-installs the
function files alone, for development.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg

from wlsync_db import UserError, connect, describe, one_line, source_dsn

ROOT = Path(__file__).resolve().parent
# In a checkout the SQL sits at the top of the repository; an installed wheel
# carries it as the data package wlsync_schema, next to this module (pyproject.toml).
INSTALLED = ROOT / "wlsync_schema"
MIGRATIONS = INSTALLED / "migrations" if INSTALLED.is_dir() else ROOT / "migrations"
FUNCTIONS = INSTALLED / "functions" if INSTALLED.is_dir() else ROOT / "sql" / "functions"


def sql_files(directory: Path) -> list[Path]:
    """The .sql files of ``directory``; none means a broken installation, never "up to date"."""
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise UserError(f"no SQL files found in {directory}: this wlsync installation is incomplete; "
                        "reinstall it (pip install --force-reinstall wlsync) or run from a full checkout")
    return files


def install_functions(conn) -> None:
    """Run every sql/functions/*.sql file (CREATE OR REPLACE: safe to repeat).

    ``conn`` is any DB-API connection (yoyo's, or ours); the caller commits.
    """
    cursor = conn.cursor()
    for path in sql_files(FUNCTIONS):
        cursor.execute(path.read_text())
    # Regenerate every tracked table's capture function and triggers, so a new
    # version of wlsync.track takes effect on tables tracked before it.
    cursor.execute("SELECT wlsync.track(t.relid, NULL) FROM wlsync.tracked_table AS t "
                   "WHERE EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.relid) ORDER BY t.table_id")
    # The views over the rings name every consumer's ring tables.
    cursor.execute("SELECT wlsync._rebuild_ring_views()")
    cursor.execute("GRANT SELECT ON wlsync.consumers TO wlsync_driver, wlsync_admin")
    # Functions are executable by PUBLIC by default; nothing of wlsync's is.
    cursor.execute("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA wlsync FROM PUBLIC")
    for role, functions in ROLE_FUNCTIONS.items():
        for function in functions:
            cursor.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {role}")


# What each group role (migrations/0006.roles.sql) may call. Every one of these
# is SECURITY DEFINER: the roles need no rights on wlsync's tables or the
# tracked tables.
DRIVER_FUNCTIONS = [
    "wlsync.claim_sync_events(integer, text)", "wlsync.fan_out(integer, boolean)", "wlsync.maintain_queue(bigint)",
    "wlsync.raise_claim_version(bigint)", "wlsync.lock_consistent_drain(text)", "wlsync.start_consistent_batch(text)",
    "wlsync.consumer_work(text)", "wlsync.resync_done(text, timestamptz)",
    "wlsync.current_rows(regclass, jsonb[])",
    "wlsync.read_rows(regclass, jsonb, integer)", "wlsync.tracked_columns(text)", "wlsync.queue_status(text)",
    "wlsync.metrics(integer, text)",
    "wlsync.range_checksums(regclass, text, integer, integer, bigint[])",
    "wlsync.range_rows(regclass, text, integer, bigint[])", "wlsync.verify_hash(text, text)",
    "wlsync.arm_wakeup(interval)", "wlsync.disarm_wakeup()", "wlsync.enqueue_keys(regclass, jsonb[], text)",
    "wlsync.record_failure(regclass, jsonb, text, integer, integer, text)",
    "wlsync.retry_dead_letters(regclass, jsonb, text)", "wlsync.discard_dead_letters(regclass, jsonb, text)",
    # A driver runs its consumer's backfill passes (wlsync.add_consumer starts them).
    "wlsync.backfill(regclass, bigint, text)",
]
ROLE_FUNCTIONS = {
    "wlsync_driver": DRIVER_FUNCTIONS,
    "wlsync_admin": DRIVER_FUNCTIONS + [
        "wlsync.track(regclass, text)", "wlsync.untrack(regclass)",
        "wlsync.add_consumer(text, regclass[], bigint)", "wlsync.remove_consumer(text)"],
    # PostgreSQL's monitoring role (postgres_exporter's usual login): figures
    # only, no key values.
    "pg_monitor": ["wlsync.metrics(integer, text)"],
}


def yoyo_url(conn: psycopg.Connection) -> str:
    """A yoyo URL for the database ``conn`` reached (so PG* variables work too).

    The password is left out: libpq finds it again where it found it first
    (the DSN's password is passed through PGPASSWORD by the caller).
    """
    info = conn.info
    host = info.host if not info.host.startswith("/") else ""
    netloc = quote(info.user, safe="") + "@" + (host or "")
    if info.port:
        netloc += f":{info.port}"
    url = f"postgresql+psycopg://{netloc}/{quote(info.dbname, safe='')}"
    if host == "" and info.host:
        url += "?host=" + quote(info.host, safe="")
    return url


def migrate(dsn: str) -> int:
    """Apply pending migrations; returns how many were applied."""
    from yoyo import get_backend, read_migrations

    sql_files(MIGRATIONS)
    sql_files(FUNCTIONS)
    with connect(dsn) as probe:
        url = yoyo_url(probe)
        password = probe.info.password
    if password:
        os.environ["PGPASSWORD"] = password
    backend = get_backend(url)
    try:
        migrations = read_migrations(str(MIGRATIONS))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    return len(pending)


def reinstall_functions(dsn: str) -> int:
    with connect(dsn) as conn:
        exists = conn.execute("SELECT to_regnamespace('wlsync') IS NOT NULL").fetchone()[0]
        if not exists:
            raise UserError(f"{describe(dsn)} has no wlsync schema; run `make migrate` first")
        install_functions(conn)
    return len(sql_files(FUNCTIONS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wlsync_migrate", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["migrate", "functions"])
    parser.add_argument("--source", help="MDB libpq URL (default: $WLSYNC_SOURCE, then PG* variables)")
    args = parser.parse_args(argv)
    dsn = source_dsn(args.source)
    try:
        if args.command == "migrate":
            applied = migrate(dsn)
            print(f"wlsync: {applied} migration(s) applied to {describe(dsn)}"
                  if applied else f"wlsync: {describe(dsn)} is up to date")
        else:
            count = reinstall_functions(dsn)
            print(f"wlsync: {count} function file(s) installed in {describe(dsn)}")
    except UserError as exc:
        print(f"wlsync: error: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"wlsync: error: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
