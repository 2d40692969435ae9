"""DDL on tracked tables: capture follows it, or the DDL is refused with what to do."""
import psycopg
import pytest

from tests.conftest import claim, queue_rows


def test_adding_a_column_is_picked_up_by_the_claim(movies):
    movies.execute("ALTER TABLE movies ADD COLUMN rating numeric")
    movies.execute("INSERT INTO movies VALUES (1, 'a', 2000, 7.5)")
    with movies.transaction():
        (row,) = claim(movies)
    assert row["row_data"] == {"id": "1", "title": "a", "year": "2000", "rating": "7.5"}


def test_changing_the_type_of_the_key_regenerates_capture(movies):
    movies.execute("ALTER TABLE movies ALTER COLUMN id TYPE bigint")   # the queue is empty
    movies.execute("INSERT INTO movies VALUES (5000000000, 'big', 1)")
    assert queue_rows(movies) == [("movies", {"id": 5000000000})]


@pytest.mark.parametrize("ddl", [
    "ALTER TABLE movies DROP CONSTRAINT movies_pkey, ADD PRIMARY KEY (title)",
    "ALTER TABLE movies RENAME COLUMN id TO movie_id",
    "ALTER TABLE movies ALTER COLUMN id TYPE float8",
])
def test_changing_the_key_is_refused_with_what_to_do(movies, ddl):
    movies.execute("ALTER TABLE movies ALTER COLUMN title SET NOT NULL")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot (re-)?track public.movies") as err:
        movies.execute(ddl)
    assert err.value.diag.message_hint
    movies.execute("INSERT INTO movies VALUES (1, 'still captured', 1)")
    assert len(queue_rows(movies)) == 1


@pytest.mark.parametrize("ddl", ["ALTER TABLE movies DISABLE TRIGGER wlsync_capture_insert",
                                 "ALTER TABLE movies DISABLE TRIGGER USER",
                                 "ALTER TABLE movies ENABLE REPLICA TRIGGER wlsync_capture_update"])
def test_disabling_capture_is_refused(movies, ddl):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="cannot be disabled"):
        movies.execute(ddl)
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    assert len(queue_rows(movies)) == 1


def test_dropping_a_capture_trigger_alone_is_refused(movies):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="wlsync.untrack"):
        movies.execute("DROP TRIGGER wlsync_capture_insert ON movies")


def test_dropping_a_tracked_table_forgets_it(movies):
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    movies.execute("DROP TABLE movies")
    assert movies.execute("SELECT count(*) FROM wlsync.tracked_table").fetchone()[0] == 0
    assert movies.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0
    assert movies.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_capture\\_row\\_%'").fetchone()[0] == 0


def test_attaching_a_partition_gives_it_the_truncate_trigger(mdb):
    mdb.execute("CREATE TABLE ev (id int PRIMARY KEY) PARTITION BY RANGE (id)")
    mdb.execute("SELECT wlsync.track('ev')")
    mdb.execute("CREATE TABLE ev_new (id int PRIMARY KEY)")
    mdb.execute("INSERT INTO ev_new VALUES (5)")
    mdb.execute("ALTER TABLE ev ATTACH PARTITION ev_new FOR VALUES FROM (0) TO (10)")
    mdb.execute("TRUNCATE ev_new")
    assert queue_rows(mdb) == [("ev", {"id": 5})]


def test_changing_the_key_type_waits_for_an_empty_queue(movies):
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="while it has queued events"):
        movies.execute("ALTER TABLE movies ALTER COLUMN id TYPE bigint")
    movies.execute("TRUNCATE wlsync.queue_0, wlsync.queue_1, wlsync.queue_2")
    movies.execute("ALTER TABLE movies ALTER COLUMN id TYPE bigint")


def test_dropping_the_schema_of_a_tracked_table_forgets_it(mdb):
    mdb.execute("CREATE SCHEMA gone; CREATE TABLE gone.t (id int PRIMARY KEY)")
    mdb.execute("SELECT wlsync.track('gone.t')")
    mdb.execute("INSERT INTO gone.t VALUES (1)")
    mdb.execute("DROP SCHEMA gone CASCADE")
    assert mdb.execute("SELECT count(*) FROM wlsync.tracked_table").fetchone()[0] == 0
    assert mdb.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0
