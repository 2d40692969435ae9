"""Helpers for end-to-end tests: reading and changing WL, driver processes, waiting."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from wlsync_sinks import Column, Table, open_sink

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "wlsync_driver.py"
# pytest-xdist's worker name (gw0, gw1, ...), "" in a run without workers: what a
# test names after it (databases, clusters) is its worker's own.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick), for a
    throwaway server or a metrics endpoint: never one another run or worker holds."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python wlsync_driver.py ARGS` to completion."""
    full_env = {k: v for k, v in os.environ.items() if k != "WLSYNC_SOURCE"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(DRIVER), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)


class DriverProcess:
    """`wlsync_driver.py run` in the background, logging to a file."""

    def __init__(self, source: str, target: str, log_path: Path, *extra: str, env: dict | None = None):
        self.log_path = log_path
        self.log_file = open(log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), "--log-level", "DEBUG", "run", "--source", source, "--target", target,
             *extra],
            stdout=self.log_file, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})})

    def log(self) -> str:
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then SIGKILL after `timeout`: a driver left running would go on
        draining the next test's database of the same name."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise
        finally:
            self.log_file.close()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


# WL is read and written through the sink itself (keys, rows_by_key, apply), so these
# helpers work for every sink. Tests describe the columns they look at with MDB's types.
BASE_TYPES = {"integer": "int4", "bigint": "int8", "text": "text", "numeric": "numeric", "text[]": "_text",
              "double precision": "float8", "timestamp with time zone": "timestamptz"}


def wl_table(name: str, columns: list[tuple[str, str]], pk: list[str], schema: str = "public") -> Table:
    """A tracked table as the sink sees it: (column, MDB type) pairs, key columns in order."""
    return Table(schema, name, tuple(
        Column(column, data_type, BASE_TYPES[data_type.split("(")[0]], True,
               pk.index(column) + 1 if column in pk else None) for column, data_type in columns))


MOVIES = wl_table("movies", [("id", "integer"), ("title", "text"), ("year", "integer")], pk=["id"])


def wl_rows(target: str, table: Table) -> dict[tuple, dict]:
    """WL's rows of a table (values as PostgreSQL text), by key values; {} before the table exists."""
    sink = open_sink(target)
    try:
        keys = [pk for chunk in sink.keys(table, 10000) for pk in chunk]
        rows = sink.rows_by_key(table, keys)
    finally:
        sink.close()
    return {tuple(pk[c.name] for c in table.pk): row for pk, row in zip(keys, rows, strict=True) if row is not None}


def wl_titles(target: str) -> dict[int, str]:
    """WL's movies: id -> title."""
    titles = wl_table("movies", [("id", "integer"), ("title", "text")], pk=["id"])
    return {int(key[0]): row["title"] for key, row in wl_rows(target, titles).items()}


def wl_write(target: str, table: Table, upserts: list[dict] = (), deletes: list[dict] = ()) -> None:
    """Change WL behind the driver's back (to test verify): one batch, newer than any WL has seen."""
    sink = open_sink(target)
    try:
        sink.ensure_tables({(table.schema, table.name): table})
        version = sink.max_version() + 1
        rows = [{"action": "upsert", "pk": {c.name: row[c.name] for c in table.pk}, "row_data": row}
                for row in upserts] + [{"action": "delete", "pk": pk, "row_data": None} for pk in deletes]
        sink.apply([{"table_schema": table.schema, "table_name": table.name, "version": version, **row}
                    for row in rows], time.monotonic() + 30)
    finally:
        sink.close()


def synced_movies_with_three_differences(movies, mdb_dsn: str, target: str, count: int) -> None:
    """Sync movies 1..count to WL, then spoil WL behind the driver's back: key 1
    missing, key 2's year different, key 99 extra."""
    movies.execute("INSERT INTO movies SELECT g, 'm' || g, 2000 FROM generate_series(1, %s) g", [count])
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    wl_write(target, MOVIES, upserts=[{"id": "2", "title": "m2", "year": "1999"},
                                      {"id": "99", "title": "ghost", "year": "1"}], deletes=[{"id": "1"}])


def driver_backends(mdb: psycopg.Connection) -> list[int]:
    return [r[0] for r in mdb.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'wlsync_driver%%' "
        "AND datname = current_database()")]
