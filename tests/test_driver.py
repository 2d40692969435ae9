"""End to end: real driver processes between a real MDB and every WL sink."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import sqlite_locked
from tests.driver_helpers import (MOVIES, driver_backends, run_cli, synced_movies_with_three_differences, wait_until,
                                  wl_rows, wl_table, wl_titles)
from wlsync_sinks import SinkError, open_sink


def wait_for_idle(mdb) -> None:
    """Until a driver sleeps on LISTEN (it armed the wake-up)."""
    wait_until(lambda: mdb.execute("SELECT notify_until > now() FROM wlsync.capture_state").fetchone()[0],
               message="the driver to arm the wake-up")


def test_run_once_syncs_every_committed_change_and_nothing_else(movies, mdb_dsn, target, connect):
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979), (2, 'Heat', 1995), (3, 'Ran', 1985)")
    movies.execute("UPDATE movies SET title = 'Aliens' WHERE id = 1")
    movies.execute("DELETE FROM movies WHERE id = 2")
    rolled_back = connect()
    rolled_back.execute("INSERT INTO movies VALUES (4, 'never', 2000)")
    rolled_back.rollback()
    result = run_cli("run", "--once", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 0, result.stderr
    assert wl_titles(target) == {1: "Aliens", 3: "Ran"}
    assert movies.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0
    check = run_cli("verify", "--source", mdb_dsn, "--target", target)
    assert check.returncode == 0 and "verify: WL == MDB" in check.stdout


def test_run_once_ends_under_continuous_writes_with_every_change_made_before_it_began(movies, mdb_dsn, tmp_path,
                                                                                     connect):
    target = f"sqlite:///{tmp_path / 'wl.db'}"
    movies.execute("INSERT INTO movies SELECT g, 'before', 2000 FROM generate_series(1, 3000) AS g")
    stop = threading.Event()

    def write(first: int) -> int:
        """Insert 5 movies per transaction, back to back: with two of these the queue is never empty."""
        conn, written = connect(autocommit=True), 0
        while not stop.is_set():
            conn.execute("INSERT INTO movies SELECT g, 'during', 2001 FROM generate_series(%s::int, %s::int) AS g",
                         [first + written, first + written + 4])
            written += 5
        return written

    with ThreadPoolExecutor(2) as pool:
        writers = [pool.submit(write, first) for first in (100_000, 10_000_000)]
        wait_until(lambda: any(w.done() for w in writers) or movies.execute(
            "SELECT count(*) > 100 FROM movies WHERE title = 'during'").fetchone()[0], message="the writers")
        try:
            result = run_cli("run", "--once", "--source", mdb_dsn, "--target", target, timeout=30)
            writes_went_on = not any(w.done() for w in writers)
        finally:
            stop.set()
            written = sum(w.result() for w in writers)
    assert result.returncode == 0, result.stderr
    assert writes_went_on
    titles = wl_titles(target)
    assert all(titles.get(i) == "before" for i in range(1, 3001)), "a change made before run --once began is missing"
    # What it left behind is the writers', and nothing is lost: the next run takes it.
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    assert len(wl_titles(target)) == 3000 + written


def test_values_of_every_kind_round_trip_and_verify(mdb, mdb_dsn, target):
    mdb.execute('''CREATE SCHEMA "Odd Schema"; CREATE TYPE mood AS ENUM ('ok', 'sad');
        CREATE TABLE "Odd Schema"."Every ""Type""" (k1 text, k2 timestamptz, i int8, n numeric(12,3), f float8,
            nan float8, b bool, by bytea, arr int[], j jsonb, js json, d date, t time, iv interval, u uuid,
            m mood, big text, nul text, PRIMARY KEY (k1, k2))''')
    mdb.execute("SELECT wlsync.track(%s)", ['"Odd Schema"."Every ""Type"""'])
    mdb.execute('''INSERT INTO "Odd Schema"."Every ""Type""" VALUES
        ('a "quoted" key', '2026-03-04 05:06:07.89+02', 9007199254740993, 123456789.125, 1e15, 'NaN', true,
         '\\x00ff10', '{1,NULL,3}', '{"x": "y\\"z", "n": [1, 2.5]}', '{"keep": "spacing" }', '2026-02-28',
         '23:59:59.5', '1 day 02:00:00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'sad', repeat('long ', 40000),
         NULL)''')
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    check = run_cli("verify", "--source", mdb_dsn, "--target", target)
    assert check.returncode == 0, check.stdout + check.stderr
    table = wl_table('Every "Type"', [("k1", "text"), ("k2", "timestamp with time zone"), ("i", "bigint"),
                                      ("n", "numeric(12,3)"), ("nan", "double precision"), ("big", "text")],
                     pk=["k1", "k2"], schema="Odd Schema")
    (row,) = wl_rows(target, table).values()
    assert row["i"] == "9007199254740993"
    assert row["n"] == "123456789.125"
    assert row["nan"] == "NaN"
    assert row["big"] == "long " * 40000


def test_sqlite_stores_integers_of_every_width_as_integers(mdb, mdb_dsn, tmp_path):
    """The SQLite sink passes integers as PostgreSQL's text and lets the INTEGER
    column's type affinity store them: they must land as SQLite integers (not text),
    extremes included, and a delete must find its row by an integer key."""
    mdb.execute("CREATE TABLE ints (k int8 PRIMARY KEY, s int2, i int4, o oid, n int4)")
    mdb.execute("SELECT wlsync.track('ints')")
    sqlite_wl = f"sqlite:///{tmp_path}/wl.db"
    mdb.execute("""INSERT INTO ints VALUES (-9223372036854775808, -32768, -2147483648, 0, NULL),
                                           (9223372036854775807, 32767, 2147483647, 4294967295, 7), (5, 1, 2, 3, 4)""")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", sqlite_wl).returncode == 0
    mdb.execute("DELETE FROM ints WHERE k = 5")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", sqlite_wl).returncode == 0
    with sqlite3.connect(tmp_path / "wl.db") as wl:
        stored = wl.execute("SELECT k, typeof(k), s, typeof(s), i, o, typeof(o), n, typeof(n) FROM ints "
                            "ORDER BY k").fetchall()
    assert stored == [(-9223372036854775808, "integer", -32768, "integer", -2147483648, 0, "integer", None, "null"),
                      (9223372036854775807, "integer", 32767, "integer", 2147483647, 4294967295, "integer", 7,
                       "integer")]
    check = run_cli("verify", "--source", mdb_dsn, "--target", sqlite_wl)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_sqlite_batch_waits_for_another_writers_lock_and_lands_or_fails_at_its_deadline(tmp_path):
    """The SQLite sink tries the file's write lock itself (SQLite's busy handler is
    off for its BEGIN): a batch waits while another connection holds the lock and
    lands once it is released; one whose deadline comes first fails as WL's failure
    and writes nothing."""
    target = f"sqlite:///{tmp_path}/wl.db"
    sink = open_sink(target)
    row = {"table_schema": "public", "table_name": "movies", "pk": {"id": "1"}, "version": 1, "action": "upsert",
           "row_data": {"id": "1", "title": "Alien", "year": "1979"}}
    try:
        sink.ensure_tables({("public", "movies"): MOVIES})
        release = sqlite_locked(target)
        try:
            with pytest.raises(SinkError, match="database is locked"):
                sink.apply([row], time.monotonic() + 0.3)
        finally:
            release()
        assert wl_titles(target) == {}
        release = sqlite_locked(target)
        with ThreadPoolExecutor(max_workers=1) as pool:
            try:
                waiting = pool.submit(sink.apply, [row], time.monotonic() + 30)
                time.sleep(0.5)
                assert not waiting.done()  # waiting for the lock, not failed
            finally:
                release()
            waiting.result(timeout=10)
        assert wl_titles(target) == {1: "Alien"}
    finally:
        sink.close()


@pytest.mark.xdist_group("heavy")   # a latency bound: never beside a soak or the benchmark
def test_committed_change_reaches_wl_within_a_second_through_notify(movies, target, driver):
    driver("--sweep-interval", "60")
    wait_for_idle(movies)
    started = time.monotonic()
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    wait_until(lambda: wl_titles(target) == {1: "Alien"}, timeout=5, message="the row in WL")
    assert time.monotonic() - started < 1.0


def test_sweep_delivers_when_the_notification_is_lost(movies, target, driver):
    process = driver("--sweep-interval", "1")
    wait_for_idle(movies)
    movies.execute("SELECT wlsync.disarm_wakeup()")  # the writer will not notify
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    wait_until(lambda: wl_titles(target) == {1: "Alien"}, timeout=5, message="the sweep to deliver")
    assert process.alive()


def test_terminated_driver_connections_are_survived(movies, target, driver):
    process = driver()
    wait_for_idle(movies)
    pids = driver_backends(movies)
    assert len(pids) == 2
    for pid in pids:
        movies.execute("SELECT pg_terminate_backend(%s)", [pid])
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    wait_until(lambda: wl_titles(target) == {1: "Alien"}, timeout=10, message="delivery after reconnect")
    assert process.alive()
    assert "MDB unavailable" in process.log()
    assert len(driver_backends(movies)) == 2


def test_sigkill_between_wl_commit_and_mdb_commit_converges_after_restart(movies, mdb_dsn, target, driver):
    movies.execute("INSERT INTO movies SELECT g, 'm' || g, 2000 FROM generate_series(1, 50) g")
    process = driver(env={"WLSYNC_TEST_PAUSE_AT": "after_wl_commit", "WLSYNC_TEST_PAUSE_SECONDS": "30"})
    wait_until(lambda: "test pause at after_wl_commit" in process.log(), message="the WL commit")
    process.kill()
    assert len(wl_titles(target)) == 50                       # WL has the batch ...
    assert movies.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 50  # ... MDB still queues it
    movies.execute("UPDATE movies SET title = 'changed' WHERE id = 7")
    movies.execute("DELETE FROM movies WHERE id = 8")
    result = run_cli("run", "--once", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 0, result.stderr
    titles = wl_titles(target)
    assert len(titles) == 49 and titles[7] == "changed" and 8 not in titles
    assert movies.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0
    assert run_cli("verify", "--source", mdb_dsn, "--target", target).returncode == 0


def test_wl_rejecting_a_row_holds_back_only_that_key_and_catches_up_when_fixed(movies, target, refuse_title,
                                                                                 driver):
    movies.execute("INSERT INTO movies VALUES (1, 'fine', 2000)")
    process = driver()
    wait_until(lambda: wl_titles(target) == {1: "fine"}, message="the first row")
    fix = refuse_title(target, "bad")
    movies.execute("INSERT INTO movies VALUES (2, 'bad', 2000), (3, 'also fine', 2000)")
    wait_until(lambda: "WL rejected public.movies" in process.log(), message="the rejection to be logged")
    wait_until(lambda: wl_titles(target) == {1: "fine", 3: "also fine"}, message="the good row past the bad one")
    # WL commits a batch before MDB does: the dead letter is there once MDB has committed too.
    wait_until(lambda: movies.execute("SELECT pk, state FROM wlsync.dead_letters").fetchall() == [({"id": 2}, "retrying")],
               message="key 2's dead letter")
    # Key 2 is held back by its dead letter alone: the claim took its event off the queue.
    assert movies.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0
    fix()
    wait_until(lambda: wl_titles(target) == {1: "fine", 2: "bad", 3: "also fine"}, timeout=15,
               message="the retry once WL accepts")
    wait_until(lambda: movies.execute("SELECT count(*) FROM wlsync.dead_letter").fetchone()[0] == 0,
               message="the dead letter gone (MDB commits after WL)")
    assert process.alive()


def test_sigterm_finishes_the_batch_and_exits_zero(movies, target, driver):
    movies.execute("INSERT INTO movies SELECT g, 'm' || g, 2000 FROM generate_series(1, 20) g")
    process = driver(env={"WLSYNC_TEST_PAUSE_AT": "after_wl_commit", "WLSYNC_TEST_PAUSE_SECONDS": "1"})
    wait_until(lambda: "test pause at after_wl_commit" in process.log(), message="a batch in hand")
    assert process.stop() == 0
    assert movies.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0  # the batch committed
    assert len(wl_titles(target)) == 20


def test_verify_names_every_difference_and_exits_non_zero(movies, mdb_dsn, target):
    synced_movies_with_three_differences(movies, mdb_dsn, target, 5)
    result = run_cli("verify", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert 'public.movies {"id": "1"}: missing in WL' in lines
    assert 'public.movies {"id": "2"}: different (columns: year)' in lines
    assert 'public.movies {"id": "99"}: extra in WL' in lines
    assert lines[-1] == "verify: 3 difference(s)"


def test_a_column_added_in_mdb_appears_in_wl(movies, mdb_dsn, target):
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    movies.execute("ALTER TABLE movies ADD COLUMN rating numeric(3,1)")
    movies.execute("UPDATE movies SET rating = 8.5")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    rated = wl_table("movies", [*((c.name, c.data_type) for c in MOVIES.columns), ("rating", "numeric(3,1)")],
                     pk=["id"])
    assert [row["rating"] for row in wl_rows(target, rated).values()] == ["8.5"]
    assert run_cli("verify", "--source", mdb_dsn, "--target", target).returncode == 0


def test_the_wlsync_console_script_has_the_same_commands():
    script = Path(sys.executable).with_name("wlsync")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "{run,status,verify,backfill,migrate}" in result.stdout


def test_a_column_dropped_in_mdb_stays_in_wl_and_is_no_longer_written(movies, mdb_dsn, target):
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    movies.execute("ALTER TABLE movies DROP COLUMN year")
    movies.execute("UPDATE movies SET title = 'Aliens'")
    movies.execute("INSERT INTO movies VALUES (2, 'Heat')")
    run = run_cli("run", "--once", "--source", mdb_dsn, "--target", target)
    assert run.returncode == 0, run.stderr
    assert movies.execute("SELECT count(*) FROM wlsync.dead_letter").fetchone()[0] == 0
    rows = wl_rows(target, MOVIES)
    assert {key: row["title"] for key, row in rows.items()} == {("1",): "Aliens", ("2",): "Heat"}
    assert rows[("2",)].get("year") is None
    # A table-shaped WL keeps the column's last value; a key-value one replaces whole rows.
    assert rows[("1",)].get("year") in ("1979", None)
    assert run_cli("verify", "--source", mdb_dsn, "--target", target).returncode == 0
