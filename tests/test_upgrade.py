"""Upgrading from the previous release (issue 10, part 6): an installation made by
release 48e4962 (one queue table, `wlsync.queue`, and a version sequence), with
events pending and a WL already synced, upgrades with the real migrator
(`make migrate`) and loses nothing; the upgraded schema equals a fresh install's.

The previous release is taken from git history (its migrations, function files,
migrator and driver) and installed with its own migrator, in a database of the
test's own that starts empty; its own driver syncs a SQLite WL before the upgrade,
this release's driver drains it after.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.driver_helpers import ROOT, run_cli, wait_until

PREVIOUS_RELEASE = "48e4962"
# What the previous release needs to install itself and to drain: its migrations
# and function files, the migrator its post-apply hook imports, and its driver.
PREVIOUS_RELEASE_FILES = ["migrations", "sql", "wlsync_migrate.py", "wlsync_db.py", "wlsync_driver.py",
                          "wlsync_sinks.py"]
# Migrations of this checkout the previous release (0001 to 0011) does not have.
NEW_MIGRATIONS = sorted(path.stem for path in (ROOT / "migrations").glob("*.sql") if int(path.stem[:4]) > 11)
ODD = '"Odd ""Name"" Table"'   # a table name with capitals, spaces and a double quote
ODD_WL = 'Odd "Name" Table'     # its name in WL


def tree_env(tree: Path) -> dict:
    """The environment of a program run from `tree`: it imports that tree's modules
    (the checkout is also installed in the virtualenv, in editable mode)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WLSYNC_SOURCE", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tree)
    return env


