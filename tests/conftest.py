"""Test fixtures: a template database built by the real migrations, copied per test.

Tests talk to the running PostgreSQL server (pytest-postgresql's no-process
fixture). Set WLSYNC_TEST_DB to give parallel runs their own database names.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import psycopg
import psycopg.sql
import pymysql
import pytest
from pytest_postgresql import factories

import wlsync_migrate
from tests.driver_helpers import WORKER, DriverProcess, wait_until

TEST_DB = os.environ.get("WLSYNC_TEST_DB", "wlsync_test")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """make test runs `-n 2 --dist loadgroup`: pytest-xdist keeps the tests of one
    xdist_group on one worker by adding @group to their node ids, which pytest 9.2
    ignores (pytest-xdist#1386; hence pytest<9.2 in pyproject.toml). The groups would
    then run side by side without a word: such tests fail instead (group_kept)."""
    if WORKER and getattr(config.option, "loadgroup", False):   # set on workers by --dist loadgroup
        for item in items:
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid.rpartition("]")[2]:
                item.stash[GROUP_LOST] = True


GROUP_LOST = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def group_kept(request) -> None:
    if request.node.stash.get(GROUP_LOST, False):
        pytest.fail("pytest-xdist did not keep this test's xdist_group on one worker (pytest-xdist#1386, "
                    "pytest 9.2): install pytest<9.2, or run without workers (make test TEST_WORKERS=0)")


def build_template(host, port, user, dbname, password, **_):
    """Exactly what `make migrate` does, on the template database."""
    dsn = psycopg.conninfo.make_conninfo(host=host, port=port, user=user, dbname=dbname, password=password)
    wlsync_migrate.migrate(dsn)


postgresql_server = factories.postgresql_noproc(dbname=TEST_DB, load=[build_template])


class TemplateCopies:
    """Each test's MDB: a fresh copy of the template (CREATE DATABASE ... TEMPLATE),
    made ahead by a background thread while tests run. Four names take turns (<db>_a
    to <db>_d, where <db> is WLSYNC_TEST_DB plus the xdist worker); each is dropped
    WITH (FORCE), which also cuts off anything a test left connected, and copied anew
    right after the test that used it. A copy costs 0.15-0.3 s of the server's time
    (over 1 s on a loaded one), which a test no longer waits for: four copies ready
    carry a run of quick tests (tests/sql) over the time slower tests left."""

    def __init__(self, server):
        self.server = server
        self.names = [f"{server.dbname}_{letter}" for letter in "abcd"]
        self.turn = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="template-copies")
        self.ready = {name: self.executor.submit(self.recreate, name) for name in self.names}

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(host=self.server.host, port=self.server.port, user=self.server.user,
                               password=self.server.password, dbname="postgres", autocommit=True)

    def drop(self, admin: psycopg.Connection, name: str) -> None:
        admin.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))

    def recreate(self, name: str) -> None:
        with self.admin() as admin:
            self.drop(admin, name)
            admin.execute(psycopg.sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                psycopg.sql.Identifier(name), psycopg.sql.Identifier(self.server.template_dbname)))

    @contextlib.contextmanager
    def copy(self) -> Iterator[str]:
        name = self.names[self.turn]
        self.turn = (self.turn + 1) % len(self.names)
        made = self.ready.pop(name)
        try:
            made.result()      # waits for the copy if it is not done; raises its error
            yield name
        finally:
            self.ready[name] = self.executor.submit(self.recreate, name)

    def close(self) -> None:
        for future in self.ready.values():
            future.exception()
        self.executor.shutdown()
        with self.admin() as admin:
            for name in self.names:
                self.drop(admin, name)


@pytest.fixture(scope="session")
def template_copies(postgresql_server) -> Iterator[TemplateCopies]:
    copies = TemplateCopies(postgresql_server)
    try:
        yield copies
    finally:
        copies.close()


@pytest.fixture
def postgresql(template_copies) -> Iterator[psycopg.Connection]:
    """A connection to the test's own copy of the template."""
    server = template_copies.server
    with template_copies.copy() as name:
        conn = psycopg.connect(host=server.host, port=server.port, user=server.user, password=server.password,
                               dbname=name)
        try:
            yield conn
        finally:
            conn.close()


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
    """(table, key) of every pending event of every ring (the writers' and each consumer's),
    in the order they were written (within one ring slot)."""
    slots = conn.execute("SELECT ring, slot, wlsync._slot_table(ring, slot) FROM wlsync.queue_slot").fetchall()
    union = " UNION ALL ".join(f"SELECT {ring} AS ring, {slot} AS slot, ctid, * FROM wlsync.{name}"
                               for ring, slot, name in slots)
    return conn.execute(
        f"SELECT t.relid::text, q.pk FROM ({union}) AS q"
        " JOIN wlsync.tracked_table AS t USING (table_id) ORDER BY q.ring, q.slot, q.ctid").fetchall()


def claim(conn, batch: int = 1000) -> list[dict]:
    """Call wlsync.claim_sync_events in conn's current transaction; rows as dicts."""
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM wlsync.claim_sync_events(%s)", (batch,)).fetchall()


# -- WL stores: every test that takes `target` runs over each of them ---------------------

def sqlite_wl(request) -> Iterator[str]:
    yield f"sqlite:///{request.getfixturevalue('tmp_path')}/wl.db"


def sqlite_refuse_title(target: str, title: str) -> Callable[[], None]:
    wl_sqlite(target, f"CREATE TRIGGER reject BEFORE INSERT ON movies WHEN NEW.title = '{title}' "
                      "BEGIN SELECT RAISE(ABORT, 'WL refuses this title'); END;")
    return lambda: wl_sqlite(target, "DROP TRIGGER reject")


def sqlite_locked(target: str) -> Callable[[], None]:
    """The test process (not the driver's) holds the WL file's write lock until the
    returned function runs."""
    holder = sqlite3.connect(target[len("sqlite:///"):], isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    def end() -> None:
        holder.execute("ROLLBACK")
        holder.close()
    return end


def wl_sqlite(target: str, statement: str) -> None:
    db = sqlite3.connect(target[len("sqlite:///"):])
    db.executescript(statement)
    db.close()


def postgresql_wl(request) -> Iterator[str]:
    """A database of its own on the test server."""
    mdb = request.getfixturevalue("mdb")
    name = mdb.info.dbname + "_wl"
    with admin_connection(mdb.info.host, mdb.info.port, mdb.info.user) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://{mdb.info.user}@{mdb.info.host}:{mdb.info.port}/{name}"
    with admin_connection(mdb.info.host, mdb.info.port, mdb.info.user) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admin_connection(host, port, user) -> psycopg.Connection:
    return psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True)


def postgresql_refuse_title(target: str, title: str) -> Callable[[], None]:
    wl_postgresql(target, f"ALTER TABLE movies ADD CONSTRAINT reject CHECK (title <> '{title}')")
    return lambda: wl_postgresql(target, "ALTER TABLE movies DROP CONSTRAINT reject")


def wl_postgresql(target: str, statement: str) -> None:
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(statement)


def postgresql_backends_killed(target: str) -> Callable[[], None]:
    """Every connection to WL terminated; new ones are accepted at once."""
    wl_postgresql(target, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    return lambda: None


def postgresql_refusing(target: str) -> Callable[[], None]:
    """WL's connections terminated and new ones refused until the returned function runs."""
    info = psycopg.conninfo.conninfo_to_dict(target)
    with admin_connection(info["host"], info["port"], info["user"]) as admin:
        admin.execute(f'ALTER DATABASE "{info["dbname"]}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                      [info["dbname"]])

    def end() -> None:
        with admin_connection(info["host"], info["port"], info["user"]) as admin:
            admin.execute(f'ALTER DATABASE "{info["dbname"]}" ALLOW_CONNECTIONS true')
    return end


# The MariaDB server the mysql:// tests use (user root, no password).
MYSQL_SERVER = "mysql://root@127.0.0.1:3306"


def mysql_wl(request) -> Iterator[str]:
    """A MariaDB database of its own, named after the test's MDB database."""
    yield from mysql_database(request.getfixturevalue("mdb").info.dbname + "_wl")


def mysql_database(name: str, server: str = MYSQL_SERVER) -> Iterator[str]:
    """A fresh MariaDB database on `server`, dropped afterwards; yields its URL."""
    mysql_execute(server, f"DROP DATABASE IF EXISTS `{name}`", f"CREATE DATABASE `{name}`")
    yield f"{server}/{name}"
    mysql_execute(server, f"DROP DATABASE IF EXISTS `{name}`")


def mysql_connect(url: str) -> pymysql.connections.Connection:
    """An autocommit connection to a mysql:// URL's server (and database, if it names one)."""
    parts = urlsplit(url)
    # ssl_disabled: on loopback, TLS setup would only add ~30 ms to every connection.
    return pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                           password=parts.password or "", database=parts.path.lstrip("/") or None,
                           charset="utf8mb4", autocommit=True, ssl_disabled=True)


def mysql_execute(url: str, *statements: str) -> list[tuple]:
    """Run statements on a mysql:// URL; the last one's rows."""
    conn = mysql_connect(url)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            return list(cursor.fetchall())
    finally:
        conn.close()


def mysql_refuse_title(target: str, title: str) -> Callable[[], None]:
    mysql_execute(target, f"CREATE TRIGGER reject BEFORE INSERT ON movies FOR EACH ROW IF NEW.title = '{title}' "
                          "THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'WL refuses this title'; END IF")
    return lambda: mysql_execute(target, "DROP TRIGGER reject")


def mysql_connections_killed(target: str) -> Callable[[], None]:
    """Every connection to WL's database KILLed; new ones are accepted at once."""
    database = urlsplit(target).path.lstrip("/")
    for (thread,) in mysql_execute(target.rsplit("/", 1)[0], "SELECT ID FROM information_schema.PROCESSLIST "
                                   f"WHERE DB = '{database}' AND ID <> CONNECTION_ID()"):
        try:
            mysql_execute(target.rsplit("/", 1)[0], f"KILL {thread}")
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != 1094:  # Unknown thread id: it ended by itself meanwhile
                raise
    return lambda: None


def example_wl(request) -> Iterator[str]:
    """The README's example plug-in sink, installed in a directory of its own and put
    on this process's path and on the driver processes' PYTHONPATH."""
    installed = request.getfixturevalue("example_sink_site")
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(installed), os.environ.get("PYTHONPATH")])))
    yield f"jsonfile://{request.getfixturevalue('tmp_path')}/wl.json"


