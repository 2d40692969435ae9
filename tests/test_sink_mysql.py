"""What is specific to MariaDB as WL: its column types, the names it cannot hold,
its key and packet limits, the version fence in its registry, and a real outage.

The contract suite (driver, verify, poison, hostile input, soak) runs over this
sink too, through the `target` fixture; these tests need only MariaDB.
"""
from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pymysql
import pytest

from tests.conftest import mysql_database, mysql_execute
from tests.driver_helpers import DriverProcess, run_cli, wait_until, wl_titles
from wlsync_sinks import VERSION_RETENTION, Column, SinkError, Table, TargetError, open_sink
from wlsync_sinks.mysql import MySQLSink

MOVIES = Table("public", "movies", (Column("id", "integer", "int4", True, 1),
                                    Column("title", "text", "text", True, None)))
FAILED = "WL failed (MariaDB mysql://root@127.0.0.1:"


@pytest.fixture
def wl(mdb):
    """The URL of a fresh MariaDB database named after the test's MDB."""
    yield from mysql_database(mdb.info.dbname + "_wl")


@pytest.fixture
def sink(wl):
    opened = open_sink(wl)
    yield opened
    opened.close()


@pytest.fixture
def driver_for(mdb_dsn, tmp_path):
    """Start a driver on a given target (sweep 1 s); stopped at teardown."""
    started: list[DriverProcess] = []

    def _start(target: str) -> DriverProcess:
        process = DriverProcess(mdb_dsn, target, tmp_path / f"driver{len(started)}.log", "--sweep-interval", "1")
        started.append(process)
        return process

    yield _start
    for process in started:
        process.stop()


def row(version: int, key, title: str | None) -> dict:
    """A claimed row of public.movies: an upsert, or a delete when title is None."""
    pk = key if isinstance(key, dict) else {"id": str(key)}
    return {"table_schema": "public", "table_name": "movies", "pk": pk, "version": version,
            "action": "delete" if title is None else "upsert",
            "row_data": None if title is None else {**pk, "title": title}}


def later() -> float:
    return time.monotonic() + 60


def test_every_kind_of_value_reads_back_as_mdbs_exact_text(mdb, mdb_dsn, wl):
    mdb.execute("CREATE TYPE mood AS ENUM ('ok', 'sad')")
    mdb.execute("""CREATE TABLE kinds (k text, ts timestamptz, i2 int2, i4 int4, i8 int8, o oid, b bool,
        n numeric(20,10), nu numeric, f4 float4, f8 float8, by bytea, arr text[], iarr int[], j jsonb, js json,
        d date, t time, tz timetz, iv interval, u uuid, m mood, big text, PRIMARY KEY (k, ts))""")
    mdb.execute("SELECT wlsync.track('kinds')")
    deep = "[" * 40 + "1" + "]" * 40   # deeper than MariaDB's JSON type accepts
    mdb.execute("""INSERT INTO kinds VALUES
        ('Key ', '2026-03-04 05:06:07.123456+02', -32768, 2147483647, -9223372036854775808, 4294967295, true,
         1234567890.0123456789, 'NaN', 'Infinity', '-Infinity', '\\x0001ff', '{"a \\"q\\"",NULL,"",NULL}',
         '{{1,2},{3,NULL}}', %s, '{ "keep" :  "spacing", "keep": 2 }', 'infinity', '24:00:00', '23:59:59.5-03',
         '-1 year 2 mons 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'sad', %s),
        ('key', '-infinity', 0, 0, 0, 0, false, -0.0000000001, 12345678901234567890.123,
         'NaN', 5e-324, '\\x', '{}', '{}', '"\\u00e9😀"', 'null', '0044-03-15 BC', '00:00', '00:00+14',
         '0', '00000000-0000-0000-0000-000000000000', 'ok', '😀 trailing space ')""",
                [deep, "long é " * 200000])
    mdb.execute("INSERT INTO kinds (k, ts) VALUES ('all nulls', '2000-01-01 00:00:00+00')")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", wl).returncode == 0

    columns = mdb.execute("SELECT * FROM wlsync.tracked_columns() WHERE table_name = 'kinds'").fetchall()
    table = Table("public", "kinds", tuple(Column(c[2], c[4], c[5], c[6], c[7]) for c in columns))
    expected = mdb.execute("SELECT pk, row_data FROM wlsync.read_rows('kinds', NULL, 10)").fetchall()
    assert len(expected) == 3
    sink = open_sink(wl)
    try:
        # Exact text, not verify's numeric comparison of floats.
        assert sink.rows_by_key(table, [pk for pk, _ in expected]) == [data for _, data in expected]
        assert sorted(sum(sink.keys(table, 2), []), key=str) == sorted((pk for pk, _ in expected), key=str)
    finally:
        sink.close()
    assert run_cli("verify", "--source", mdb_dsn, "--target", wl).returncode == 0

    types = dict(mysql_execute(wl, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                              f"WHERE TABLE_SCHEMA = '{wl.rsplit('/', 1)[1]}' AND TABLE_NAME = 'kinds'"))
    assert (types["k"], types["ts"]) == ("varchar(384)", "varchar(384)")   # two text keys share 3072 bytes
    assert (types["i2"], types["i4"], types["i8"], types["o"], types["b"], types["by"]) == \
        ("smallint(6)", "int(11)", "bigint(20)", "int(10) unsigned", "tinyint(1)", "longblob")
    assert {types[c] for c in ("n", "nu", "f4", "f8", "arr", "j", "js", "d", "tz", "iv", "u", "m", "big")} \
        == {"longtext"}
    (native,) = mysql_execute(wl, "SELECT i8, b, `by`, n, f4, js FROM kinds WHERE k = 'Key '")
    assert native == (-9223372036854775808, 1, b"\x00\x01\xff", "1234567890.0123456789", "Infinity",
                      '{ "keep" :  "spacing", "keep": 2 }')


