"""Test fixtures: a template database built by the real migrations, copied per test.

Tests talk to the running PostgreSQL server (pytest-postgresql's no-process
fixture). Set WLSYNC_TEST_DB to give parallel runs their own database names.
"""
from __future__ import annotations

import os

import psycopg
import pytest
from pytest_postgresql import factories

import wlsync_migrate
from tests.driver_helpers import DriverProcess

TEST_DB = os.environ.get("WLSYNC_TEST_DB", "wlsync_test")


def build_template(host, port, user, dbname, password, **_):
    """Exactly what `make migrate` does, on the template database."""
    dsn = psycopg.conninfo.make_conninfo(host=host, port=port, user=user, dbname=dbname, password=password)
    wlsync_migrate.migrate(dsn)


postgresql_server = factories.postgresql_noproc(dbname=TEST_DB, load=[build_template])
postgresql = factories.postgresql("postgresql_server")


@pytest.fixture
def mdb(postgresql) -> psycopg.Connection:
    """An autocommit connection to a fresh, migrated MDB database."""
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
def mdb_dsn(mdb) -> str:
    """DSN of the test's MDB, for extra connections and processes."""
    info = mdb.info
    return psycopg.conninfo.make_conninfo(host=info.host, port=info.port, user=info.user, dbname=info.dbname)


@pytest.fixture
def connect(mdb_dsn):
    """Open more connections to the test's MDB; all closed at teardown."""
    opened: list[psycopg.Connection] = []

    def _connect(autocommit: bool = False, **kwargs) -> psycopg.Connection:
        conn = psycopg.connect(mdb_dsn, autocommit=autocommit, **kwargs)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


def queue_rows(conn) -> list[tuple]:
    """(table, key) of every pending event, in the order they were written (within one ring slot)."""
    return conn.execute(
        "SELECT t.relid::text, q.pk FROM (SELECT 0 AS slot, ctid, * FROM wlsync.queue_0 UNION ALL"
        " SELECT 1, ctid, * FROM wlsync.queue_1 UNION ALL SELECT 2, ctid, * FROM wlsync.queue_2) AS q"
        " JOIN wlsync.tracked_table AS t USING (table_id) ORDER BY q.slot, q.ctid").fetchall()


def claim(conn, batch: int = 1000) -> list[dict]:
    """Call wlsync.claim_sync_events in conn's current transaction; rows as dicts."""
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM wlsync.claim_sync_events(%s)", (batch,)).fetchall()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path, mdb):
    """A fresh WL: a SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/wl.db"
        return
    name = mdb.info.dbname + "_wl"
    with psycopg.connect(host=mdb.info.host, port=mdb.info.port, user=mdb.info.user, dbname="postgres",
                         autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://{mdb.info.user}@{mdb.info.host}:{mdb.info.port}/{name}"
    with psycopg.connect(host=mdb.info.host, port=mdb.info.port, user=mdb.info.user, dbname="postgres",
                         autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def movies(mdb):
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text, year int)")
    mdb.execute("SELECT wlsync.track('movies')")
    return mdb


@pytest.fixture
def driver(mdb_dsn, target, tmp_path):
    """Start a driver (sweep 1 s unless given); stopped and checked at teardown."""
    started: list[DriverProcess] = []

    def _start(*extra: str, env: dict | None = None) -> DriverProcess:
        args = extra if "--sweep-interval" in extra else ("--sweep-interval", "1", *extra)
        process = DriverProcess(mdb_dsn, target, tmp_path / f"driver{len(started)}.log", *args, env=env)
        started.append(process)
        return process

    yield _start
    for process in started:
        process.stop()
