"""Certainty under concurrency: parallel drivers, never backwards, backfill while live, verify --repair."""
from __future__ import annotations

import json
import random
import re
import threading
import time

import psycopg
import pytest

from tests.conftest import claim, queue_rows
from tests.driver_helpers import run_cli, synced_movies_with_three_differences, wait_until, wl_titles
from tests.soak import run_soak


def test_backfill_goes_in_chunks_and_resumes_where_it_stopped(mdb, connect):
    mdb.execute("CREATE TABLE t (a int, b text, PRIMARY KEY (a, b))")
    mdb.execute("INSERT INTO t SELECT g / 3, 'k' || g % 3 FROM generate_series(0, 24) g")
    mdb.execute("SELECT wlsync.track('t')")
    first = connect()
    assert first.execute("SELECT wlsync.backfill('t', 10)").fetchone()[0] == 10
    first.commit()
    first.close()                                         # interrupted: a new session resumes
    second = connect(autocommit=True)
    assert second.execute("SELECT wlsync.backfill('t', 10)").fetchone()[0] == 10
    assert second.execute("SELECT wlsync.backfill('t', 10)").fetchone()[0] == 5
    assert second.execute("SELECT wlsync.backfill('t', 10)").fetchone()[0] == 0
    keys = [(r[1]["a"], r[1]["b"]) for r in queue_rows(mdb)]
    assert len(keys) == 25 and len(set(keys)) == 25
    state = mdb.execute("SELECT enqueued, completed_at IS NOT NULL FROM wlsync.backfill_state").fetchone()
    assert state == (25, True)
    assert second.execute("SELECT wlsync.backfill('t')").fetchone()[0] == 25   # a completed pass starts anew


def test_backfill_refuses_a_non_positive_chunk(movies):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_max_rows must be at least 1"):
        movies.execute("SELECT wlsync.backfill('movies', 0)")


def test_backfill_while_writers_are_busy_ends_with_wl_equal_to_mdb(mdb, mdb_dsn, target, driver):
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text, year int)")
    mdb.execute("INSERT INTO movies SELECT g, 'old ' || g, 2000 FROM generate_series(1, 20000) g")
    mdb.execute("SELECT wlsync.track('movies')")
    driver()
    stop = threading.Event()

    def write():
        rng = random.Random(3)
        with psycopg.connect(mdb_dsn, autocommit=True) as conn:
            while not stop.is_set():
                key = rng.randint(1, 25000)
                if rng.random() < 0.6:
                    conn.execute("INSERT INTO movies VALUES (%s, 'live', 1) ON CONFLICT (id) DO UPDATE "
                                 "SET title = 'live ' || movies.year, year = movies.year + 1", [key])
                else:
                    conn.execute("DELETE FROM movies WHERE id = %s", [key])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        result = run_cli("backfill", "--source", mdb_dsn, "--table", "movies", "--chunk", "2000")
    finally:
        stop.set()
        writer.join()
    assert result.returncode == 0, result.stderr
    assert re.search(r"movies: (\d+) keys enqueued, backfill pass complete", result.stdout), result.stdout[-500:]
    # The pass's keys (the driver helps with its consumer's incomplete passes):
    # 20,000 rows, a few deleted meanwhile.
    assert mdb.execute("SELECT enqueued FROM wlsync.backfill_state WHERE completed_at IS NOT NULL"
                       ).fetchone()[0] > 10000
    wait_until(lambda: mdb.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0, timeout=60,
               message="the queue to drain")
    check = run_cli("verify", "--source", mdb_dsn, "--target", target)
    assert check.returncode == 0, check.stdout[-1000:]


def test_verify_repair_re_enqueues_differences_and_the_next_drain_fixes_wl(movies, mdb_dsn, target):
    synced_movies_with_three_differences(movies, mdb_dsn, target, 10)
    repair = run_cli("verify", "--repair", "--source", mdb_dsn, "--target", target)
    assert repair.returncode == 1
    assert "verify: 3 key(s) re-enqueued" in repair.stdout
    assert sorted(r[1]["id"] for r in queue_rows(movies)) == [1, 2, 99]
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    again = run_cli("verify", "--source", mdb_dsn, "--target", target)
    assert again.returncode == 0, again.stdout
    assert wl_titles(target) == {i: f"m{i}" for i in range(1, 11)}