def test_names_mariadb_cannot_hold_are_refused_at_ensure_tables(sink, wl):
    long_name = Table("app_" + "s" * 30, "t" * 40, MOVIES.columns)
    with pytest.raises(TargetError) as refused:
        sink.ensure_tables({("s", "t"): long_name})
    assert str(refused.value) == (
        f"WL (MariaDB) cannot hold a table for {long_name.schema}.{long_name.name}: its name "
        f"'{long_name.wl_name}' is 75 characters long (MariaDB's limit is 64); "
        "rename it in MDB or sync it to another WL")
    cases = {
        "contains U+1F600, beyond the Basic Multilingual Plane": Column("smile 😀", "text", "text", True, None),
        "ends with a space": Column("title ", "text", "text", True, None),
        "MariaDB column names ignore case": Column("Title", "text", "text", True, None),
    }
    for fragment, column in cases.items():
        with pytest.raises(TargetError, match=re.escape(fragment)) as refused:
            sink.ensure_tables({("public", "movies"): Table("public", "movies", MOVIES.columns + (column,))})
        assert "\n" not in str(refused.value) and "of public.movies" in str(refused.value)
    assert mysql_execute(wl, "SHOW TABLES") == []       # nothing half-created under a changed name


def test_a_name_mariadb_cannot_hold_stops_the_driver_with_one_line(mdb, mdb_dsn, wl):
    table = "a_rather_long_schema_name.and_an_even_longer_table_name_than_that"   # 65 characters in WL
    mdb.execute("CREATE SCHEMA a_rather_long_schema_name")
    mdb.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    mdb.execute("SELECT wlsync.track(%s)", [table])
    mdb.execute(f"INSERT INTO {table} VALUES (1)")
    result = run_cli("run", "--once", "--source", mdb_dsn, "--target", wl)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert line.startswith("wlsync: error: WL (MariaDB) cannot hold a table for a_rather_long_schema_name.")
    assert "is 65 characters long (MariaDB's limit is 64)" in line
    assert mdb.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 1   # the event stays queued


def test_text_keys_up_to_the_index_limit_are_kept_and_longer_ones_rejected(sink, wl):
    sink.ensure_tables({("public", "movies"): Table("public", "movies", (
        Column("id", "text", "text", True, 1), Column("title", "text", "text", True, None)))})
    longest = "😀" * 768                            # 4 bytes a character: 3072 bytes
    sink.apply([row(1, {"id": longest}, "fits")], later())
    assert mysql_execute(wl, "SELECT CHAR_LENGTH(id), title FROM movies") == [(768, "fits")]
    with pytest.raises(SinkError, match="Data too long for column 'id'") as too_long:
        sink.apply([row(2, {"id": longest + "x"}, "too long")], later())
    assert too_long.value.rejected                 # the driver parks it as a dead letter
    sink.apply([row(3, {"id": "after"}, "still writing")], later())   # the connection stays usable
    assert len(mysql_execute(wl, "SELECT id FROM movies")) == 2


