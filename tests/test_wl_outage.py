"""WL fails under a running driver: the driver reconnects to WL, delivers every change
made meanwhile, keeps running, and its log blames WL, not MDB."""
from __future__ import annotations

import time

import psycopg
import pytest

from tests.driver_helpers import DriverProcess, wait_until, wl_titles

FAILED = "WL failed"


def wl_failures(process) -> int:
    return process.log().count(FAILED)


def test_wl_outages_are_survived_and_blamed_on_wl(movies, target, store, driver):
    if not store.outages:
        pytest.skip("no outage defined for this WL")
    # A short claim timeout bounds how long the driver waits on a locked WL.
    process = driver("--claim-timeout", "3")
    movies.execute("INSERT INTO movies VALUES (0, 'before', 2000)")
    wait_until(lambda: wl_titles(target) == {0: "before"}, message="the first row")
    key = 0
    for outage in store.outages:
        failures = wl_failures(process)
        end = outage.begin(target)
        try:
            movies.execute("INSERT INTO movies SELECT g, %s, 2000 FROM generate_series(%s::int, %s::int) g",
                           [outage.name, key + 1, key + 10])
            movies.execute("UPDATE movies SET title = %s WHERE id = 0", [f"during {outage.name}"])
            movies.execute("DELETE FROM movies WHERE id = %s", [key + 10])
            # A lasting outage must also fail the driver's reconnection, not only its write.
            if outage.felt:
                wait_until(lambda: wl_failures(process) >= failures + (2 if outage.lasting else 1), timeout=30,
                           message=f"the driver to meet the outage ({outage.name})")
            if outage.lasting:
                movies.execute("INSERT INTO movies VALUES (%s, 'while down', 2000)", [key + 11])
        finally:
            end()
        key += 11
        expected = {i: t for i, t in movies.execute("SELECT id, title FROM movies")}
        wait_until(lambda: wl_titles(target) == expected, timeout=60,
                   message=f"every change to arrive after the outage ({outage.name})")
    assert process.alive()
    log = process.log()
    assert "MDB unavailable" not in log
    if any(outage.felt for outage in store.outages):
        assert f"{FAILED} (" in log


@pytest.mark.xdist_group("cluster")   # one throwaway cluster per worker: keep its users on one
def test_driver_survives_a_crash_restart_of_a_postgresql_wl(movies, mdb_dsn, tmp_path, throwaway_cluster):
    target = throwaway_cluster.dsn
    movies.execute("INSERT INTO movies VALUES (1, 'before', 2000)")
    process = DriverProcess(mdb_dsn, target, tmp_path / "driver.log", "--sweep-interval", "1")
    try:
        wait_until(lambda: wl_titles(target) == {1: "before"}, timeout=20, message="the first row")
        throwaway_cluster.ctl("stop", "-m", "immediate")
        movies.execute("INSERT INTO movies SELECT g, 'while down', 2000 FROM generate_series(2, 20) g")
        movies.execute("UPDATE movies SET title = 'changed while down' WHERE id = 1")
        wait_until(lambda: wl_failures(process) >= 2, timeout=30, message="the driver to meet the crash")
        throwaway_cluster.ctl("start")
        expected = {i: t for i, t in movies.execute("SELECT id, title FROM movies")}
        wait_until(lambda: can_read(target) and wl_titles(target) == expected, timeout=60,
                   message="every change to arrive after the restart")
        assert process.alive()
        log = process.log()
        assert "MDB unavailable" not in log
        assert f"{FAILED} (PostgreSQL" in log
    finally:
        assert process.stop() == 0


def can_read(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        time.sleep(0.2)
        return False
