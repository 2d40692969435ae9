"""wlsync.track / wlsync.untrack: what gets captured, what is refused."""
import psycopg
import pytest

from tests.conftest import queue_rows


def triggers_on(conn, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY 1",
        (table,))]


def test_track_installs_capture_triggers_and_is_idempotent(mdb):
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text)")
    first = mdb.execute("SELECT wlsync.track('movies')").fetchone()[0]
    again = mdb.execute("SELECT wlsync.track('movies')").fetchone()[0]
    assert first == again
    assert triggers_on(mdb, "movies") == [
        "wlsync_capture_delete", "wlsync_capture_insert", "wlsync_capture_truncate", "wlsync_capture_update"]
    assert mdb.execute("SELECT relid::text, pk_columns FROM wlsync.tracked_table").fetchall() == [
        ("movies", ["id"])]


def test_track_refuses_table_without_primary_key_naming_it(mdb):
    mdb.execute("CREATE TABLE nokey (a int)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"cannot track public.nokey: it has no primary key"):
        mdb.execute("SELECT wlsync.track('nokey')")
    assert mdb.execute("SELECT count(*) FROM wlsync.tracked_table").fetchone()[0] == 0


@pytest.mark.parametrize("ddl, name, message", [
    ("CREATE VIEW v AS SELECT 1 AS a", "v", "cannot track public.v: it is a view, not a table"),
    ("CREATE TEMP TABLE tmp (id int PRIMARY KEY)", "tmp", "it is a temporary table"),
    ("CREATE TABLE fkey (x float8 PRIMARY KEY)", "fkey", "key column x has type double precision"),
    ("CREATE TABLE ikey (x interval PRIMARY KEY)", "ikey", "key column x has type interval"),
    ("CREATE TABLE akey (x int[] PRIMARY KEY)", "akey", r"key column x has type integer\[\]"),
    ("CREATE TYPE mood AS ENUM ('a'); CREATE TABLE ekey (x mood PRIMARY KEY)", "ekey", "key column x has type public.mood"),
    ("CREATE TABLE rkey (x tsrange PRIMARY KEY)", "rkey", "key column x has type tsrange"),
])
def test_track_refuses_what_it_cannot_capture(mdb, ddl, name, message):
    mdb.execute(ddl)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        mdb.execute("SELECT wlsync.track(%s)", (name,))


def test_track_unknown_table_is_a_clear_error(mdb):
    with pytest.raises(psycopg.errors.UndefinedTable, match='relation "nosuch" does not exist'):
        mdb.execute("SELECT wlsync.track('nosuch')")


def test_composite_and_quoted_keys_in_another_schema_are_captured(mdb):
    mdb.execute('CREATE SCHEMA "Cat Alog"')
    mdb.execute('CREATE TABLE "Cat Alog"."Movie ""Cast""" ("Movie Id" int, "select" text, role text,'
                ' PRIMARY KEY ("Movie Id", "select"))')
    mdb.execute("SELECT wlsync.track(%s)", ('"Cat Alog"."Movie ""Cast"""',))
    mdb.execute('INSERT INTO "Cat Alog"."Movie ""Cast""" VALUES (1, \'it\'\'s\', \'lead\')')
    assert queue_rows(mdb) == [('"Cat Alog"."Movie ""Cast"""', {"Movie Id": 1, "select": "it's"})]


def test_partitioned_table_captures_rows_of_every_partition_and_partition_truncate(mdb):
    mdb.execute("CREATE TABLE ev (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)")
    mdb.execute("CREATE TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')")
    mdb.execute("CREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")
    mdb.execute("SELECT wlsync.track('ev')")
    mdb.execute("INSERT INTO ev VALUES (1, '2025-05-01'), (2, '2026-05-01')")
    mdb.execute("TRUNCATE wlsync.queue_0, wlsync.queue_1, wlsync.queue_2")
    mdb.execute("TRUNCATE ev_2025")
    assert queue_rows(mdb) == [("ev", {"id": 1, "at": "2025-05-01"})]


def test_partition_of_a_tracked_table_cannot_be_tracked_alone(mdb):
    mdb.execute("CREATE TABLE ev (id int PRIMARY KEY) PARTITION BY RANGE (id)")
    mdb.execute("CREATE TABLE ev_low PARTITION OF ev FOR VALUES FROM (0) TO (100)")
    mdb.execute("SELECT wlsync.track('ev')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot track public.ev_low: it is a partition of public.ev, which is tracked"):
        mdb.execute("SELECT wlsync.track('ev_low')")


def test_untrack_drops_capture_and_discards_pending_events(mdb):
    mdb.execute("CREATE TABLE keep (id int PRIMARY KEY)")
    mdb.execute("CREATE TABLE drop_me (id int PRIMARY KEY)")
    mdb.execute("SELECT wlsync.track('keep'), wlsync.track('drop_me')")
    mdb.execute("INSERT INTO keep VALUES (1)")
    mdb.execute("INSERT INTO drop_me VALUES (1), (2)")
    assert mdb.execute("SELECT wlsync.untrack('drop_me')").fetchone()[0] == 2
    assert triggers_on(mdb, "drop_me") == []
    mdb.execute("INSERT INTO drop_me VALUES (3)")
    assert queue_rows(mdb) == [("keep", {"id": 1})]
    assert mdb.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_capture\\_row\\_%'").fetchone()[0] == 1


def test_untrack_of_untracked_table_is_a_clear_error(mdb):
    mdb.execute("CREATE TABLE plain (id int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="table public.plain is not tracked by wlsync"):
        mdb.execute("SELECT wlsync.untrack('plain')")


def test_a_table_name_cannot_smuggle_sql_into_the_generated_trigger(mdb):
    name = "x\nEND $body$; CREATE TABLE pwned (); SELECT $body$ --"
    mdb.execute(f'CREATE TABLE "{name}" ("$body$ col" int PRIMARY KEY)')
    mdb.execute("SELECT wlsync.track(%s)", ['"' + name + '"'])
    assert mdb.execute("SELECT to_regclass('pwned')").fetchone()[0] is None
    mdb.execute(f'INSERT INTO "{name}" VALUES (1)')
    assert queue_rows(mdb)[0][1] == {"$body$ col": 1}


def test_writes_under_session_replication_role_replica_are_captured(mdb):
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text)")
    mdb.execute("SELECT wlsync.track('movies')")
    mdb.execute("SET session_replication_role = replica")
    mdb.execute("INSERT INTO movies VALUES (1, 'a')")
    mdb.execute("UPDATE movies SET title = 'b'")
    mdb.execute("TRUNCATE movies")
    assert len(queue_rows(mdb)) == 3