def test_keys_differing_in_case_or_trailing_spaces_stay_apart(sink, wl):
    sink.ensure_tables({("public", "movies"): Table("public", "movies", (
        Column("id", "text", "text", True, 1), Column("title", "text", "text", True, None)))})
    sink.apply([row(1, {"id": k}, f"[{k}]") for k in ("a", "A", "a ", "á")], later())
    assert sorted(mysql_execute(wl, "SELECT title FROM movies")) == [("[A]",), ("[a ]",), ("[a]",), ("[á]",)]
    assert [r["title"] for r in sink.rows_by_key(sink.tables[("public", "movies")],
                                                  [{"id": "a "}, {"id": "A"}, {"id": "b"}]) if r] == ["[a ]", "[A]"]


def test_a_batch_larger_than_max_allowed_packet_is_split_and_a_row_larger_is_rejected(sink, wl):
    sink.ensure_tables({("public", "movies"): MOVIES})
    packet = mysql_execute(wl, "SELECT @@max_allowed_packet")[0][0]
    size = packet // 8
    sink.apply([row(1, k, chr(65 + k) * size) for k in range(12)], later())   # 1.5 packets in all
    assert mysql_execute(wl, "SELECT count(*), sum(length(title)) FROM movies") == [(12, 12 * size)]
    with pytest.raises(SinkError, match="exceeds the server's max_allowed_packet") as too_big:
        sink.apply([row(2, 1, "x" * packet)], later())
    assert too_big.value.rejected
    assert mysql_execute(wl, "SELECT length(title) FROM movies WHERE id = 1") == [(size,)]


def test_a_late_batch_writes_only_the_keys_it_is_newest_for(sink, wl):
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.apply([row(5, 1, "v5"), row(5, 2, "v5")], later())
    sink.apply([row(6, 2, None)], later())
    # A batch claimed before both but arriving after them: only key 3 is news.
    sink.apply([row(4, 1, "stale"), row(4, 2, "resurrected?"), row(4, 3, "new key")], later())
    assert wl_titles(wl) == {1: "v5", 3: "new key"}
    assert sink.max_version() == 6
    assert sorted(mysql_execute(wl, "SELECT pk, version, deleted_at IS NOT NULL FROM _wlsync_versions")) == [
        ('{"id":"1"}', 5, 0), ('{"id":"2"}', 6, 1), ('{"id":"3"}', 4, 0)]


@pytest.mark.parametrize("first, second, kept", [
    (6, 5, "first"),    # the older batch waits for the newer one, then finds its key stale
    (5, 6, "second"),   # the newer batch waits for the older one, then writes
    (5, 5, "first"),    # an equal version is not newer: the second writes nothing
])
def test_two_batches_holding_one_key_at_once_leave_the_newer_write(sink, wl, first, second, kept):
    """The first batch sleeps in a WL trigger while it holds the key; the second,
    through another connection, must wait on the key's registry row and decide
    after the first commits."""
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.apply([row(1, 1, "start")], later())
    mysql_execute(wl, "CREATE TRIGGER slow BEFORE INSERT ON movies FOR EACH ROW "
                      "IF NEW.title = 'first' THEN DO SLEEP(1); END IF")
    other = open_sink(wl)
    try:
        other.ensure_tables({("public", "movies"): MOVIES})
        holder = threading.Thread(target=sink.apply, args=([row(first, 1, "first")], later()))
        holder.start()
        # The first batch holds key 1 and sleeps in the trigger (for 1 s from here on).
        wait_until(lambda: mysql_execute(wl, "SELECT count(*) FROM information_schema.PROCESSLIST "
                                             f"WHERE ID = {sink.connection.thread_id()} AND STATE = 'User sleep'"
                                         )[0][0] == 1, message="the first batch sleeping in the trigger")
        started = time.monotonic()
        other.apply([row(second, 1, "second")], later())
        waited = time.monotonic() - started
        holder.join()
    finally:
        other.close()
    assert waited > 0.5        # the second batch waited for the first one's commit
    assert wl_titles(wl) == {1: kept}
    assert mysql_execute(wl, "SELECT version FROM _wlsync_versions") == [(max(first, second),)]