def test_a_driver_holding_an_old_read_of_a_key_cannot_take_wl_back(movies, mdb_dsn, target, driver):
    """Driver A claims key 1 and stalls before writing WL; the key changes; driver B syncs it.

    Both batches hold key 1 at once. A's write, when it comes, carries the version
    of an older snapshot than B's, so WL keeps B's row.
    """
    movies.execute("INSERT INTO movies VALUES (1, 'v1', 1), (2, 'other', 2)")
    holder = driver(env={"WLSYNC_TEST_PAUSE_AT": "before_wl_write", "WLSYNC_TEST_PAUSE_SECONDS": "3"})
    wait_until(lambda: "test pause at before_wl_write" in holder.log(), message="A holding keys 1 and 2")
    movies.execute("UPDATE movies SET title = 'v2' WHERE id = 1")
    movies.execute("INSERT INTO movies VALUES (3, 'free', 3)")
    other = driver()
    wait_until(lambda: wl_titles(target) == {1: "v2", 3: "free"}, message="B syncing keys 1 and 3")
    # A is still stalled: its write comes after B's, as the case needs (else the stall was too short).
    assert "synced 2 events (2 keys)" not in holder.log()
    wait_until(lambda: "synced 2 events (2 keys)" in holder.log(), message="A writing its stale batch")
    assert wl_titles(target) == {1: "v2", 2: "other", 3: "free"}   # key 1 stayed at B's newer row
    assert holder.alive() and other.alive()


def soak_and_check(mdb, mdb_dsn, target, tmp_path, **kwargs) -> dict:
    stats = run_soak(mdb, mdb_dsn, target, tmp_path, **kwargs)
    print("soak:", {k: v for k, v in stats.items() if k != "verify_output"})
    assert stats["violations"] == []
    assert stats["verify_code"] == 0, stats["verify_output"]
    assert stats["wl_log_rows"] == stats["committed"] == stats["mdb_log_rows"]
    assert stats["committed"] > 50 and stats["kills"] >= 2 and stats["observer_polls"] > 50
    return stats


@pytest.mark.xdist_group("heavy")   # one soak at a time: each loads both cores
def test_soak_short(mdb, mdb_dsn, target, tmp_path):
    soak_and_check(mdb, mdb_dsn, target, tmp_path, seconds=8, writers=3, drivers=3, kill_every=1.5)


@pytest.mark.soak
def test_soak_long(mdb, mdb_dsn, target, tmp_path):
    soak_and_check(mdb, mdb_dsn, target, tmp_path, seconds=120, writers=4, drivers=4, kill_every=2.0)


@pytest.mark.soak
def test_a_million_rows_backfill_sync_and_verify_in_bounded_memory(mdb, mdb_dsn, tmp_path):
    target = f"sqlite:///{tmp_path}/wl.db"
    mdb.execute("CREATE TABLE big (id bigint PRIMARY KEY, title text, n numeric, at timestamptz)")
    mdb.execute("INSERT INTO big SELECT g, 'title ' || g, g / 7.0, now() FROM generate_series(1, 1000000) g")
    mdb.execute("SELECT wlsync.track('big')")
    started = time.monotonic()
    assert run_cli("backfill", "--source", mdb_dsn, "--chunk", "50000", timeout=600).returncode == 0
    backfilled = time.monotonic()
    run = run_cli("--log-json", "run", "--once", "--source", mdb_dsn, "--target", target, timeout=1200)
    assert run.returncode == 0, run.stderr[-2000:]
    drained = time.monotonic()
    check = run_cli("--log-json", "verify", "--source", mdb_dsn, "--target", target, timeout=1200)
    assert check.returncode == 0, check.stdout[-2000:]
    run_rss = json.loads(run.stderr.strip().splitlines()[-1])["peak_rss_mb"]
    verify_rss = json.loads(check.stderr.strip().splitlines()[-1])["peak_rss_mb"]
    print(f"1M rows: backfill {backfilled - started:.0f} s, drain {drained - backfilled:.0f} s, "
          f"verify {time.monotonic() - drained:.0f} s; peak RSS run {run_rss} MB, verify {verify_rss} MB")
    assert run_rss < 100 and verify_rss < 100


def test_run_once_takes_a_new_change_of_a_key_another_batch_holds(movies, mdb_dsn, target, connect):
    movies.execute("INSERT INTO movies VALUES (1, 'v1', 1)")
    other_batch = connect()
    assert [r["pk"] for r in claim(other_batch)] == [{"id": "1"}]   # holds key 1's event, uncommitted
    movies.execute("UPDATE movies SET title = 'v2' WHERE id = 1")     # key 1's new event
    result = run_cli("run", "--once", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 0, result.stderr
    assert wl_titles(target) == {1: "v2"}
    other_batch.commit()
    assert movies.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0
