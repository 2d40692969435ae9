"""run --metrics-port: a running driver's /metrics scraped over HTTP; status --json; progress output."""
from __future__ import annotations

import json
import re
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import sqlite_refuse_title
from tests.driver_helpers import DriverProcess, free_port, run_cli, wait_until

# Each test serves /metrics on a port nothing else listens on (free_port), so that
# concurrent runs and pytest-xdist workers never scrape each other's driver.


def scrape(port: int) -> dict[tuple, float]:
    """/metrics as {(sample name, (label, value), ...): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, *sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def helps(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {family.name: family.documentation for family in text_string_to_metric_families(text)}


def answers(port: int):
    try:
        return scrape(port)
    except OSError:
        return None


def test_metrics_count_synced_events_and_the_queue_depth_falls_as_it_drains(movies, mdb_dsn, tmp_path):
    target = f"sqlite:///{tmp_path}/wl.db"
    port = free_port()
    movies.execute("INSERT INTO movies SELECT g, 'm' || g, 2000 FROM generate_series(1, 300) g")
    # Slow batches (50 events, each held 0.5 s before its WL write) keep events queued for a while.
    process = DriverProcess(mdb_dsn, target, tmp_path / "driver.log", "--batch", "50", "--sweep-interval", "1",
                            "--metrics-port", str(port),
                            env={"WLSYNC_TEST_PAUSE_AT": "before_wl_write", "WLSYNC_TEST_PAUSE_SECONDS": "0.5"})
    try:
        first = wait_until(lambda: (m := answers(port)) and m[("wlsync_connected", ("side", "mdb"))] and m,
                           timeout=15, message="/metrics to answer, connected")
        assert first[("wlsync_queue_events", ("table", "public.movies"))] >= 200
        assert first[("wlsync_queue_exact",)] == 1
        assert first[("wlsync_queue_oldest_age_seconds", ("table", "public.movies"))] >= 0
        assert first[("wlsync_driver_info", ("consumer", "default"), ("sink", "sqlite"), ("version", "0.1.0"))] == 1
        assert first[("wlsync_dropped_events",)] == 0 and first[("wlsync_resync_pending",)] == 0
        assert first[("wlsync_connected", ("side", "mdb"))] == 1
        assert first[("wlsync_connected", ("side", "wl"))] == 1

        upserts = ("wlsync_events_synced_total", ("action", "upsert"), ("table", "public.movies"))
        wait_until(lambda: scrape(port).get(upserts) == 300, timeout=30, message="300 events counted")
        drained = wait_until(lambda: (m := scrape(port))[("wlsync_queue_events", ("table", "public.movies"))] == 0
                             and m, timeout=15, message="the queue depth to fall to 0")
        assert drained[("wlsync_keys_synced_total", ("action", "upsert"), ("table", "public.movies"))] == 300
        assert drained[("wlsync_batches_total", ("outcome", "committed"))] == 6
        assert drained[("wlsync_batch_size_events_count",)] == 6
        assert drained[("wlsync_batch_size_events_sum",)] == 300
        assert drained[("wlsync_batch_duration_seconds_count",)] == 6
        assert drained[("wlsync_batch_duration_seconds_sum",)] >= 6 * 0.5
        assert drained[("wlsync_sync_lag_seconds_count",)] == 6
        assert drained[("wlsync_sync_lag_seconds_bucket", ("le", "0.1"))] == 0  # each waited 0.5 s at least
        assert ("wlsync_queue_oldest_age_seconds", ("table", "public.movies")) not in drained

        # Three events of one key in one transaction make one key written, three events counted.
        movies.execute("BEGIN; UPDATE movies SET year = 2001 WHERE id = 1; UPDATE movies SET year = 2002 WHERE id = 1;"
                       " DELETE FROM movies WHERE id = 1; COMMIT")
        deletes = ("wlsync_events_synced_total", ("action", "delete"), ("table", "public.movies"))
        after = wait_until(lambda: (m := scrape(port)).get(deletes) and m, timeout=15, message="the delete counted")
        assert after[deletes] == 3
        assert after[("wlsync_keys_synced_total", ("action", "delete"), ("table", "public.movies"))] == 1

        # A key WL refuses: a batch counted as rejected, the key as retrying.
        sqlite_refuse_title(target, "poison")
        movies.execute("INSERT INTO movies VALUES (1000, 'poison', 2000)")
        retrying = ("wlsync_keys_rejected_total", ("state", "retrying"), ("table", "public.movies"))
        batches_rejected = ("wlsync_batches_total", ("outcome", "rejected"))
        # The key is counted when WL rejects it, its batch when MDB has committed the batch:
        # a scrape between the two sees the key and not yet the batch.
        rejected = wait_until(lambda: (m := scrape(port)).get(retrying) and m.get(batches_rejected) and m, timeout=15,
                              message="the rejected key and its batch")
        assert rejected[retrying] == 1 and rejected[batches_rejected] >= 1
        wait_until(lambda: scrape(port)[("wlsync_retrying_keys", ("table", "public.movies"))] == 1, timeout=15,
                   message="the retrying key in the queue figures")
    finally:
        assert process.stop() == 0


def test_a_batch_cut_off_by_mdb_counts_as_rolled_back(movies, mdb_dsn, tmp_path):
    target = f"sqlite:///{tmp_path}/wl.db"
    port = free_port()
    process = DriverProcess(mdb_dsn, target, tmp_path / "driver.log", "--sweep-interval", "1",
                            "--metrics-port", str(port),
                            env={"WLSYNC_TEST_PAUSE_AT": "before_wl_write", "WLSYNC_TEST_PAUSE_SECONDS": "1"})
    try:
        wait_until(lambda: answers(port), timeout=15, message="/metrics to answer")
        movies.execute("INSERT INTO movies VALUES (1, 'a', 2000)")
        wait_until(lambda: "test pause at before_wl_write" in process.log(), message="a batch in hand")
        movies.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'wlsync_driver'"
                       " AND datname = current_database()")   # this test's driver, not another run's
        upserts = ("wlsync_events_synced_total", ("action", "upsert"), ("table", "public.movies"))
        after = wait_until(lambda: (m := scrape(port)).get(upserts) == 1 and m, timeout=30,
                           message="the event synced after the reconnect")
        assert after[("wlsync_batches_total", ("outcome", "rolled_back"))] == 1
        assert after[("wlsync_batches_total", ("outcome", "committed"))] == 1
        assert after[("wlsync_connected", ("side", "mdb"))] == 1
    finally:
        assert process.stop() == 0


def test_every_metric_has_a_help_text_and_follows_prometheus_naming(movies, mdb_dsn, tmp_path):
    port = free_port()
    process = DriverProcess(mdb_dsn, f"sqlite:///{tmp_path}/wl.db", tmp_path / "driver.log",
                            "--metrics-port", str(port))
    try:
        movies.execute("INSERT INTO movies VALUES (1, 'a', 2000)")
        wait_until(lambda: answers(port), timeout=15, message="/metrics to answer")
        documented = helps(port)
        ours = {name: text for name, text in documented.items() if name.startswith("wlsync_")}
        assert {"wlsync_events_synced", "wlsync_keys_synced", "wlsync_batches", "wlsync_keys_rejected",
                "wlsync_batch_duration_seconds", "wlsync_batch_size_events", "wlsync_sync_lag_seconds",
                "wlsync_connected", "wlsync_driver_info", "wlsync_queue_events", "wlsync_queue_oldest_age_seconds",
                "wlsync_retrying_keys", "wlsync_dead_letters", "wlsync_queue_exact", "wlsync_resyncs",
                "wlsync_dropped_events", "wlsync_resync_pending"} <= set(ours)
        for name, text in ours.items():
            assert len(text) > 40 and text.endswith((".", ")")), (name, text)
            assert not re.search(r"_(ms|milliseconds|count)$", name), name
    finally:
        assert process.stop() == 0


def test_a_metrics_port_in_use_is_a_one_line_error(movies, mdb_dsn, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("run", "--once", "--source", mdb_dsn, "--target", f"sqlite:///{tmp_path}/wl.db",
                         "--metrics-port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"wlsync: error: cannot serve metrics on 127.0.0.1:{port}: Address already in use; "
        "choose another --metrics-port (or --metrics-host)"]


def test_a_bad_metrics_port_is_refused_by_the_option_parser(mdb_dsn):
    result = run_cli("run", "--source", mdb_dsn, "--metrics-port", "99999")
    assert result.returncode == 2
    assert "argument --metrics-port: expected a TCP port number (1-65535), got '99999'" in result.stderr


def test_status_json_is_one_document_with_every_table(movies, mdb_dsn):
    movies.execute("CREATE TABLE \"Odd Name\" (a int PRIMARY KEY)")
    movies.execute("SELECT wlsync.track('\"Odd Name\"')")
    movies.execute("INSERT INTO movies SELECT g, 'm', 2000 FROM generate_series(1, 7) g")
    result = run_cli("status", "--source", mdb_dsn, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    by_table = {t["table"]: t for t in document["tables"]}
    assert set(by_table) == {"public.Odd Name", "public.movies"}
    assert by_table["public.movies"]["pending_events"] == 7
    assert by_table["public.movies"]["oldest_age_seconds"] >= 0
    assert by_table["public.movies"]["oldest_enqueued_at"].endswith("+00:00")
    assert by_table["public.Odd Name"] == {"table": "public.Odd Name", "schema": "public", "name": "Odd Name",
                                           "pending_events": 0, "oldest_enqueued_at": None,
                                           "oldest_age_seconds": None, "retrying_keys": 0, "dead_letters": 0}


def test_progress_prints_plain_lines_and_a_per_table_summary_when_not_on_a_terminal(movies, mdb_dsn, tmp_path):
    movies.execute("CREATE TABLE people (id int PRIMARY KEY)")
    movies.execute("INSERT INTO movies SELECT g, 'm', 2000 FROM generate_series(1, 3000) g")
    movies.execute("SELECT wlsync.track('people')")
    wait_until(lambda: movies.execute("SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'movies'"
                                      ).fetchone()[0] == 3000, message="the statistics behind the estimate")
    every_step = {"WLSYNC_PROGRESS_INTERVAL": "0"}

    backfill = run_cli("backfill", "--source", mdb_dsn, "--chunk", "1000", env=every_step)
    assert backfill.returncode == 0, backfill.stderr
    lines = backfill.stdout.splitlines()
    assert lines[0].startswith("backfill: public.movies, 1,000 of about 3,000 keys (33%), ETA ")
    assert re.search(r"ETA \d+ s, [\d,]+ keys/s$", lines[0])
    assert "\r" not in backfill.stdout and "\x1b" not in backfill.stdout  # no terminal codes in a file
    assert re.search(r"^public\.movies: 3000 keys enqueued, backfill pass complete in [\d.]+ s \([\d,]+/s\)$",
                     lines[-2])
    assert lines[-1] == "public.people: 0 keys enqueued, backfill pass complete in 0.0 s"

    target = f"sqlite:///{tmp_path}/wl.db"
    once = run_cli("run", "--once", "--batch", "1000", "--source", mdb_dsn, "--target", target, env=every_step)
    assert once.returncode == 0, once.stderr
    lines = once.stdout.splitlines()
    # 6,000 events: one per insert and one per key the backfill enqueued.
    assert lines[0].startswith("run --once: public.movies, 1,000 of about 6,000 events (17%)")
    assert re.search(r"^public\.movies: 6000 events synced in [\d.]+ s \([\d,]+/s\)$", lines[-1])

    verify = run_cli("verify", "--source", mdb_dsn, "--target", target, env=every_step)
    assert verify.returncode == 0, verify.stdout
    lines = verify.stdout.splitlines()
    assert re.search(r"^public\.movies: 3000 rows compared in [\d.]+ s", lines[-3])
    assert lines[-2].startswith("public.people: 0 rows compared")
    assert lines[-1] == "verify: WL == MDB"
