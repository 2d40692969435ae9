"""wlsync.claim_sync_events: batches, SKIP LOCKED, the per-key rule, what rows look like."""
import psycopg
import pytest

from tests.conftest import claim, queue_rows


def keys(rows) -> list:
    return sorted(int(r["pk"]["id"]) for r in rows)


def test_claim_returns_current_row_per_key_and_collapses_its_events(movies):
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979), (2, 'Heat', 1995)")
    movies.execute("UPDATE movies SET year = 1980 WHERE id = 1")
    movies.execute("DELETE FROM movies WHERE id = 2")
    with movies.transaction():
        rows = claim(movies)
    by_key = {int(r["pk"]["id"]): r for r in rows}
    assert by_key[1]["action"] == "upsert"
    assert by_key[1]["row_data"] == {"id": "1", "title": "Alien", "year": "1980"}
    assert by_key[1]["events"] == 2
    assert (by_key[1]["table_schema"], by_key[1]["table_name"]) == ("public", "movies")
    assert by_key[2]["action"] == "delete" and by_key[2]["row_data"] is None and by_key[2]["events"] == 2
    assert queue_rows(movies) == []


def test_claim_inside_a_rolled_back_transaction_changes_nothing(movies):
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    before = queue_rows(movies)
    movies.execute("BEGIN")
    assert len(claim(movies)) == 1
    movies.execute("ROLLBACK")
    assert queue_rows(movies) == before


def test_claim_takes_at_most_batch_keys_oldest_first(movies):
    movies.execute("INSERT INTO movies SELECT g, 't', 2000 FROM generate_series(1, 10) g")
    with movies.transaction():
        assert keys(claim(movies, 3)) == [1, 2, 3]
    assert len(queue_rows(movies)) == 7


def test_two_concurrent_claimers_get_disjoint_events(movies, connect):
    movies.execute("INSERT INTO movies SELECT g, 't', 2000 FROM generate_series(1, 10) g")
    first, second = connect(), connect()
    got_first = keys(claim(first, 4))
    got_second = keys(claim(second, 100))   # while first's batch is still open
    assert got_first == [1, 2, 3, 4]
    assert got_second == [5, 6, 7, 8, 9, 10]
    first.commit()
    second.commit()
    assert queue_rows(movies) == []


def test_two_batches_may_hold_one_key_and_the_later_read_has_the_larger_version(movies, connect):
    movies.execute("INSERT INTO movies VALUES (1, 'old', 1), (2, 'x', 2)")
    first, second = connect(), connect()
    (held,) = [r for r in claim(first) if r["pk"] == {"id": "1"}]   # holds keys 1 and 2 until it commits
    movies.execute("UPDATE movies SET title = 'new' WHERE id = 1")
    (later,) = claim(second)                       # key 1 again, read after the update
    assert (held["pk"], held["row_data"]["title"]) == ({"id": "1"}, "old")
    assert (later["pk"], later["row_data"]["title"]) == ({"id": "1"}, "new")
    # WL keeps per key the write with the larger version, whichever commits first.
    assert later["version"] > held["version"]
    second.commit()
    first.commit()
    assert claim(second) == []


def test_an_event_committed_late_by_a_long_transaction_is_claimed_with_a_newer_version(movies, connect):
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    movies.execute("TRUNCATE wlsync.queue_0, wlsync.queue_1, wlsync.queue_2")
    backfill, first, second = connect(), connect(), connect()
    backfill.execute("SELECT wlsync.backfill('movies')")          # enqueued, not yet committed
    movies.execute("UPDATE movies SET title = 'b' WHERE id = 1")   # enqueued and committed
    (early,) = claim(first)
    first.commit()
    assert claim(second) == []                                      # the backfill's row is invisible yet
    second.commit()
    backfill.commit()
    (late,) = claim(second)
    assert late["pk"] == {"id": "1"} and late["row_data"]["title"] == "b"
    assert late["version"] > early["version"]
    second.commit()


def test_a_bare_claim_takes_a_default_batch_and_a_rollback_keeps_it_queued(movies, connect):
    movies.execute("INSERT INTO movies SELECT g, 't', 2000 FROM generate_series(1, 1001) g")
    dba = connect()
    assert dba.execute("SELECT count(*) FROM wlsync.claim_sync_events()").fetchone()[0] == 1000
    dba.rollback()
    assert len(queue_rows(movies)) == 1001


def test_claim_refuses_a_non_positive_batch(movies):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="batch must be a positive number of events, got 0"):
        claim(movies, 0)


def test_claim_refuses_other_isolation_levels_and_repeatable_read_without_the_drain_lock(movies, connect):
    conn = connect()
    conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    with pytest.raises(psycopg.errors.ActiveSqlTransaction, match="must run in a READ COMMITTED transaction"):
        claim(conn)
    conn.rollback()
    # REPEATABLE READ is a consistent-mode batch, for the holder of the drain lock only.
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    with pytest.raises(psycopg.errors.LockNotAvailable, match="does not hold the consistent drain lock"):
        claim(conn)


def test_claim_returns_every_value_as_its_exact_text_form(mdb):
    mdb.execute("""CREATE TABLE odd ("Key" text, n int, num numeric, f float8, b bytea, j jsonb, arr int[],
                   ts timestamptz, big text, nothing text, PRIMARY KEY ("Key", n))""")
    mdb.execute("SELECT wlsync.track('odd')")
    mdb.execute("SET TimeZone = 'America/New_York'")
    mdb.execute("""INSERT INTO odd VALUES ('it''s "q"', 1, 'NaN', '-Infinity', '\\x00ff', '{"a": "x\\"y"}',
                   '{1,NULL,3}', '2026-01-01 12:00+00', repeat('x', 100000), NULL)""")
    with mdb.transaction():
        (row,) = claim(mdb)
    assert row["pk"] == {"Key": 'it\'s "q"', "n": "1"}
    data = row["row_data"]
    assert data["num"] == "NaN" and data["f"] == "-Infinity" and data["b"] == "\\x00ff"
    assert data["j"] == '{"a": "x\\"y"}' and data["arr"] == "{1,NULL,3}"
    assert data["ts"] == "2026-01-01 12:00:00+00"
    assert data["big"] == "x" * 100000 and data["nothing"] is None


def test_claim_reads_rows_of_a_partitioned_table(mdb):
    mdb.execute("CREATE TABLE ev (id int, at date, note text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)")
    mdb.execute("CREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")
    mdb.execute("SELECT wlsync.track('ev')")
    mdb.execute("INSERT INTO ev VALUES (1, '2026-02-03', 'hi')")
    with mdb.transaction():
        (row,) = claim(mdb)
    assert row["row_data"] == {"id": "1", "at": "2026-02-03", "note": "hi"}


def test_the_snapshot_clock_of_a_later_snapshot_is_never_lower_even_against_a_writing_session(movies, connect):
    """A snapshot leaves its own transaction out of its in-progress list; others have it in."""
    writing, other, later = connect(), connect(autocommit=True), connect(autocommit=True)
    writing.execute("INSERT INTO movies VALUES (1, 'a', 1)")               # holds an xid, open
    other.execute("INSERT INTO movies VALUES (2, 'b', 2)")                 # a later xid, committed
    mine = writing.execute("SELECT wlsync._snapshot_clock()").fetchone()[0]
    theirs = later.execute("SELECT wlsync._snapshot_clock()").fetchone()[0]
    assert theirs >= mine
    writing.commit()
    assert later.execute("SELECT wlsync._snapshot_clock()").fetchone()[0] > theirs