def test_a_new_key_inserted_by_another_batch_meanwhile_is_fenced_under_its_lock(sink, wl):
    """Both batches find key 1 new; the newer one records it while the older one
    is inserting: the older one's plain INSERT fails as a duplicate, and it
    decides again under every key's lock (the locking fence)."""
    sink.ensure_tables({("public", "movies"): MOVIES})
    # The older batch sleeps in its registry INSERT, after finding key 1 new.
    mysql_execute(wl, "CREATE TRIGGER slow BEFORE INSERT ON _wlsync_versions FOR EACH ROW "
                      "IF NEW.version = 5 THEN DO SLEEP(1.5); END IF")
    older = threading.Thread(target=sink.apply, args=([row(5, 1, "older"), row(5, 2, "only here")], later()))
    older.start()
    time.sleep(0.5)
    other = open_sink(wl)
    try:
        other.ensure_tables({("public", "movies"): MOVIES})
        other.apply([row(7, 1, "newer")], later())
    finally:
        other.close()
    older.join()
    assert wl_titles(wl) == {1: "newer", 2: "only here"}
    assert sorted(mysql_execute(wl, "SELECT pk, version FROM _wlsync_versions")) == [
        ('{"id":"1"}', 7), ('{"id":"2"}', 5)]


def test_a_registry_insert_cut_in_parts_is_undone_whole_before_the_locking_fence(sink, wl):
    """As above, with the older batch's registry INSERT cut in several statements
    (max_allowed_packet) and only the last key taken meanwhile: the parts that
    went in must be undone, or their keys would be found stale at their own
    version and never written."""
    sink.ensure_tables({("public", "movies"): MOVIES})
    keys = sorted(range(1, 41), key=lambda k: hashlib.sha256(f'{{"id":"{k}"}}'.encode()).digest())
    sink.connection  # noqa: B018 - open it, then make statements small: about 10 registry rows each
    sink.max_statement = 2000
    mysql_execute(wl, "CREATE TRIGGER slow BEFORE INSERT ON _wlsync_versions FOR EACH ROW "
                      "IF NEW.version = 5 AND @slept IS NULL THEN SET @slept = 1; DO SLEEP(1.5); END IF")
    older = threading.Thread(target=sink.apply, args=([row(5, k, f"older {k}") for k in keys], later()))
    older.start()
    time.sleep(0.5)
    other = open_sink(wl)
    try:
        other.ensure_tables({("public", "movies"): MOVIES})
        other.apply([row(7, keys[-1], "newer")], later())   # in the older batch's last part
    finally:
        other.close()
    older.join()
    assert wl_titles(wl) == {**{k: f"older {k}" for k in keys[:-1]}, keys[-1]: "newer"}


def test_after_a_batch_of_new_keys_a_batch_with_known_keys_is_still_fenced(sink, wl):
    """A table whose last batch had only new keys gets the next one's registry
    INSERT first, for every key: a key WL has fails it, and the whole fence follows."""
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.apply([row(5, k, f"v5 {k}") for k in (1, 2, 3)], later())   # new keys only
    sink.apply([row(4, 1, "stale"), row(6, 2, "newer"), row(6, 9, "new")], later())
    assert wl_titles(wl) == {1: "v5 1", 2: "newer", 3: "v5 3", 9: "new"}
    assert sorted(mysql_execute(wl, "SELECT pk, version FROM _wlsync_versions")) == [
        ('{"id":"1"}', 5), ('{"id":"2"}', 6), ('{"id":"3"}', 5), ('{"id":"9"}', 6)]


def test_a_first_insert_cut_in_parts_that_meets_a_known_key_late_is_undone_whole(sink, wl):
    """The same with the INSERT cut in parts and the known key in the last one: the
    parts that went in must be undone, or their keys would then be found recorded
    at the batch's own version (stale) and never written."""
    sink.ensure_tables({("public", "movies"): MOVIES})
    by_hash = sorted(range(1, 200), key=lambda k: hashlib.sha256(f'{{"id":"{k}"}}'.encode()).digest())
    known, first, second = by_hash[-1], by_hash[:20], by_hash[20:60]
    sink.apply([row(5, k, "first") for k in first] + [row(5, known, "known")], later())   # new keys only
    sink.connection  # noqa: B018 - open it, then make statements small: about 10 registry rows each
    sink.max_statement = 2000
    sink.apply([row(6, k, "second") for k in second] + [row(6, known, "known again")], later())
    assert wl_titles(wl) == {**{k: "first" for k in first}, **{k: "second" for k in second}, known: "known again"}


