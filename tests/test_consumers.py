"""Named consumers (issue 12): several WLs, each complete and independent, fed from one
capture path. README.md, "Consumers", has the design; these tests drive real drivers
into SQLite and PostgreSQL WLs, stop and kill them, and check both sides."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.conftest import STORES
from tests.driver_helpers import DriverProcess, run_cli, wait_until, wl_rows, wl_table, wl_titles

MOVIES = wl_table("movies", [("id", "integer"), ("title", "text")], pk=["id"])
PEOPLE = wl_table("people", [("id", "integer"), ("name", "text")], pk=["id"])
REVIEWS = wl_table("reviews", [("id", "integer"), ("stars", "integer")], pk=["id"])

SCHEMA = """
CREATE TABLE movies (id int PRIMARY KEY, title text, year int);
CREATE TABLE people (id int PRIMARY KEY, name text);
CREATE TABLE reviews (id int PRIMARY KEY, stars int);
SELECT wlsync.track('movies'), wlsync.track('people');
"""


@pytest.fixture
def wls(request):
    """Two empty WLs: SQLite for the default consumer, PostgreSQL for the second."""
    sqlite = STORES["sqlite"].make(request)
    postgres = STORES["postgresql"].make(request)
    yield next(sqlite), next(postgres)
    for made in (sqlite, postgres):
        next(made, None)


@pytest.fixture
def drivers(mdb_dsn, tmp_path):
    started: list[DriverProcess] = []

    def _start(target: str, consumer: str, *extra: str) -> DriverProcess:
        process = DriverProcess(mdb_dsn, target, tmp_path / f"{consumer}{len(started)}.log", "--consumer", consumer,
                                "--sweep-interval", "1", *extra)
        started.append(process)
        return process

    yield _start
    for process in started:
        process.stop()


def verify(mdb_dsn: str, target: str, consumer: str) -> None:
    result = run_cli("verify", "--source", mdb_dsn, "--target", target, "--consumer", consumer)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def writes(mdb_dsn: str, rounds: int, pause: float = 0.0) -> None:
    """Changes in every table, some rolled back."""
    with psycopg.connect(mdb_dsn) as conn:
        for i in range(rounds):
            conn.execute("INSERT INTO movies VALUES (%s, %s, 2000) ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title",
                         [i % 50, f"m{i}"])
            conn.execute("INSERT INTO people VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                         [i % 30, f"p{i}"])
            conn.execute("INSERT INTO reviews VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET stars = EXCLUDED.stars",
                         [i % 40, i % 5])
            if i % 7 == 0:
                conn.execute("DELETE FROM movies WHERE id = %s", [(i * 3) % 50])
            if i % 11 == 0:
                conn.rollback()
            else:
                conn.commit()
            time.sleep(pause)


def queue_empty(mdb) -> bool:
    return mdb.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0


# -- SQL ------------------------------------------------------------------------------------------

def test_what_was_tracked_belongs_to_the_default_consumer_which_claims_as_before(mdb):
    mdb.execute(SCHEMA)
    assert mdb.execute("SELECT name, tables::text[] FROM wlsync.consumers").fetchall() == [
        ("default", ["movies", "people"])]
    mdb.execute("INSERT INTO movies VALUES (1, 'a', 2000)")
    assert mdb.execute("SELECT wlsync.fan_out()").fetchone()[0] is None  # one consumer: nothing to fan out
    with mdb.transaction():
        assert [r[0] for r in mdb.execute("SELECT pk FROM wlsync.claim_sync_events()")] == [{"id": "1"}]
        raise psycopg.Rollback()


def test_fan_out_copies_each_event_to_every_consumer_of_its_table(mdb):
    mdb.execute(SCHEMA)
    assert mdb.execute("SELECT wlsync.add_consumer('search', ARRAY['movies', 'reviews']::regclass[])"
                       ).fetchone()[0] == 2
    mdb.execute("INSERT INTO movies VALUES (1, 'a', 2000)")
    mdb.execute("INSERT INTO people VALUES (1, 'p')")
    mdb.execute("INSERT INTO reviews VALUES (1, 5)")
    assert mdb.execute("SELECT wlsync.fan_out()").fetchone()[0] == 3
    pending = mdb.execute("SELECT consumer, t.relid::regclass::text FROM wlsync.queue AS q "
                          "JOIN wlsync.tracked_table AS t USING (table_id) ORDER BY 1, 2").fetchall()
    assert pending == [("default", "movies"), ("default", "people"), ("search", "movies"), ("search", "reviews")]
    with mdb.transaction():
        rows = mdb.execute("SELECT table_name, action FROM wlsync.claim_sync_events(10, 'search') ORDER BY 1").fetchall()
        assert rows == [("movies", "upsert"), ("reviews", "upsert")]
    assert mdb.execute("SELECT count(*) FROM wlsync.queue WHERE consumer = 'default'").fetchone()[0] == 2


def test_a_writer_runs_the_same_capture_function_whatever_the_consumers(mdb):
    """Issue 12's write path: adding consumers changes nothing a writer executes (the
    fan-out happens later, in drivers' transactions)."""
    mdb.execute(SCHEMA)
    capture = ("SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc AS p "
               "WHERE p.pronamespace = 'wlsync'::regnamespace AND p.proname LIKE '\\_capture\\_row\\_%' "
               "ORDER BY 1")
    triggers = "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'movies'::regclass ORDER BY 1"
    before = mdb.execute(capture).fetchall(), mdb.execute(triggers).fetchall()
    assert len(before[0]) == 2
    for name in ("c2", "c3", "c4"):
        mdb.execute("SELECT wlsync.add_consumer(%s, ARRAY['movies', 'people']::regclass[])", [name])
    assert (mdb.execute(capture).fetchall(), mdb.execute(triggers).fetchall()) == before
    mdb.execute("INSERT INTO movies VALUES (1, 'a', 2000)")
    assert mdb.execute("SELECT ring, count(*) FROM wlsync.queue GROUP BY ring").fetchall() == [(0, 1)]


