"""A full PostgreSQL restart (a crash: stop -m immediate) under a running driver.

Uses a throwaway cluster of its own (pg_createcluster), never the shared server.
"""
from __future__ import annotations

import shutil
import subprocess
import time

import psycopg
import pytest

import wlsync_migrate
from tests.driver_helpers import DriverProcess, wait_until, wl_titles

CLUSTER, PORT = "wlsync_restart_test", 5499
VERSION = "15"

pytestmark = pytest.mark.skipif(shutil.which("pg_createcluster") is None, reason="needs postgresql-common")


def cluster(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=120)


@pytest.fixture
def own_server():
    subprocess.run(["pg_dropcluster", "--stop", VERSION, CLUSTER], capture_output=True)
    cluster("pg_createcluster", VERSION, CLUSTER, "--port", str(PORT), "--start", "--", "--auth=trust")
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{PORT}/postgres"
        wait_until(lambda: can_connect(dsn), timeout=30, message="the throwaway server")
        yield dsn
    finally:
        subprocess.run(["pg_dropcluster", "--stop", VERSION, CLUSTER], capture_output=True)


def can_connect(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def test_driver_survives_a_postgresql_crash_restart(own_server, tmp_path):
    wlsync_migrate.migrate(own_server)
    with psycopg.connect(own_server, autocommit=True) as mdb:
        mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text)")
        mdb.execute("SELECT wlsync.track('movies')")
        mdb.execute("INSERT INTO movies VALUES (1, 'before')")
    target = f"sqlite:///{tmp_path}/wl.db"
    driver = DriverProcess(own_server, target, tmp_path / "driver.log", "--sweep-interval", "1")
    try:
        wait_until(lambda: wl_titles(target) == {1: "before"}, message="the first row")
        cluster("pg_ctlcluster", "--skip-systemctl-redirect", VERSION, CLUSTER, "stop", "-m", "immediate")
        time.sleep(1)
        cluster("pg_ctlcluster", "--skip-systemctl-redirect", VERSION, CLUSTER, "start")
        wait_until(lambda: can_connect(own_server), timeout=30, message="the restarted server")
        with psycopg.connect(own_server, autocommit=True) as mdb:
            mdb.execute("INSERT INTO movies VALUES (2, 'after')")
        wait_until(lambda: wl_titles(target) == {1: "before", 2: "after"}, timeout=30,
                   message="delivery after the restart")
        assert driver.alive()
        assert "MDB unavailable" in driver.log()
    finally:
        assert driver.stop() == 0