@dataclass(frozen=True)
class Outage:
    name: str
    begin: Callable[[str], Callable[[], None]]  # makes WL fail; returns the function that ends it
    lasting: bool  # WL stays down until the end (else only the connections in use are lost)
    # Whether the driver must meet it as a failure; False where the store's client rides
    # over it by reconnecting (NATS): then only survival and delivery are checked.
    felt: bool = True


@dataclass(frozen=True)
class Store:
    """A sink under test. ``make(request)`` yields a fresh, empty target URL and cleans
    up after it. Optional: ``refuse_title(target, title)`` makes WL's movies table refuse
    rows of that title and returns the undo (for the poison tests), and ``outages``."""
    make: Callable[[pytest.FixtureRequest], Iterator[str]]
    refuse_title: Callable[[str, str], Callable[[], None]] | None = None
    outages: tuple[Outage, ...] = ()


STORES = {
    "sqlite": Store(sqlite_wl, sqlite_refuse_title, (Outage("file locked", sqlite_locked, True),)),
    "postgresql": Store(postgresql_wl, postgresql_refuse_title,
                        (Outage("connections killed", postgresql_backends_killed, False),
                         Outage("connections refused", postgresql_refusing, True))),
    "mysql": Store(mysql_wl, mysql_refuse_title, (Outage("connections killed", mysql_connections_killed, False),)),
    "example": Store(example_wl),
}

