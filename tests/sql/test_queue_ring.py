"""The queue ring: rotation, sealing, TRUNCATE, and rows that arrive late or behind the scan."""
import time

import pytest

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


def test_a_sealed_slot_emptied_to_no_block_is_still_walked_truncated_and_rotation_goes_on(movies):
    """Claims skip slots with no block, but not a sealed one: a sealed slot emptied
    outside the claims (VACUUM's truncation of empty pages, a TRUNCATE by hand) must
    still be walked, or maintenance never TRUNCATEs it and the ring stops rotating."""
    movies.execute("INSERT INTO movies SELECT g, 't', 1 FROM generate_series(1, 100) g")
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["rotated 0 -> 1"]
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["sealed 0"]
    movies.execute("TRUNCATE wlsync.queue_0")                          # emptied behind the claims' back
    assert claimed_ids(movies) == []                                   # walks slot 0 to its (recorded) end
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["truncated 0"]
    movies.execute("INSERT INTO movies SELECT g, 't', 1 FROM generate_series(101, 200) g")
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["rotated 1 -> 2"]


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
    movies.execute("CREATE TABLE other (id int PRIMARY KEY)")
    movies.execute("INSERT INTO other SELECT generate_series(1, 10)")
    movies.execute("SELECT wlsync.track('other')")
    truncate = connect()
    truncate.execute("TRUNCATE other")                # its capture holds the capture lock (shared)
    backfill = connect()
    backfill.execute("SELECT wlsync.backfill('movies')")  # holds the default consumer's ring lock (shared)
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == []
    truncate.commit()
    assert movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0] == ["rotated 0 -> 1"]
    backfill.commit()
    assert "rotated pending_1_0 -> pending_1_1" in movies.execute("SELECT wlsync.maintain_queue(1)").fetchone()[0]


def test_one_maintenance_at_a_time(movies, connect):
    first = connect()
    first.execute("SELECT wlsync.maintain_queue()")                     # holds its lock until commit
    assert movies.execute("SELECT wlsync.maintain_queue()").fetchone()[0] == [
        "skipped: another maintenance is running"]
    first.commit()
    assert movies.execute("SELECT wlsync.maintain_queue()").fetchone()[0] == []


def test_the_armed_wake_up_reads_the_same_in_every_datestyle(movies, connect):
    movies.execute("SET DateStyle = 'SQL, DMY'")
    movies.execute("SELECT wlsync.arm_wakeup('30 days')")                # a day of month above 12
    writer, listener = connect(autocommit=True), connect(autocommit=True)
    listener.execute("LISTEN wlsync_v1")
    writer.execute("SET DateStyle = 'ISO, MDY'")
    writer.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    assert len(list(listener.notifies(timeout=1, stop_after=1))) == 1


def test_a_queue_row_injected_by_a_writer_is_harmless(movies, connect):
    movies.execute("DROP ROLE IF EXISTS app_injector")
    movies.execute("CREATE ROLE app_injector LOGIN")
    try:
        movies.execute("INSERT INTO movies VALUES (1, 'real', 1)")
        injector = connect(autocommit=True, user="app_injector")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):       # the server's clock only
            injector.execute("INSERT INTO wlsync.queue_0 (table_id, pk, enqueued_at) "
                             "VALUES (1, '{\"id\": 1}', '-infinity')")
        table_id = movies.execute("SELECT table_id FROM wlsync.tracked_table").fetchone()[0]
        for key in ('{"id": "not a number"}', '{"id": 2}', '{"other": 1}'):
            injector.execute("INSERT INTO wlsync.queue_1 (table_id, pk) VALUES (%s, %s)", [table_id, key])
        injector.execute("INSERT INTO wlsync.queue_2 (table_id, pk) VALUES (12345, '{\"id\": 1}')")
        injector.close()
        with movies.transaction():
            rows = {r["pk"]["id"]: r["action"] for r in claim(movies)}
        # The real row as it is, a key with no row reads as gone; the rest is dropped.
        assert rows == {"1": "upsert", "2": "delete"}
        assert queue_rows(movies) == []
    finally:
        movies.execute("DROP OWNED BY app_injector")
        movies.execute("DROP ROLE app_injector")


def test_a_slot_truncated_by_a_maintenance_is_made_current_only_by_a_later_one(movies):
    """Its lock is held until that maintenance commits, after writers see the new capture functions."""
    def maintain(blocks):
        return movies.execute("SELECT wlsync.maintain_queue(%s)", [blocks]).fetchone()[0]
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    assert maintain(1) == ["rotated 0 -> 1"]
    movies.execute("INSERT INTO movies VALUES (2, 'b', 1)")
    assert maintain(1) == ["sealed 0", "rotated 1 -> 2"]
    assert claimed_ids(movies) == [1, 2] and claimed_ids(movies) == []
    movies.execute("INSERT INTO movies VALUES (3, 'c', 1)")             # slot 2 is full enough to rotate
    done = maintain(1)
    assert "truncated 0" in done and not any(d.startswith("rotated") for d in done)
    assert maintain(1)[-1] == "rotated 2 -> 0"