def test_deleted_keys_versions_are_pruned_after_the_retention(sink, wl):
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.apply([row(1, 1, "live"), row(1, 2, None), row(1, 3, None)], later())   # the first batch prunes
    mysql_execute(wl, f"UPDATE _wlsync_versions SET deleted_at = deleted_at - INTERVAL {VERSION_RETENTION + 1} SECOND "
                   "WHERE pk = '{\"id\":\"2\"}'")
    fresh = open_sink(wl)   # a new sink prunes at its first batch
    try:
        fresh.ensure_tables({("public", "movies"): MOVIES})
        fresh.apply([row(2, 4, "other")], later())
    finally:
        fresh.close()
    assert sorted(pk for (pk,) in mysql_execute(wl, "SELECT pk FROM _wlsync_versions")) == [
        '{"id":"1"}', '{"id":"3"}', '{"id":"4"}']


def test_a_failed_batch_leaves_nothing_and_the_next_one_reconnects(sink, wl):
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.apply([row(1, 1, "before")], later())
    mysql_execute(wl, f"KILL {sink.connection.thread_id()}")
    with pytest.raises(SinkError, match=r"^MariaDB mysql://root@127\.0\.0\.1:3306/\w+: writing a batch: ") as lost:
        sink.apply([row(2, 2, "lost")], later())
    assert not lost.value.rejected                 # WL's state, not the data: the batch is retried
    sink.apply([row(3, 2, "retried")], later())
    assert wl_titles(wl) == {1: "before", 2: "retried"}


# -- consistent mode: begin, write ..., commit -----------------------------------------------

PARENTS = Table("public", "parents", (Column("id", "integer", "int4", True, 1),
                                      Column("name", "text", "text", True, None)))
CHILDREN = Table("public", "children", (Column("id", "integer", "int4", True, 1),
                                        Column("parent_id", "integer", "int4", True, None)))


def family_row(version: int, table: str, key: int, **values) -> dict:
    """A claimed row of parents or children: an upsert of ``values``, or a delete when none are given."""
    pk = {"id": str(key)}
    return {"table_schema": "public", "table_name": table, "pk": pk, "version": version,
            "action": "upsert" if values else "delete",
            "row_data": {**pk, **{k: str(v) for k, v in values.items()}} if values else None}


@pytest.fixture
def family(sink, wl):
    """WL tables parents and children, children.parent_id a FOREIGN KEY to parents (added in WL)."""
    sink.ensure_tables({("public", "parents"): PARENTS, ("public", "children"): CHILDREN})
    mysql_execute(wl, "ALTER TABLE children ADD CONSTRAINT child_of FOREIGN KEY (parent_id) REFERENCES parents (id)")
    return sink


def fk_checks(sink) -> int:
    with sink.connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.foreign_key_checks")
        return cursor.fetchone()[0]


def test_a_consistent_transaction_is_invisible_to_other_connections_until_its_commit(sink, wl):
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.begin(later())
    sink.write([row(5, 1, "one"), row(5, 2, "two")], later())
    sink.write([row(5, 3, "three")], later())
    sink.write([row(5, 2, None)], later())   # a later chunk of the snapshot, same version: not newer, kept out
    assert wl_titles(wl) == {}
    assert mysql_execute(wl, "SELECT count(*) FROM _wlsync_versions") == [(0,)]
    sink.commit(later())
    assert wl_titles(wl) == {1: "one", 2: "two", 3: "three"}
    assert sink.max_version() == 5


def test_a_rejected_write_leaves_the_transaction_as_it_was_and_usable(sink, wl):
    sink.ensure_tables({("public", "movies"): Table("public", "movies", (
        Column("id", "text", "text", True, 1), Column("title", "text", "text", True, None)))})
    sink.begin(later())
    sink.write([row(7, {"id": "a"}, "first write")], later())
    # MariaDB refuses the long key when the rows are written, after this write
    # recorded the versions of both keys in the registry: the savepoint takes
    # those back too, or "b" would later be found stale at its own version.
    with pytest.raises(SinkError, match="Data too long for column 'id'") as refused:
        sink.write([row(7, {"id": "b"}, "fits"), row(7, {"id": "x" * 769}, "too long")], later())
    assert refused.value.rejected
    sink.write([row(7, {"id": "b"}, "fits")], later())   # what the driver does: the rows again, split
    sink.commit(later())
    assert sorted(mysql_execute(wl, "SELECT id, title FROM movies")) == [("a", "first write"), ("b", "fits")]
    assert sorted(pk for (pk,) in mysql_execute(wl, "SELECT pk FROM _wlsync_versions")) == [
        '{"id":"a"}', '{"id":"b"}']


