"""The queue ring: rotation, sealing, TRUNCATE, and rows that arrive late or behind the scan."""
import time

import psycopg

from tests.conftest import claim, queue_rows


def slots(conn) -> dict[int, str]:
    return dict(conn.execute("SELECT slot, state FROM wlsync.queue_slot").fetchall())


def claimed_ids(conn, batch: int = 1000) -> list[int]:
    with conn.transaction():
        return sorted(int(r["pk"]["id"]) for r in claim(conn, batch))


def test_a_row_committed_late_behind_the_scan_point_is_still_claimed(movies, connect):
    late = connect()
    late.execute("INSERT INTO movies VALUES (0, 'late', 1)")            # first in the slot, not committed
    movies.execute("INSERT INTO movies SELECT g, 't', 1 FROM generate_series(1, 3000) g")
    assert len(claimed_ids(movies)) == 1000
    assert len(claimed_ids(movies)) == 1000                              # the scan point moved on
    late.commit()
    rest = claimed_ids(movies, 5000)
    assert 0 in rest and len(rest) == 1001
    assert queue_rows(movies) == []


def test_a_writer_open_across_a_rotation_is_delivered_once_it_commits(movies, connect):
    writer = connect()
    writer.execute("INSERT INTO movies VALUES (1, 'before the rotation', 1)")   # into slot 0, open
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["rotated 0 -> 1"]
    movies.execute("INSERT INTO movies VALUES (2, 'after the rotation', 1)")    # into slot 1
    assert movies.execute("SELECT wlsync.maintain_queue(1000)").fetchone()[0] == []  # writer may still insert
    assert slots(movies)[0] == "retired"
    writer.execute("INSERT INTO movies VALUES (3, 'same transaction, later', 1)")
    assert claimed_ids(movies) == [2]
    writer.commit()
    assert movies.execute("SELECT wlsync.maintain_queue(1000)").fetchone()[0] == ["sealed 0"]
    assert claimed_ids(movies) == [1, 3]
    assert claimed_ids(movies) == []                                   # walks slot 0 to its end
    done = movies.execute("SELECT wlsync.maintain_queue(1000)").fetchone()[0]
    assert "truncated 0" in done and slots(movies) == {0: "free", 1: "current", 2: "free"}


def test_a_long_read_only_transaction_delays_neither_the_seal_nor_the_truncate(movies, connect):
    reader = connect()
    reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    reader.execute("SELECT count(*) FROM movies").fetchone()           # holds a snapshot from here on
    movies.execute("INSERT INTO movies SELECT g, 't', 1 FROM generate_series(1, 100) g")
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["rotated 0 -> 1"]
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["sealed 0"]
    assert len(claimed_ids(movies)) == 100 and claimed_ids(movies) == []
    assert movies.execute("SELECT wlsync.maintain_queue(1000)").fetchone()[0] == ["truncated 0"]
    assert movies.execute("SELECT pg_relation_size('wlsync.queue_0')").fetchone()[0] == 0
    reader.rollback()


def test_the_truncate_never_waits_and_writers_never_wait_for_it(movies, connect):
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    movies.execute("SELECT wlsync.maintain_queue(1)")
    movies.execute("SELECT wlsync.maintain_queue(1)")                  # slot 0 sealed
    assert claimed_ids(movies) == [1] and claimed_ids(movies) == []
    peeker = connect()
    peeker.execute("SELECT count(*) FROM wlsync.queue_0").fetchone()    # a session holding the slot
    writer = connect()
    writer.execute("INSERT INTO movies VALUES (2, 'b', 1)")             # an open writer, into slot 1
    started = time.monotonic()
    assert movies.execute("SELECT wlsync.maintain_queue(1000)").fetchone()[0] == ["truncate 0 postponed: in use"]
    assert time.monotonic() - started < 1
    peeker.rollback()
    assert movies.execute("SELECT wlsync.maintain_queue(1000)").fetchone()[0] == ["truncated 0"]
    writer.execute("INSERT INTO movies VALUES (3, 'c', 1)")             # not blocked by the TRUNCATE
    writer.commit()
    assert claimed_ids(movies) == [2, 3]


def test_rotation_waits_for_no_one_and_skips_while_an_sql_enqueuer_is_in_flight(movies, connect):
    movies.execute("INSERT INTO movies SELECT g, 't', 1 FROM generate_series(1, 10) g")
    backfill = connect()
    backfill.execute("SELECT wlsync.backfill('movies')")               # holds the capture lock (shared)
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == []
    backfill.commit()
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["rotated 0 -> 1"]
