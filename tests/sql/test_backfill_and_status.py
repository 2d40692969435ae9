"""wlsync.backfill and wlsync.queue_status."""
import datetime

import psycopg
import pytest

from tests.conftest import claim, queue_rows


def test_backfill_enqueues_every_existing_row(mdb):
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text)")
    mdb.execute("INSERT INTO movies SELECT g, 'm' || g FROM generate_series(1, 50) g")
    mdb.execute("SELECT wlsync.track('movies')")
    assert queue_rows(mdb) == []
    assert mdb.execute("SELECT wlsync.backfill('movies')").fetchone()[0] == 50
    with mdb.transaction():
        rows = claim(mdb)
    assert sorted(int(r["row_data"]["id"]) for r in rows) == list(range(1, 51))
    assert all(r["action"] == "upsert" for r in rows)


def test_backfill_of_untracked_table_says_to_track_it(mdb):
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not tracked") as err:
        mdb.execute("SELECT wlsync.backfill('movies')")
    assert err.value.diag.message_hint == "Run SELECT wlsync.track('public.movies'); first."


def test_queue_status_counts_pending_events_per_table_without_consuming(mdb):
    mdb.execute("CREATE TABLE a (id int PRIMARY KEY)")
    mdb.execute("CREATE TABLE b (id int PRIMARY KEY)")
    mdb.execute("SELECT wlsync.track('a'), wlsync.track('b')")
    mdb.execute("INSERT INTO a VALUES (1), (2)")
    rows = mdb.execute("SELECT table_name, pending_events, oldest_age FROM wlsync.queue_status()").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("a", 2), ("b", 0)]
    assert isinstance(rows[0][2], datetime.timedelta) and rows[1][2] is None
    assert len(queue_rows(mdb)) == 2