def test_rolling_back_a_consistent_transaction_keeps_nothing(sink, wl):
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.apply([row(1, 1, "before")], later())
    sink.begin(later())
    sink.write([row(2, 1, "changed"), row(2, 2, "new")], later())
    sink.write([row(2, 3, None)], later())
    sink.rollback()
    assert wl_titles(wl) == {1: "before"}
    assert mysql_execute(wl, "SELECT pk, version FROM _wlsync_versions") == [('{"id":"1"}', 1)]
    sink.apply([row(3, 2, "after")], later())   # the connection goes on, outside any transaction
    assert wl_titles(wl) == {1: "before", 2: "after"}
    sink.rollback()   # nothing open: nothing happens
    assert wl_titles(wl) == {1: "before", 2: "after"}


def test_a_child_may_come_before_its_parent_within_a_consistent_transaction(family, wl):
    sink = family
    session_default = fk_checks(sink)
    assert session_default == 1
    sink.begin(later())
    sink.write([family_row(3, "children", 10, parent_id=1), family_row(3, "children", 11, parent_id=2)], later())
    sink.write([family_row(3, "parents", 1, name="p1"), family_row(3, "parents", 2, name="p2")], later())
    sink.commit(later())
    assert sorted(mysql_execute(wl, "SELECT id, parent_id FROM children")) == [(10, 1), (11, 2)]
    assert fk_checks(sink) == 1   # restored before the commit
    # A parent deleted before its child within one transaction.
    sink.begin(later())
    sink.write([family_row(4, "parents", 2)], later())
    sink.write([family_row(4, "children", 11)], later())
    sink.commit(later())
    assert mysql_execute(wl, "SELECT id FROM parents") == [(1,)]
    assert mysql_execute(wl, "SELECT id FROM children") == [(10,)]
    # Outside consistent mode, and after a rollback, MariaDB checks each statement as before.
    sink.begin(later())
    sink.write([family_row(5, "children", 12, parent_id=9)], later())
    sink.rollback()
    assert fk_checks(sink) == 1
    with pytest.raises(SinkError, match="foreign key constraint fails") as orphan:
        sink.apply([family_row(6, "children", 12, parent_id=9)], later())
    assert orphan.value.rejected
    assert mysql_execute(wl, "SELECT id FROM children") == [(10,)]


def test_a_connection_lost_in_a_consistent_transaction_ends_it_and_the_next_connection_checks_keys(family, wl):
    sink = family
    sink.begin(later())
    sink.write([family_row(3, "children", 10, parent_id=1)], later())
    mysql_execute(wl, f"KILL {sink.connection.thread_id()}")
    with pytest.raises(SinkError) as lost:
        sink.write([family_row(3, "parents", 1, name="p1")], later())
    assert not lost.value.rejected
    # The next write must not go on in autocommit on a new connection.
    with pytest.raises(SinkError, match="no transaction open"):
        sink.write([family_row(3, "parents", 1, name="p1")], later())
    sink.rollback()
    assert mysql_execute(wl, "SELECT count(*) FROM children") == [(0,)]
    assert fk_checks(sink) == 1   # a new session: the server's default
    with pytest.raises(SinkError, match="foreign key constraint fails"):
        sink.apply([family_row(4, "children", 10, parent_id=1)], later())


def test_fencing_holds_inside_a_consistent_transaction(sink, wl):
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.apply([row(5, 1, "v5"), row(5, 2, "v5")], later())
    sink.apply([row(6, 2, None)], later())
    sink.begin(later())
    sink.write([row(4, 1, "stale"), row(4, 2, "resurrected?"), row(4, 3, "new key")], later())
    sink.write([row(8, 4, "v8")], later())
    sink.write([row(7, 4, "older, same transaction")], later())
    sink.commit(later())
    assert wl_titles(wl) == {1: "v5", 3: "new key", 4: "v8"}
    assert sorted(mysql_execute(wl, "SELECT pk, version FROM _wlsync_versions")) == [
        ('{"id":"1"}', 5), ('{"id":"2"}', 6), ('{"id":"3"}', 4), ('{"id":"4"}', 8)]


