"""Poison does not block: rejected keys are isolated, retried, parked, re-driven or discarded."""
import psycopg
import pytest

from tests.conftest import claim, queue_rows
from tests.driver_helpers import MOVIES, run_cli, wait_until, wl_rows


def test_one_poison_event_among_ten_thousand_is_parked_and_re_driven(movies, mdb_dsn, target, refuse_title, driver):
    movies.execute("INSERT INTO movies VALUES (0, 'first', 2000)")
    process = driver("--max-attempts", "2")
    wait_until(lambda: len(wl_rows(target, MOVIES)) == 1, message="WL's table")
    fix = refuse_title(target, "poison")
    movies.execute("INSERT INTO movies SELECT g, CASE WHEN g = 5000 THEN 'poison' ELSE 'm' || g END, 2000 "
                   "FROM generate_series(1, 10000) g")
    wait_until(lambda: movies.execute("SELECT state FROM wlsync.dead_letters").fetchall() == [("parked",)],
               timeout=30, message="the poison key to be parked")
    # Parking takes two attempts a second apart: batches after the poison's may still be on their way.
    wait_until(lambda: len(wl_rows(target, MOVIES)) == 1 + 9999, timeout=30, message="every other row in WL")
    letters = movies.execute("SELECT pk, attempts, last_error FROM wlsync.dead_letters").fetchall()
    assert [(pk, attempts) for pk, attempts, _ in letters] == [({"id": 5000}, 2)]
    assert "refuses" in letters[0][2] or '"reject"' in letters[0][2]
    status = run_cli("status", "--source", mdb_dsn)
    assert "dead letters" in status.stdout and "wlsync.retry_dead_letters" in status.stdout
    movies.execute("UPDATE movies SET year = 2001 WHERE id = 5000")       # a later change of the parked key
    wait_until(lambda: "synced" in process.log(), message="the driver to keep going")
    assert ("5000",) not in wl_rows(target, MOVIES)                       # it waits behind the letter
    check = run_cli("verify", "--source", mdb_dsn, "--target", target)
    assert check.returncode == 1 and 'public.movies {"id": "5000"}: missing in WL' in check.stdout

    fix()
    assert movies.execute("SELECT wlsync.retry_dead_letters('movies')").fetchone()[0] == 1
    wait_until(lambda: len(wl_rows(target, MOVIES)) == 10001, timeout=15, message="the re-driven key")
    assert wl_rows(target, MOVIES)[("5000",)]["year"] == "2001"
    wait_until(lambda: movies.execute("SELECT count(*) FROM wlsync.dead_letter").fetchone()[0] == 0,
               message="the dead letter gone (MDB commits after WL)")
    assert run_cli("verify", "--source", mdb_dsn, "--target", target).returncode == 0


def test_a_held_key_is_skipped_by_the_claim_until_it_is_due(movies):
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1), (2, 'b', 2)")
    with movies.transaction():
        claim(movies)
        assert movies.execute("SELECT wlsync.record_failure('movies', '{\"id\": \"1\"}', 'boom', 0, 3)"
                              ).fetchone()[0] == "retrying"
    movies.execute("UPDATE movies SET title = 'a2' WHERE id = 1")
    with movies.transaction():
        assert claim(movies) == []                      # key 1 is held back: its new event is taken ...
    assert queue_rows(movies) == []                     # ... and the dead letter keeps the key dirty
    movies.execute("UPDATE wlsync.dead_letter SET retry_at = now() - interval '1 second'")
    with movies.transaction():
        (row,) = claim(movies)
    assert (row["pk"], row["row_data"]["title"], row["attempts"]) == ({"id": "1"}, "a2", 1)
    assert movies.execute("SELECT count(*) FROM wlsync.dead_letter").fetchone()[0] == 0


def test_record_failure_parks_after_max_attempts_and_discard_drops_the_key(movies):
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1), (2, 'b', 2)")
    with movies.transaction():
        claim(movies)
        assert movies.execute("SELECT wlsync.record_failure('movies', '{\"id\": 1}', 'boom', 2, 3)"
                              ).fetchone()[0] == "parked"
    assert movies.execute("SELECT table_name, pk, state, attempts FROM wlsync.dead_letters").fetchall() == [
        ("movies", {"id": 1}, "parked", 3)]
    status = movies.execute("SELECT table_name, retrying_keys, dead_letters FROM wlsync.queue_status()").fetchall()
    assert status == [("movies", 0, 1)]
    assert movies.execute("SELECT wlsync.discard_dead_letters('movies', '{\"id\": \"1\"}')").fetchone()[0] == 1
    assert queue_rows(movies) == []
    assert movies.execute("SELECT count(*) FROM wlsync.dead_letter").fetchone()[0] == 0


def test_dead_letter_functions_need_the_table_for_a_key(movies):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="give the table of key"):
        movies.execute("SELECT wlsync.retry_dead_letters(NULL, '{\"id\": 1}')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="give the table of key"):
        movies.execute("SELECT wlsync.discard_dead_letters(NULL, '{\"id\": 1}')")


def test_a_key_retried_by_one_batch_is_not_swallowed_by_another(movies, connect):
    """B must not take a retried key's new event off the queue as 'held back' while A retries it."""
    movies.execute("INSERT INTO movies VALUES (1, 'v1', 1)")
    with movies.transaction():
        claim(movies)
        movies.execute("SELECT wlsync.record_failure('movies', '{\"id\": \"1\"}', 'boom', 0, 3)")
    movies.execute("UPDATE wlsync.dead_letter SET retry_at = now() - interval '1 second'")
    retrying, other = connect(), connect()
    (row,) = claim(retrying)                                 # A holds the due dead letter
    assert row["attempts"] == 1 and row["row_data"]["title"] == "v1"
    movies.execute("UPDATE movies SET title = 'v2' WHERE id = 1")
    (newer,) = claim(other)                                  # B gets the new event, not swallowed
    assert newer["row_data"]["title"] == "v2" and newer["version"] > row["version"]
    other.commit()
    retrying.commit()
