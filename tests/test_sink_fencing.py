"""WL's per-key version fence: a late write from an older batch changes nothing."""
import threading
import time

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import postgresql_wl
from tests.driver_helpers import MOVIES, DriverProcess, run_cli, wait_until, wl_titles
from wlsync_sinks import key_text, open_sink


def batch(version: int, key: int, title: str | None) -> list[dict]:
    return [{"table_schema": "public", "table_name": "movies", "pk": {"id": str(key)}, "version": version,
             "action": "delete" if title is None else "upsert",
             "row_data": None if title is None else {"id": str(key), "title": title, "year": None}}]


def test_the_sink_applies_a_key_only_from_a_newer_batch(target):
    sink = open_sink(target)
    try:
        sink.ensure_tables({("public", "movies"): MOVIES})
        far = time.monotonic() + 60
        sink.apply(batch(5, 1, "new"), far)
        sink.apply(batch(3, 1, "stale"), far)          # older batch arriving late
        assert wl_titles(target) == {1: "new"}
        sink.apply(batch(4, 1, None), far)             # stale delete
        assert wl_titles(target) == {1: "new"}
        sink.apply(batch(6, 1, None), far)
        sink.apply(batch(5, 1, "resurrected?"), far)   # stale write after a newer delete
        assert wl_titles(target) == {}
        sink.apply(batch(7, 1, "back"), far)
        assert wl_titles(target) == {1: "back"}
    finally:
        sink.close()


def test_a_batch_of_stale_and_newer_keys_writes_exactly_the_newer_ones(target):
    """One batch mixing upserts and deletes, some of keys WL has newer versions of:
    the stale ones change nothing, each newer one lands (a sink that pairs a key's
    version with another key's row fails here)."""
    sink = open_sink(target)
    try:
        sink.ensure_tables({("public", "movies"): MOVIES})
        far = time.monotonic() + 60
        sink.apply([row for key in range(1, 7) for row in batch(5, key, f"v5 of {key}")], far)
        mixed = (batch(4, 1, "stale upsert") + batch(6, 2, "newer upsert") + batch(4, 3, None)
                 + batch(6, 4, None) + batch(6, 7, "new key") + batch(3, 5, "stale upsert") + batch(6, 6, None))
        sink.apply(mixed, far)
        assert wl_titles(target) == {1: "v5 of 1", 2: "newer upsert", 3: "v5 of 3", 5: "v5 of 5", 7: "new key"}
    finally:
        sink.close()


def test_the_sink_rolls_back_a_batch_past_its_deadline(target):
    sink = open_sink(target)
    try:
        sink.ensure_tables({("public", "movies"): MOVIES})
        with pytest.raises(Exception, match="outlived its claim timeout"):
            sink.apply(batch(1, 1, "late"), time.monotonic() - 1)
        assert wl_titles(target) == {}
    finally:
        sink.close()


def test_a_write_from_a_batch_whose_mdb_session_died_does_not_take_wl_back(movies, mdb_dsn, target, tmp_path):
    """A claims key 1 and stalls; MDB ends A's session; B syncs a newer state; A's write lands late."""
    movies.execute("INSERT INTO movies VALUES (1, 'v1', 1)")
    # A's stall: long enough for B's run --once (under a second here), and checked below.
    stale = DriverProcess(mdb_dsn, target, tmp_path / "a.log", "--sweep-interval", "60",
                          env={"WLSYNC_TEST_PAUSE_AT": "before_wl_write", "WLSYNC_TEST_PAUSE_SECONDS": "4"})
    try:
        wait_until(lambda: "test pause at before_wl_write" in stale.log(), message="A holding key 1")
        movies.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = 'wlsync_driver' AND datname = current_database()")
        movies.execute("UPDATE movies SET title = 'v2' WHERE id = 1")
        assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
        assert wl_titles(target) == {1: "v2"}
        # A is still stalled: its write comes after B's, as the case needs (else the stall was too short).
        assert "MDB unavailable" not in stale.log()
        wait_until(lambda: "MDB unavailable" in stale.log(), timeout=20, message="A's late write and failure")
        assert wl_titles(target) == {1: "v2"}
    finally:
        stale.stop()


