"""A full PostgreSQL restart (a crash: stop -m immediate) of MDB under a running driver.

Uses the run's throwaway cluster (pg_createcluster), never the shared server.
"""
from __future__ import annotations

import psycopg
import pytest

import wlsync_migrate
from tests.conftest import can_connect
from tests.driver_helpers import DriverProcess, wait_until, wl_titles


@pytest.mark.xdist_group("cluster")   # one throwaway cluster per worker: keep its users on one
def test_driver_survives_a_postgresql_crash_restart(throwaway_cluster, tmp_path):
    own_server = throwaway_cluster.dsn
    wlsync_migrate.migrate(own_server)
    with psycopg.connect(own_server, autocommit=True) as mdb:
        mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text)")
        mdb.execute("SELECT wlsync.track('movies')")
        mdb.execute("INSERT INTO movies VALUES (1, 'before')")
    target = f"sqlite:///{tmp_path}/wl.db"
    driver = DriverProcess(own_server, target, tmp_path / "driver.log", "--sweep-interval", "1")
    try:
        wait_until(lambda: wl_titles(target) == {1: "before"}, message="the first row")
        throwaway_cluster.ctl("stop", "-m", "immediate")
        # The lost connection, then a reconnection refused while the server is down.
        wait_until(lambda: driver.log().count("MDB unavailable") >= 2, timeout=30, message="the driver to meet the crash")
        throwaway_cluster.ctl("start")
        wait_until(lambda: can_connect(own_server), timeout=30, message="the restarted server")
        with psycopg.connect(own_server, autocommit=True) as mdb:
            mdb.execute("INSERT INTO movies VALUES (2, 'after')")
        wait_until(lambda: wl_titles(target) == {1: "before", 2: "after"}, timeout=30,
                   message="delivery after the restart")
        assert driver.alive()
        assert "MDB unavailable" in driver.log()
        assert "WL failed" not in driver.log()
    finally:
        assert driver.stop() == 0