def test_a_batch_holding_a_key_of_an_open_consistent_transaction_waits_for_its_commit(sink, wl):
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.begin(later())
    sink.write([row(6, 1, "consistent")], later())
    other = open_sink(wl)
    try:
        other.ensure_tables({("public", "movies"): MOVIES})
        late = threading.Thread(target=other.apply, args=([row(5, 1, "older batch")], later()))
        late.start()
        time.sleep(0.5)
        assert late.is_alive()   # waiting on key 1's registry row
        sink.commit(later())
        late.join()
    finally:
        other.close()
    assert wl_titles(wl) == {1: "consistent"}


def test_tables_prepared_inside_a_consistent_transaction_do_not_commit_it(sink, wl):
    """MariaDB's DDL commits the session's open transaction: ensure_tables, which
    the driver calls when a new table shows up mid-snapshot, must not."""
    sink.ensure_tables({("public", "movies"): MOVIES})
    sink.begin(later())
    sink.write([row(1, 1, "one")], later())
    sink.ensure_tables({("public", "movies"): MOVIES, ("public", "parents"): PARENTS})
    sink.write([family_row(1, "parents", 1, name="p1")], later())
    assert wl_titles(wl) == {}
    sink.rollback()
    assert wl_titles(wl) == {}
    assert mysql_execute(wl, "SELECT count(*) FROM parents") == [(0,)]
    sink.apply([family_row(2, "parents", 1, name="p1")], later())   # the table stays
    assert mysql_execute(wl, "SELECT id, name FROM parents") == [(1, "p1")]


def test_run_consistent_writes_children_before_their_parents_into_mariadb(mdb, mdb_dsn, wl):
    """End to end: within a WL write, children (name order) come before their parents."""
    mdb.execute("CREATE TABLE parents (id int PRIMARY KEY, name text)")
    mdb.execute("CREATE TABLE children (id int PRIMARY KEY, parent_id int REFERENCES parents ON DELETE CASCADE)")
    mdb.execute("SELECT wlsync.track('parents'), wlsync.track('children')")
    sink = open_sink(wl)
    try:
        sink.ensure_tables({("public", "parents"): PARENTS, ("public", "children"): CHILDREN})
    finally:
        sink.close()
    mysql_execute(wl, "ALTER TABLE children ADD CONSTRAINT child_of FOREIGN KEY (parent_id) REFERENCES parents (id)")
    # Queue order p1, c1, c31, p2, c2, c32, ...: a chunk holds children of its own parents.
    mdb.execute("DO $$ BEGIN FOR g IN 1..30 LOOP INSERT INTO parents VALUES (g, 'p' || g); "
                "INSERT INTO children VALUES (g, g), (g + 30, g); END LOOP; END $$")
    result = run_cli("run", "--consistent", "--once", "--batch", "7", "--source", mdb_dsn, "--target", wl)
    assert result.returncode == 0 and "WL rejected" not in result.stderr
    assert mysql_execute(wl, "SELECT count(*) FROM children") == [(60,)]
    mdb.execute("DELETE FROM parents WHERE id <= 10")   # the cascade deletes their children in MDB
    result = run_cli("run", "--consistent", "--once", "--batch", "3", "--source", mdb_dsn, "--target", wl)
    assert result.returncode == 0 and "WL rejected" not in result.stderr
    assert run_cli("verify", "--source", mdb_dsn, "--target", wl).returncode == 0
    assert mysql_execute(wl, "SELECT count(*) FROM children") == [(40,)]
    assert mdb.execute("SELECT count(*) FROM wlsync.dead_letter").fetchone()[0] == 0


def test_malformed_mysql_targets_are_refused_when_the_sink_is_made():
    with pytest.raises(TargetError, match=r"^invalid MariaDB target 'mysql://root@127\.0\.0\.1': give mysql://"):
        MySQLSink("mysql://root@127.0.0.1")
    with pytest.raises(TargetError, match=r"^invalid MariaDB target 'mysql://root:\*\*\*@h:port/x': the port"):
        MySQLSink("mysql://root:secret@h:port/x")


