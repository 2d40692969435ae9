"""Helpers for end-to-end tests: WL targets, driver processes, waiting."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "wlsync_driver.py"


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


def wl_query(target: str, query: str) -> list[tuple]:
    """Run a read query on WL (SQLite file or PostgreSQL database)."""
    if target.startswith("sqlite:///"):
        path = target[len("sqlite:///"):]
        if not Path(path).exists():
            return []
        db = sqlite3.connect(path)
        try:
            return db.execute(query).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            db.close()
    with psycopg.connect(target) as conn:
        try:
            return conn.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def wl_execute(target: str, statement: str) -> None:
    """Change WL behind the driver's back (to test verify and failures)."""
    if target.startswith("sqlite:///"):
        db = sqlite3.connect(target[len("sqlite:///"):])
        db.executescript(statement)
        db.close()
    else:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(statement)


def synced_movies_with_three_differences(movies, mdb_dsn: str, target: str, count: int) -> None:
    """Sync movies 1..count to WL, then spoil WL behind the driver's back: key 1
    missing, key 2's year different, key 99 extra."""
    movies.execute("INSERT INTO movies SELECT g, 'm' || g, 2000 FROM generate_series(1, %s) g", [count])
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    wl_execute(target, "DELETE FROM movies WHERE id = 1")
    wl_execute(target, "UPDATE movies SET year = 1999 WHERE id = 2")
    wl_execute(target, "INSERT INTO movies (id, title, year) VALUES (99, 'ghost', 1)")


def wl_titles(target: str) -> dict[int, str]:
    return {int(i): t for i, t in wl_query(target, "SELECT id, title FROM movies")}


def driver_backends(mdb: psycopg.Connection) -> list[int]:
    return [r[0] for r in mdb.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'wlsync_driver%%' "
        "AND datname = current_database()")]