def test_consumer_names_and_unknown_consumers_are_clear_errors(mdb):
    mdb.execute(SCHEMA)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is not a consumer name"):
        mdb.execute("SELECT wlsync.add_consumer('Search Index', ARRAY[]::regclass[])")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"no consumer named 'nope' \(consumers: default\)"):
        mdb.execute("SELECT * FROM wlsync.claim_sync_events(10, 'nope')")


# -- drivers --------------------------------------------------------------------------------------

def test_two_consumers_into_two_sinks_each_get_every_change_of_their_tables(mdb, mdb_dsn, wls, drivers):
    sqlite, postgres = wls
    mdb.execute(SCHEMA)
    mdb.execute("SELECT wlsync.add_consumer('search', ARRAY['movies', 'reviews']::regclass[])")
    drivers(sqlite, "default")
    drivers(postgres, "search")
    writes(mdb_dsn, 300)
    wait_until(lambda: queue_empty(mdb), timeout=60, message="both consumers to drain")
    verify(mdb_dsn, sqlite, "default")
    verify(mdb_dsn, postgres, "search")
    assert len(wl_rows(sqlite, MOVIES)) == len(wl_rows(postgres, MOVIES)) == mdb.execute(
        "SELECT count(*) FROM movies").fetchone()[0]
    assert wl_rows(sqlite, REVIEWS) == {} and wl_rows(postgres, PEOPLE) == {}  # each gets its own tables only
    assert len(wl_rows(postgres, REVIEWS)) == 40


def test_a_stopped_consumer_neither_blocks_nor_loses_anything(mdb, mdb_dsn, wls, drivers):
    sqlite, postgres = wls
    mdb.execute(SCHEMA)
    mdb.execute("SELECT wlsync.add_consumer('search', ARRAY['movies', 'reviews']::regclass[])")
    drivers(sqlite, "default")
    search = drivers(postgres, "search")
    writes(mdb_dsn, 50)
    wait_until(lambda: queue_empty(mdb), timeout=60, message="both consumers to drain")
    search.stop()

    writes(mdb_dsn, 200)  # the default consumer keeps up meanwhile
    wait_until(lambda: mdb.execute("SELECT pending_events FROM wlsync.consumers WHERE name = 'default'"
                                   ).fetchone()[0] == 0, timeout=60, message="the default consumer to keep up")
    verify(mdb_dsn, sqlite, "default")
    assert mdb.execute("SELECT pending_events FROM wlsync.consumers WHERE name = 'search'").fetchone()[0] > 100

    drivers(postgres, "search")  # back: it catches up with what waited for it
    wait_until(lambda: queue_empty(mdb), timeout=60, message="search to catch up")
    verify(mdb_dsn, postgres, "search")


def test_a_consumer_added_to_populated_tables_under_live_writes_starts_complete(mdb, mdb_dsn, wls, drivers):
    sqlite, postgres = wls
    mdb.execute(SCHEMA)
    mdb.execute("INSERT INTO movies SELECT g, 'old' || g, 1990 FROM generate_series(100, 2099) g")
    drivers(sqlite, "default")
    writer = threading.Thread(target=writes, args=(mdb_dsn, 300, 0.01))
    writer.start()
    time.sleep(0.5)
    mdb.execute("SELECT wlsync.add_consumer('late', ARRAY['movies']::regclass[])")
    late = drivers(postgres, "late")
    writer.join(120)
    wait_until(lambda: queue_empty(mdb) and "backfill pass of movies complete" in late.log(),
               timeout=60, message="the new consumer's backfill and drain")
    verify(mdb_dsn, postgres, "late")
    verify(mdb_dsn, sqlite, "default")
    assert len(wl_rows(postgres, MOVIES)) >= 2000


