"""The capture triggers: one event per committed change, none for the rest."""
import select
import time

import psycopg
import pytest

from tests.conftest import queue_rows


def test_insert_update_delete_each_enqueue_the_key(movies):
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    movies.execute("UPDATE movies SET year = 1980 WHERE id = 1")
    movies.execute("DELETE FROM movies WHERE id = 1")
    assert queue_rows(movies) == [("movies", {"id": 1}), ("movies", {"id": 1}), ("movies", {"id": 1})]


def test_rolled_back_changes_leave_no_event(movies, connect):
    writer = connect()
    writer.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    writer.execute("UPDATE movies SET title = 'x'")
    writer.rollback()
    assert queue_rows(movies) == []


def test_update_that_changes_nothing_makes_no_event(movies):
    movies.execute("CREATE TABLE docs (id int PRIMARY KEY, body json)")  # json has no equality operator
    movies.execute("SELECT wlsync.track('docs')")
    movies.execute("""INSERT INTO movies VALUES (1, 'Alien', 1979); INSERT INTO docs VALUES (1, '{"a": 1}')""")
    movies.execute("TRUNCATE wlsync.queue_0, wlsync.queue_1, wlsync.queue_2")
    movies.execute("UPDATE movies SET year = year, title = title")
    movies.execute("UPDATE docs SET body = body")
    assert queue_rows(movies) == []
    movies.execute("UPDATE movies SET year = NULL")
    assert queue_rows(movies) == [("movies", {"id": 1})]


def test_update_of_the_primary_key_enqueues_old_and_new_key(movies):
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    movies.execute("TRUNCATE wlsync.queue_0, wlsync.queue_1, wlsync.queue_2")
    movies.execute("UPDATE movies SET id = 2")
    assert sorted(r[1]["id"] for r in queue_rows(movies)) == [1, 2]


def test_truncate_enqueues_every_key_it_removes(movies):
    movies.execute("INSERT INTO movies SELECT g, 't', 2000 FROM generate_series(1, 3) g")
    movies.execute("TRUNCATE wlsync.queue_0, wlsync.queue_1, wlsync.queue_2")
    movies.execute("TRUNCATE movies")
    assert queue_rows(movies) == [("movies", {"id": i}) for i in (1, 2, 3)]


def test_timestamptz_key_has_one_spelling_whatever_the_writer_time_zone(mdb, connect):
    mdb.execute("CREATE TABLE ticks (at timestamptz PRIMARY KEY, v int)")
    mdb.execute("SELECT wlsync.track('ticks')")
    paris, tokyo = connect(autocommit=True), connect(autocommit=True)
    paris.execute("SET TimeZone = 'Europe/Paris'")
    tokyo.execute("SET TimeZone = 'Asia/Tokyo'")
    paris.execute("INSERT INTO ticks VALUES ('2026-01-01 12:00:00+00', 1)")
    tokyo.execute("UPDATE ticks SET v = 2")
    keys = [r[1] for r in queue_rows(mdb)]
    assert keys == [{"at": "2026-01-01T12:00:00"}, {"at": "2026-01-01T12:00:00"}]


def test_writer_without_any_wlsync_privilege_can_write_tracked_tables(movies, connect):
    movies.execute("DROP ROLE IF EXISTS app_writer")
    movies.execute("CREATE ROLE app_writer LOGIN")
    try:
        movies.execute("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON movies TO app_writer")
        writer = connect(autocommit=True, user="app_writer")
        writer.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
        writer.execute("UPDATE movies SET year = 1")
        writer.execute("TRUNCATE movies")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute("SELECT * FROM wlsync.queue")
        writer.close()
        assert len(queue_rows(movies)) == 3
    finally:
        movies.execute("DROP OWNED BY app_writer")
        movies.execute("DROP ROLE app_writer")


def notifications(conn, wait: float = 0.3) -> int:
    """How many NOTIFY wlsync_v1 reached the listening connection within `wait` seconds."""
    count = 0
    select.select([conn.fileno()], [], [], wait)
    for _ in conn.notifies(timeout=0.01):
        count += 1
    return count


def test_writers_notify_only_while_a_driver_is_armed(movies, connect):
    listener = connect(autocommit=True)
    listener.execute("LISTEN wlsync_v1")
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    assert notifications(listener) == 0
    movies.execute("SELECT wlsync.arm_wakeup('1 minute')")
    movies.execute("INSERT INTO movies VALUES (2, 'b', 2)")
    assert notifications(listener) == 1
    movies.execute("SELECT wlsync.disarm_wakeup()")
    movies.execute("INSERT INTO movies VALUES (3, 'c', 3)")
    assert notifications(listener) == 0


def test_an_expired_arming_stops_the_notifications(movies, connect):
    listener = connect(autocommit=True)
    listener.execute("LISTEN wlsync_v1")
    movies.execute("SELECT wlsync.arm_wakeup('0.3 seconds')")
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    assert notifications(listener) == 1
    time.sleep(0.4)   # the generated capture function still holds the arming, now past
    movies.execute("INSERT INTO movies VALUES (2, 'b', 2)")
    assert notifications(listener) == 0


@pytest.mark.parametrize("ddl, setting_a, setting_b, value", [
    ("CREATE DOMAIN stamp AS timestamptz; CREATE TABLE k (at stamp PRIMARY KEY, v int)",
     "SET TimeZone = 'Asia/Tokyo'", "SET TimeZone = 'America/Lima'", "'2026-01-01 12:00+00'"),
    ("CREATE TABLE k (at bytea PRIMARY KEY, v int)",
     "SET bytea_output = 'escape'", "SET bytea_output = 'hex'", "'\\x00ff41'"),
    ("CREATE TABLE k (at date PRIMARY KEY, v int)",
     "SET DateStyle = 'SQL, DMY'", "SET DateStyle = 'German'", "'2026-02-03'"),
])
def test_a_key_has_one_spelling_whatever_the_writer_settings(mdb, connect, ddl, setting_a, setting_b, value):
    mdb.execute(ddl)
    mdb.execute("SELECT wlsync.track('k')")
    first, second = connect(autocommit=True), connect(autocommit=True)
    first.execute(setting_a)
    second.execute(setting_b)
    first.execute(f"INSERT INTO k VALUES ({value}, 1)")
    second.execute("UPDATE k SET v = 2")
    keys = [r[1] for r in queue_rows(mdb)]
    assert len(keys) == 2 and keys[0] == keys[1]
