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


def test_claim_skips_a_key_whose_earlier_event_another_batch_holds(movies, connect):
    movies.execute("INSERT INTO movies VALUES (1, 'old', 1), (2, 'x', 2)")
    first, second = connect(), connect()
    assert keys(claim(first)) == [1, 2]           # holds key 1 (and 2) until it commits
    movies.execute("UPDATE movies SET title = 'new' WHERE id = 1")
    movies.execute("INSERT INTO movies VALUES (3, 'y', 3)")
    assert keys(claim(second)) == [3]              # key 1 waits: it must not be written twice at once
    second.commit()
    first.commit()
    rows = claim(second)
    assert [(r["pk"], r["row_data"]["title"]) for r in rows] == [({"id": "1"}, "new")]
    second.commit()


def test_claim_skips_a_key_held_elsewhere_even_when_its_older_event_commits_late(movies, connect):
    """A backfill draws its event ids first and commits last: ids are not commit order."""
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1)")
    movies.execute("DELETE FROM wlsync.queue")
    backfill, first, second = connect(), connect(), connect()
    backfill.execute("SELECT wlsync.backfill('movies')")          # event id n, not yet committed
    movies.execute("UPDATE movies SET title = 'b' WHERE id = 1")   # event id n+1, committed
    assert keys(claim(first)) == [1]                                # takes n+1
    backfill.commit()                                               # n appears, older than n+1
    assert claim(second) == []                                      # key 1 is still first's
    first.commit()
    second.commit()
    assert keys(claim(second)) == [1]
    second.commit()


def test_claim_refuses_a_non_positive_batch(movies):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="batch must be a positive number of events, got 0"):
        claim(movies, 0)


def test_claim_refuses_to_run_under_repeatable_read(movies, connect):
    conn = connect()
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    with pytest.raises(psycopg.errors.ActiveSqlTransaction, match="must run in a READ COMMITTED transaction"):
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