# Redis (db 10, a key prefix per test) and NATS (a NAME per test): tests/kv_stores.py.
# Neither can be made to refuse one title (their own rejections: tests/test_sink_redis.py,
# tests/test_sink_nats.py, with the restarts of a throwaway server of each).
from tests import kv_stores  # noqa: E402

STORES["redis"] = Store(kv_stores.redis_wl, None,
                        (Outage("connections killed and refused", kv_stores.redis_refusing, True),))
STORES["nats"] = Store(kv_stores.nats_wl, None,
                       (Outage("connections killed", kv_stores.nats_connections_killed, False, felt=False),))


@pytest.fixture(params=list(STORES))
def target(request):
    """A fresh, empty WL: its --target URL."""
    yield from STORES[request.param].make(request)


@pytest.fixture
def store(request, target) -> Store:
    """What the tests know about the current `target`'s store."""
    return STORES[request.node.callspec.params["target"]]


@pytest.fixture
def refuse_title(store):
    if store.refuse_title is None:
        pytest.skip("this WL cannot be made to refuse a row")
    return store.refuse_title


@pytest.fixture(scope="session")
def example_sink_site(tmp_path_factory) -> Path:
    """README.md's example sink, built into a package from its files there and installed
    with pip into a directory of its own (not the venv)."""
    source = tmp_path_factory.mktemp("example_sink_source")
    for name, text in readme_files().items():
        (source / name).write_text(text)
    site = tmp_path_factory.mktemp("example_sink_site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(source)],
                   check=True, capture_output=True, timeout=300)
    return site