@pytest.mark.parametrize("target, fragments", [
    ("mysql://root:secret@127.0.0.1:1/x", ["WL failed: MariaDB mysql://root@127.0.0.1:1/x: cannot connect: ",
                                           "(2003)"]),
    ("mariadb://root@127.0.0.1:3306/wlsync_test_mysql2_none", [
        "WL failed: MariaDB ", "database 'wlsync_test_mysql2_none' does not exist; create it first: "
        "CREATE DATABASE `wlsync_test_mysql2_none`"]),
])
def test_an_unusable_mysql_target_is_one_line_without_its_password(mdb_dsn, target, fragments):
    result = run_cli("run", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("wlsync: error: ") and "secret" not in line
    for fragment in fragments:
        assert fragment in line


def test_driver_survives_its_wl_connection_being_killed_under_load(movies, mdb_dsn, wl, driver_for):
    process = driver_for(wl)
    movies.execute("INSERT INTO movies VALUES (0, 'first', 2000)")
    wait_until(lambda: wl_titles(wl) == {0: "first"}, message="the first row")
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        with psycopg.connect(mdb_dsn, autocommit=True) as conn:
            key = 1
            while not stop.is_set():
                conn.execute("INSERT INTO movies SELECT g, 'm' || g, 2000 FROM generate_series(%s::int, %s::int) g",
                             [key, key + 49])
                written.append(key + 49)
                key += 50
                time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    kills = 0
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            for (thread,) in mysql_execute(wl, "SELECT ID FROM information_schema.PROCESSLIST "
                                          f"WHERE DB = '{wl.rsplit('/', 1)[1]}' AND ID <> CONNECTION_ID()"):
                mysql_execute(wl, f"KILL {thread}")
                kills += 1
            time.sleep(0.7)
    finally:
        stop.set()
        writer.join()
    total = written[-1] + 1
    wait_until(lambda: len(wl_titles(wl)) == total, timeout=30, message=f"all {total} rows in WL")
    assert process.alive()
    log = process.log()
    assert kills >= 3 and log.count(FAILED) >= 3
    assert "MDB unavailable" not in log
    assert run_cli("verify", "--source", mdb_dsn, "--target", wl).returncode == 0


class OwnMariaDB:
    """A throwaway MariaDB server (never the shared one), for crashing and restarting."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="wlsync_test_mysql2_server_"))
        self.dir.chmod(0o755)
        mysql = pwd.getpwnam("mysql")
        os.chown(self.dir, mysql.pw_uid, mysql.pw_gid)
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.dir}/data", "--user=mysql",
                        "--skip-test-db"], check=True, capture_output=True, timeout=120)
        with socket.socket() as probe:   # a free port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"mysql://root@127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.dir}/data", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.dir}/sock", f"--pid-file={self.dir}/pid",
             f"--log-error={self.dir}/error.log", "--user=mysql", "--skip-grant-tables",
             "--innodb-buffer-pool-size=32M"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.accepts, timeout=30, message="the throwaway MariaDB server")

    def accepts(self) -> bool:
        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root", ssl_disabled=True,
                            connect_timeout=2).close()
            return True
        except pymysql.err.OperationalError:
            return False

    def crash(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_mariadb():
    server = OwnMariaDB()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.mark.skipif(shutil.which("mariadb-install-db") is None, reason="needs the MariaDB server package")
def test_driver_survives_a_mariadb_crash_restart(movies, mdb_dsn, own_mariadb, driver_for):
    mysql_execute(own_mariadb.url, "CREATE DATABASE wlsync_test_mysql2_wl")
    wl = own_mariadb.url + "/wlsync_test_mysql2_wl"
    process = driver_for(wl)
    movies.execute("INSERT INTO movies VALUES (1, 'before', 2000)")
    wait_until(lambda: wl_titles(wl) == {1: "before"}, message="the first row")
    own_mariadb.crash()
    movies.execute("INSERT INTO movies VALUES (2, 'while down', 2000)")
    wait_until(lambda: "Can't connect to MySQL server" in process.log(), timeout=15,
               message="the driver to find WL down")
    own_mariadb.start()     # crash recovery, then the same database again
    movies.execute("INSERT INTO movies VALUES (3, 'after', 2000)")
    wait_until(lambda: wl_titles(wl) == {1: "before", 2: "while down", 3: "after"}, timeout=40,
               message="every change made meanwhile")
    assert process.alive()
    assert "MDB unavailable" not in process.log() and FAILED in process.log()