def run_python(tree: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python ARGS` with `tree` as working directory."""
    return subprocess.run([sys.executable, *args], cwd=tree, env=tree_env(tree), capture_output=True, text=True,
                          timeout=timeout)


def migrate_current(dsn: str) -> subprocess.CompletedProcess:
    """Exactly what `make migrate` runs, from the checkout."""
    return run_python(ROOT, "wlsync_migrate.py", "migrate", "--source", dsn)


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory) -> Path:
    """The previous release's tree, extracted from git history."""
    tree = tmp_path_factory.mktemp(f"wlsync-{PREVIOUS_RELEASE}")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS_RELEASE, *PREVIOUS_RELEASE_FILES],
                             capture_output=True)
    assert archive.returncode == 0, (f"cannot extract release {PREVIOUS_RELEASE} from git history "
                                     f"(a shallow clone?): {archive.stderr.decode()}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    assert not (tree / "migrations" / "0012.queue-v2.sql").exists()
    return tree


@pytest.fixture
def old_install(mdb, previous_release):
    """A database of its own, empty at first, with the previous release installed by
    its own migrator (so its post-apply hook installs its own functions).
    Yields (autocommit connection, DSN)."""
    info = mdb.info
    name = f"{info.dbname}_upgrade"
    admin_dsn = psycopg.conninfo.make_conninfo(host=info.host, port=info.port, user=info.user, dbname="postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    dsn = psycopg.conninfo.make_conninfo(host=info.host, port=info.port, user=info.user, dbname=name)
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        assert conn.execute("SELECT to_regnamespace('wlsync')").fetchone()[0] is None
        result = run_python(previous_release, "wlsync_migrate.py", "migrate", "--source", dsn)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "11 migration(s) applied" in result.stdout, result.stdout
        # The previous release's shape, installed by its own post-apply hook.
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'wlsync.queue'::regclass").fetchone()[0] == "r"
        assert conn.execute("SELECT to_regclass('wlsync.claim_version_seq') IS NOT NULL"
                            " AND to_regprocedure('wlsync.has_claimable_events()') IS NOT NULL"
                            " AND to_regclass('wlsync.queue_0') IS NULL").fetchone()[0]
        yield conn, dsn
    finally:
        conn.close()
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_and_track_tables(conn) -> None:
    """A simple table, a composite text + timestamptz key, a quoted name (same ids in every database)."""
    conn.execute("CREATE TABLE movies (id int PRIMARY KEY, title text, year int)")
    conn.execute("CREATE TABLE screenings (cinema text, starts_at timestamptz, seats int, note text,"
                 " PRIMARY KEY (cinema, starts_at))")
    conn.execute(f'CREATE TABLE {ODD} ("Key Col" int PRIMARY KEY, "Some Value" text)')
    conn.execute("SELECT wlsync.track('movies'), wlsync.track('screenings'), wlsync.track(%s)", [ODD])


def sqlite_rows(path: Path, query: str, params=()) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(query, params).fetchall()
    finally:
        db.close()


def pending_events(conn) -> list[tuple]:
    """Every pending event as (table_id, pk, enqueued_at), sorted (works on both queue shapes)."""
    return sorted(conn.execute("SELECT table_id, pk::text, enqueued_at FROM wlsync.queue").fetchall())


def test_upgrade_from_previous_release_carries_pending_events_and_wl_ends_equal_to_mdb(
        old_install, previous_release, tmp_path):
    conn, dsn = old_install
    wl_path = tmp_path / "wl.db"
    target = f"sqlite:///{wl_path}"

    # --- The previous release at work: three tracked tables, synced by its own driver.
    create_and_track_tables(conn)
    conn.execute("INSERT INTO movies SELECT g, 'title ' || g, 1990 + g % 30 FROM generate_series(1, 40) g")
    conn.execute("INSERT INTO screenings SELECT 'cinema ' || g % 3, timestamptz '2026-01-01 20:00+01' + g * interval"
                 " '1 day', 100 + g, NULL FROM generate_series(1, 12) g")
    conn.execute(f"INSERT INTO {ODD} SELECT g, 'it''s \"odd\" ' || g FROM generate_series(1, 5) g")
    # The versions this installation handed out ran far ahead of the cluster's
    # transaction counter (as after moving MDB to another cluster by dump and
    # restore): the upgraded claim must still hand out versions above them.
    conn.execute("SELECT setval('wlsync.claim_version_seq', txid_current() + 1000000)")
    old_sync = run_python(previous_release, "wlsync_driver.py", "run", "--once", "--source", dsn, "--target", target)
    assert old_sync.returncode == 0, old_sync.stdout + old_sync.stderr
    assert sqlite_rows(wl_path, "SELECT count(*) FROM movies") == [(40,)]
    assert conn.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0
    wl_max_version = sqlite_rows(wl_path, "SELECT max(version) FROM _wlsync_versions")[0][0]
    assert wl_max_version > conn.execute("SELECT txid_current() + 900000").fetchone()[0]

    # --- Changes the previous release captures but nobody drains before the upgrade.
    conn.execute("INSERT INTO movies SELECT g, 'new ' || g, 2026 FROM generate_series(41, 45) g")
    conn.execute("UPDATE movies SET title = 'updated ' || id, year = NULL WHERE id BETWEEN 1 AND 5")
    conn.execute("DELETE FROM movies WHERE id IN (6, 7)")
    conn.execute("UPDATE movies SET id = 1000 WHERE id = 8")                            # a primary-key update
    conn.execute("UPDATE screenings SET seats = 0, note = 'sold out' WHERE cinema = 'cinema 1'"
                 " AND starts_at = timestamptz '2026-01-02 20:00+01'")
    conn.execute("UPDATE screenings SET starts_at = starts_at + interval '30 minutes'"   # a composite key update
                 " WHERE cinema = 'cinema 2' AND starts_at = timestamptz '2026-01-03 20:00+01'")
    conn.execute("DELETE FROM screenings WHERE cinema = 'cinema 0' AND starts_at = timestamptz '2026-01-04 20:00+01'")
    conn.execute(f'UPDATE {ODD} SET "Some Value" = NULL WHERE "Key Col" = 1')
    conn.execute(f'DELETE FROM {ODD} WHERE "Key Col" = 2')
    conn.execute(f"INSERT INTO {ODD} VALUES (6, 'six')")
    # A key WL rejected, parked as a dead letter by the previous release (its
    # later change waits behind it), and a rolled-back change (no event).
    conn.execute("UPDATE movies SET title = 'poison' WHERE id = 30")
    assert conn.execute("SELECT wlsync.record_failure('movies', '{\"id\": \"30\"}', 'WL rejected it', 0, 1)"
                        ).fetchone()[0] == "parked"
    with conn.transaction(force_rollback=True):
        conn.execute("UPDATE movies SET title = 'rolled back' WHERE id = 9")
    before = pending_events(conn)
    assert len(before) == 23   # 5 + 5 + 2 + 2 (key update) + 1 + 2 (key update) + 1 + 3 + 2 (poison update, failure)
    assert {(t, pk) for t, pk, _ in before} >= {(1, '{"id": 8}'), (1, '{"id": 1000}'), (1, '{"id": 30}')}
    assert sqlite_rows(wl_path, "SELECT title FROM movies WHERE id IN (1, 8, 30) ORDER BY id") == [
        ("title 1",), ("title 8",), ("title 30",)]

    # --- The upgrade, with the checkout's migrator (`make migrate`).
    upgrade = migrate_current(dsn)
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert f"{len(NEW_MIGRATIONS)} migration(s) applied" in upgrade.stdout, upgrade.stdout

    # Pending events are in the ring (wlsync.queue is now a view over it); the
    # old queue table and version sequence are gone.
    assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'wlsync.queue'::regclass").fetchone()[0] == "v"
    assert conn.execute("SELECT to_regclass('wlsync.claim_version_seq')").fetchone()[0] is None
    assert conn.execute("SELECT to_regclass('wlsync.wakeup')").fetchone()[0] is None
    assert pending_events(conn) == before
    assert conn.execute("SELECT count(*) FROM wlsync.queue_0").fetchone()[0] == len(before)
    # The dead letter survives and still holds its key back, now the default consumer's
    # (migration 0019), which receives every table tracked before consumers existed.
    assert conn.execute("SELECT pk::text, state, consumer FROM wlsync.dead_letters").fetchall() == [
        ('{"id": 30}', "parked", "default")]
    assert conn.execute("SELECT name, tables::text[] FROM wlsync.consumers").fetchall() == [
        ("default", ["movies", "screenings", ODD])]

    # The capture functions write to the writers' ring's current slot.
    current = conn.execute("SELECT slot FROM wlsync.queue_slot WHERE ring = 0 AND state = 'current'").fetchone()[0]
    conn.execute("INSERT INTO movies VALUES (2000, 'after the upgrade', 2027)")
    conn.execute("UPDATE screenings SET note = 'after the upgrade' WHERE cinema = 'cinema 0'"
                 " AND starts_at = timestamptz '2026-01-07 20:00+01'")
    conn.execute(f'UPDATE {ODD} SET "Key Col" = 7 WHERE "Key Col" = 3')                   # a key update, quoted name
    after = Counter(conn.execute("SELECT slot, table_id, pk::text FROM wlsync.queue").fetchall())
    after.subtract(Counter((0, t, pk) for t, pk, _ in before))
    assert sorted(after.elements()) == sorted([
        (current, 1, '{"id": 2000}'),
        (current, 2, '{"cinema": "cinema 0", "starts_at": "2026-01-07T19:00:00"}'),
        (current, 3, '{"Key Col": 3}'), (current, 3, '{"Key Col": 7}')]), after

    # Versions handed out now are above every version WL recorded under the
    # previous release (migration 0012's version offset), before any driver of
    # this release has connected (a driver also raises them above its WL's
    # highest version when it connects, wlsync.raise_claim_version).
    with conn.transaction(force_rollback=True):
        peek = conn.execute("SELECT min(version) FROM wlsync.claim_sync_events(10)").fetchone()[0]
    assert peek > wl_max_version, (peek, wl_max_version)
    assert len(pending_events(conn)) == len(before) + 4

    # --- This release's driver drains into the same WL.
    drain = run_cli("run", "--once", "--source", dsn, "--target", target)
    assert drain.returncode == 0, drain.stdout + drain.stderr
    assert conn.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0
    # The parked key was held back; re-driven, it arrives as it is now.
    assert sqlite_rows(wl_path, "SELECT title FROM movies WHERE id = 30") == [("title 30",)]
    assert conn.execute("SELECT wlsync.retry_dead_letters('movies')").fetchone()[0] == 1
    drain = run_cli("run", "--once", "--source", dsn, "--target", target)
    assert drain.returncode == 0, drain.stdout + drain.stderr
    assert conn.execute("SELECT count(*) FROM wlsync.dead_letter").fetchone()[0] == 0

    check = run_cli("verify", "--source", dsn, "--target", target)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "verify: WL == MDB" in check.stdout

    # A few rows, directly: updates (of keys WL had synced under the previous
    # release, so only a newer version gets in), deletes, key updates, NULLs.
    assert sqlite_rows(wl_path, "SELECT id, title, year FROM movies WHERE id IN (1, 5, 6, 7, 8, 9, 30, 45, 1000, 2000)"
                                " ORDER BY id") == [
        (1, "updated 1", None), (5, "updated 5", None), (9, "title 9", 1999), (30, "poison", 1990),
        (45, "new 45", 2026), (1000, "title 8", 1998), (2000, "after the upgrade", 2027)]
    assert sqlite_rows(wl_path, "SELECT count(*) FROM movies") == [(conn.execute("SELECT count(*) FROM movies")
                                                                     .fetchone()[0],)]
    assert sqlite_rows(wl_path, "SELECT cinema, starts_at, seats, note FROM screenings WHERE note IS NOT NULL"
                                " ORDER BY cinema") == [
        ("cinema 0", "2026-01-07 19:00:00+00", 106, "after the upgrade"),
        ("cinema 1", "2026-01-02 19:00:00+00", 0, "sold out")]
    assert sqlite_rows(wl_path, "SELECT cinema, starts_at FROM screenings WHERE cinema = 'cinema 2'"
                                " ORDER BY starts_at")[:2] == [("cinema 2", "2026-01-03 19:30:00+00"),
                                                               ("cinema 2", "2026-01-06 19:00:00+00")]
    assert sqlite_rows(wl_path, f'SELECT "Key Col", "Some Value" FROM "{ODD_WL.replace(chr(34), chr(34) * 2)}"'
                                ' ORDER BY 1') == [
        (1, None), (4, "it's \"odd\" 4"), (5, "it's \"odd\" 5"), (6, "six"), (7, "it's \"odd\" 3")]


def test_an_event_committed_while_the_upgrade_runs_is_carried_over(old_install):
    """A writer of the previous release commits its change (and its event in the
    old queue table) while migration 0012 runs: the event must reach the ring."""
    conn, dsn = old_install
    conn.execute("CREATE TABLE movies (id int PRIMARY KEY, title text, year int)")
    conn.execute("SELECT wlsync.track('movies')")
    conn.execute("INSERT INTO movies VALUES (1, 'before the upgrade', 2000)")
    with psycopg.connect(dsn) as writer:
        writer.execute("INSERT INTO movies VALUES (2, 'committed during the upgrade', 2000)")
        writer_pid = writer.info.backend_pid
        upgrade = subprocess.Popen([sys.executable, "wlsync_migrate.py", "migrate", "--source", dsn], cwd=ROOT,
                                   env=tree_env(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # The upgrade has started and waits for the writer's lock on the old queue.
            wait_until(lambda: upgrade.poll() is not None or conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid NOT IN (pg_backend_pid(), %s)", [writer_pid]).fetchone()[0],
                timeout=30, message="the upgrade to wait for the open writer")
            writer.commit()
            out, err = upgrade.communicate(timeout=60)
        finally:
            if upgrade.poll() is None:
                upgrade.kill()
                upgrade.wait()
    assert upgrade.returncode == 0, out + err
    assert conn.execute("SELECT id FROM movies ORDER BY id").fetchall() == [(1,), (2,)]
    assert conn.execute("SELECT pk::text FROM wlsync.queue ORDER BY 1").fetchall() == [('{"id": 1}',), ('{"id": 2}',)]


# The wlsync schema as the catalogs describe it, object by object (what
# procrastinate's test suite compares between a fresh install and an upgrade).
SCHEMA_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text, c.relacl::text,
               obj_description(c.oid, 'pg_class')
        FROM pg_class AS c
        WHERE c.relnamespace = 'wlsync'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""",
    "columns": """
        SELECT c.relname, a.attname,
               row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position,
               format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated,
               pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum), a.attacl::text
        FROM pg_attribute AS a
        JOIN pg_class AS c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'wlsync'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'wlsync'",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint AS c WHERE c.connamespace = 'wlsync'::regnamespace""",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by, cycle, cache_size
        FROM pg_sequences WHERE schemaname = 'wlsync'""",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'wlsync'",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_arguments(p.oid),
               pg_get_function_result(p.oid), p.prokind, p.prosecdef, p.provolatile, p.proconfig::text,
               p.proacl::text, obj_description(p.oid, 'pg_proc'), md5(p.prosrc)
        FROM pg_proc AS p WHERE p.pronamespace = 'wlsync'::regnamespace""",
    "types": """
        SELECT t.typname, t.typtype FROM pg_type AS t
        WHERE t.typnamespace = 'wlsync'::regnamespace AND t.typrelid = 0 AND t.typelem = 0""",
    "schema": "SELECT nspacl::text, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'wlsync'",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, t.tgenabled, pg_get_triggerdef(t.oid)
        FROM pg_trigger AS t JOIN pg_proc AS p ON p.oid = t.tgfoid
        WHERE NOT t.tgisinternal AND p.pronamespace = 'wlsync'::regnamespace""",
    "event_triggers": """
        SELECT e.evtname, e.evtevent, e.evtfoid::regproc::text, e.evtenabled, e.evttags::text
        FROM pg_event_trigger AS e WHERE e.evtname LIKE 'wlsync%'""",
    "tracked_tables": "SELECT table_id, relid::text, pk_columns::text, pk_types::text FROM wlsync.tracked_table",
    "queue_slots": "SELECT ring, slot, state FROM wlsync.queue_slot",
    "consumers": "SELECT c.consumer_id, c.name, c.max_pending, t.table_id FROM wlsync.consumer AS c "
                 "LEFT JOIN wlsync.consumer_table AS t USING (consumer_id)",
    "capture_state": "SELECT notify_until IS NULL FROM wlsync.capture_state",
}


def wlsync_schema(conn) -> dict[str, list[tuple]]:
    return {name: sorted(conn.execute(query).fetchall(), key=repr) for name, query in SCHEMA_QUERIES.items()}


def test_upgraded_installation_is_up_to_date_and_has_the_schema_of_a_fresh_install(old_install, mdb):
    conn, dsn = old_install
    create_and_track_tables(conn)
    assert migrate_current(dsn).returncode == 0

    # Idempotent: running the migrations again applies nothing.
    applied = conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY migration_id").fetchall()
    again = migrate_current(dsn)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "is up to date" in again.stdout, again.stdout
    assert conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY migration_id").fetchall() == applied
    assert [r[0] for r in applied][-len(NEW_MIGRATIONS):] == NEW_MIGRATIONS

    # A fresh install of this release (the template the other tests use), with
    # the same tables tracked in the same order.
    create_and_track_tables(mdb)
    assert [r[0] for r in mdb.execute("SELECT migration_id FROM _yoyo_migration ORDER BY migration_id")] == \
        [r[0] for r in applied]
    fresh, upgraded = wlsync_schema(mdb), wlsync_schema(conn)
    assert fresh["functions"] and fresh["tracked_tables"] and fresh["triggers"]
    for part in SCHEMA_QUERIES:
        missing = [row for row in fresh[part] if row not in upgraded[part]]
        extra = [row for row in upgraded[part] if row not in fresh[part]]
        assert not missing and not extra, f"{part}: only in a fresh install {missing}; only after the upgrade {extra}"