def test_removing_a_consumer_drops_its_events_and_leaves_the_other_alone(mdb, mdb_dsn, wls, drivers):
    sqlite, _postgres = wls
    mdb.execute(SCHEMA)
    mdb.execute("SELECT wlsync.add_consumer('gone', ARRAY['movies']::regclass[])")
    drivers(sqlite, "default")
    writes(mdb_dsn, 100)
    wait_until(lambda: mdb.execute("SELECT count(*) FROM wlsync.queue WHERE consumer IS DISTINCT FROM 'gone'"
                                   ).fetchone()[0] == 0, timeout=60, message="the default consumer to drain")
    waiting = mdb.execute("SELECT count(*) FROM wlsync.queue WHERE consumer = 'gone'").fetchone()[0]
    assert waiting > 0
    assert mdb.execute("SELECT wlsync.remove_consumer('gone')").fetchone()[0] == waiting
    assert mdb.execute("SELECT name FROM wlsync.consumers").fetchall() == [("default",)]
    assert mdb.execute("SELECT to_regclass('wlsync.pending_2_0')").fetchone()[0] is None
    writes(mdb_dsn, 20)
    wait_until(lambda: queue_empty(mdb), timeout=60, message="the default consumer to drain")
    verify(mdb_dsn, sqlite, "default")


def test_a_stopped_consumer_past_max_pending_is_dropped_and_rebuilds_itself(mdb, mdb_dsn, wls, drivers):
    sqlite, postgres = wls
    mdb.execute(SCHEMA)
    mdb.execute("INSERT INTO movies SELECT g, 'm' || g, 2000 FROM generate_series(100, 149) g")
    mdb.execute("SELECT wlsync.add_consumer('small', ARRAY['movies']::regclass[], 50)")
    drivers(sqlite, "default")
    small = drivers(postgres, "small")
    wait_until(lambda: len(wl_titles(postgres)) == 50, timeout=60, message="small's first copy")
    small.stop()

    # Meanwhile: changes past its limit, and rows deleted whose events will be dropped.
    mdb.execute("DELETE FROM movies WHERE id BETWEEN 100 AND 109")
    writes(mdb_dsn, 200)
    mdb.execute("UPDATE wlsync.consumer SET pending_checked_at = NULL")  # the next maintenance looks now
    wait_until(lambda: mdb.execute("SELECT resync_requested_at IS NOT NULL FROM wlsync.consumers "
                                   "WHERE name = 'small'").fetchone()[0], timeout=30,
               message="the default consumer's driver to drop small's backlog")
    dropped, pending = mdb.execute("SELECT dropped_events, pending_events FROM wlsync.consumers "
                                   "WHERE name = 'small'").fetchone()
    assert dropped > 50 and pending <= 50
    status = run_cli("status", "--source", mdb_dsn, "--consumer", "small")
    assert "pending events dropped past max_pending, WL rebuild requested" in status.stdout

    small = drivers(postgres, "small")  # back: it rebuilds WL by itself
    wait_until(lambda: "WL rebuilt; resync done" in small.log(), timeout=60, message="small's rebuild")
    wait_until(lambda: queue_empty(mdb), timeout=60, message="both consumers to drain")
    verify(mdb_dsn, postgres, "small")
    assert not set(range(100, 110)) & {int(key[0]) for key in wl_rows(postgres, MOVIES)}  # gone from MDB and WL
    assert mdb.execute("SELECT resync_requested_at FROM wlsync.consumers WHERE name = 'small'").fetchone()[0] is None
    verify(mdb_dsn, sqlite, "default")


def test_two_consumers_with_drivers_killed_at_random_both_end_equal_to_mdb(mdb, mdb_dsn, wls, drivers):
    """The default consumer drains with two normal drivers, search with two consistent
    ones (one active, one standing by: its snapshot batches take the writers' ring
    themselves and hand the default consumer its copies); drivers are SIGKILLed in turn."""
    sqlite, postgres = wls
    mdb.execute(SCHEMA)
    mdb.execute("SELECT wlsync.add_consumer('search', ARRAY['movies', 'reviews', 'people']::regclass[])")
    args = {"default": (sqlite, "--batch", "20"), "search": (postgres, "--batch", "20", "--consistent")}
    running = {(consumer, n): drivers(args[consumer][0], consumer, *args[consumer][1:])
               for consumer in args for n in (0, 1)}
    writer = threading.Thread(target=writes, args=(mdb_dsn, 600, 0.005))
    writer.start()
    kills = 0
    while writer.is_alive():
        time.sleep(0.7)
        victim = sorted(running)[kills % len(running)]
        running[victim].kill()
        kills += 1
        consumer = victim[0]
        running[victim] = drivers(args[consumer][0], consumer, *args[consumer][1:])
    wait_until(lambda: queue_empty(mdb), timeout=90, message="both consumers to drain")
    assert kills >= 4
    verify(mdb_dsn, sqlite, "default")
    verify(mdb_dsn, postgres, "search")