def test_versions_of_a_restored_mdb_are_lifted_above_what_wl_has_seen(movies, mdb_dsn, target):
    movies.execute("INSERT INTO movies VALUES (1, 'before', 1)")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    # As after MDB was restored into a new cluster, whose transaction counter starts lower:
    movies.execute("UPDATE wlsync.capture_state SET version_offset = version_offset - 1000000000")
    movies.execute("UPDATE movies SET title = 'after' WHERE id = 1")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    assert wl_titles(target) == {1: "after"}


@pytest.fixture
def postgresql_target(request):
    yield from postgresql_wl(request)


def test_a_newer_delete_that_waited_for_an_older_first_write_of_its_key_removes_the_row(postgresql_target):
    """PostgreSQL WL, two batches of one key: an older one writes the key for the first
    time and has not committed; a newer one deleting the key waits for it on the version
    registry. When the older commits, the newer must delete the row the older wrote,
    although that row was committed after the newer's statement began (a DELETE in the
    same statement as the registry's upsert shares its snapshot and would miss it)."""
    target = postgresql_target
    sink = open_sink(target)
    older = psycopg.connect(target)
    try:
        sink.ensure_tables({("public", "movies"): MOVIES})
        # The older batch (version 3) half done, as the sink does it: registry, then row.
        older.execute("INSERT INTO _wlsync_versions (table_name, pk, version) VALUES ('movies', %s, 3)",
                      [key_text({"id": "1"})])
        older.execute("INSERT INTO movies (id, title) VALUES (1, 'older')")
        newer = threading.Thread(target=sink.apply, args=(batch(4, 1, None), time.monotonic() + 60))
        newer.start()
        with psycopg.connect(target, autocommit=True) as watch:
            wait_until(lambda: watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'").fetchone()[0] == 1, message="the newer batch to wait")
        older.commit()
        newer.join(30)
        assert not newer.is_alive()
        assert wl_titles(target) == {}
    finally:
        older.close()
        sink.close()


# Keys whose canonical text needs every escape (and a name order that is not jsonb's,
# which sorts shorter names first).
AWKWARD_KEYS = [{"id": "1"}, {"id": 'quote " and \\ backslash'}, {"id": "new\nline, tab\t, bell\x07, \x1f"},
                {"id": "é ü 漢字 🙂"}, {"zone": "eu", "a": "2", "bb": "3"}, {"Id": "x", "id": "y"}]


def test_a_registry_of_the_previous_release_is_rewritten_with_text_keys_and_fences_as_before(postgresql_target):
    """The previous release kept PostgreSQL WL's registry keys as jsonb; the sink
    rewrites it once into key_text's spelling, versions kept, and fences with it."""
    target = postgresql_target
    with psycopg.connect(target, autocommit=True) as wl:
        wl.execute("CREATE TABLE _wlsync_versions (table_name text NOT NULL, pk jsonb NOT NULL, "
                   "version bigint NOT NULL, deleted_at timestamptz, PRIMARY KEY (table_name, pk))")
        for version, pk in enumerate(AWKWARD_KEYS, start=10):
            wl.execute("INSERT INTO _wlsync_versions (table_name, pk, version) VALUES ('movies', %s, %s)",
                       [Jsonb(pk), version])
    sink = open_sink(target)
    try:
        sink.ensure_tables({("public", "movies"): MOVIES})
        with psycopg.connect(target, autocommit=True) as wl:
            assert wl.execute("SELECT format_type(atttypid, NULL) FROM pg_attribute "
                              "WHERE attrelid = '_wlsync_versions'::regclass AND attname = 'pk'").fetchone() == ("text",)
            assert dict(wl.execute("SELECT pk, version FROM _wlsync_versions").fetchall()) == {
                key_text(pk): version for version, pk in enumerate(AWKWARD_KEYS, start=10)}
        far = time.monotonic() + 60
        sink.apply(batch(9, 1, "older than the registry's 10"), far)
        assert wl_titles(target) == {}
        sink.apply(batch(11, 1, "newer"), far)
        assert wl_titles(target) == {1: "newer"}
        sink.close()
        sink = open_sink(target)  # a second start finds the registry rewritten already
        sink.ensure_tables({("public", "movies"): MOVIES})
        sink.apply(batch(10, 1, "stale"), far)
        assert wl_titles(target) == {1: "newer"}
    finally:
        sink.close()