def readme_files() -> dict[str, str]:
    """The code blocks of README.md that start with a `# file: NAME` line."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return {name: body for name, body in re.findall(r"```\w+\n# file: (\S+)\n(.*?)```", text, re.S)}


@dataclass(frozen=True)
class Cluster:
    """A throwaway PostgreSQL cluster, to stop and crash, and the test's own database on it."""
    name: str
    port: int
    dbname: str = "postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.dbname}"

    def ctl(self, *args: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", CLUSTER_VERSION, self.name, *args],
                       check=True, capture_output=True, timeout=120)

    def ensure_running(self) -> None:
        """Starts the server if a test left it stopped (or crashed)."""
        if not can_connect(self.dsn):
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", CLUSTER_VERSION, self.name, "start"],
                           capture_output=True, timeout=120)
            wait_until(lambda: can_connect(self.dsn), timeout=30, message="the throwaway server")


CLUSTER_VERSION = "15"


@pytest.fixture(scope="session")
def throwaway_server() -> Iterator[Cluster]:
    """pg_createcluster's server on 127.0.0.1 (trust auth), made once for the tests that
    stop or crash it (initdb and its removal took 3-6 s a test), dropped at the end.
    Name and port: $WLSYNC_TEST_CLUSTER (default wlsync_test_cluster) and
    $WLSYNC_TEST_CLUSTER_PORT (default 5499), so that parallel runs can keep apart; a
    pytest-xdist worker adds its name to the cluster's and its number to the port
    (gw1: wlsync_test_cluster_gw1, 5500)."""
    if shutil.which("pg_createcluster") is None:
        pytest.skip("needs postgresql-common (pg_createcluster)")
    cluster = Cluster(os.environ.get("WLSYNC_TEST_CLUSTER", "wlsync_test_cluster") + (f"_{WORKER}" if WORKER else ""),
                      int(os.environ.get("WLSYNC_TEST_CLUSTER_PORT", "5499")) + int(WORKER[2:] or 0))
    subprocess.run(["pg_dropcluster", "--stop", CLUSTER_VERSION, cluster.name], capture_output=True)
    subprocess.run(["pg_createcluster", CLUSTER_VERSION, cluster.name, "--port", str(cluster.port), "--start",
                    "--", "--auth=trust"], check=True, capture_output=True, timeout=120)
    try:
        wait_until(lambda: can_connect(cluster.dsn), timeout=30, message="the throwaway server")
        yield cluster
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", CLUSTER_VERSION, cluster.name, "stop",
                        "-m", "immediate"], capture_output=True)
        subprocess.run(["pg_dropcluster", "--stop", CLUSTER_VERSION, cluster.name], capture_output=True)


@pytest.fixture
def throwaway_cluster(throwaway_server: Cluster, request) -> Iterator[Cluster]:
    """A fresh, empty database of the test's own on the throwaway server (running, even
    if the test before crashed it), dropped at teardown. The test may stop, crash and
    restart the whole server."""
    cluster = Cluster(throwaway_server.name, throwaway_server.port,
                      re.sub(r"\W", "_", request.node.name)[:40].lower())
    throwaway_server.ensure_running()
    with psycopg.connect(throwaway_server.dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{cluster.dbname}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{cluster.dbname}"')
    yield cluster
    throwaway_server.ensure_running()
    with psycopg.connect(throwaway_server.dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{cluster.dbname}" WITH (FORCE)')


def can_connect(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


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
