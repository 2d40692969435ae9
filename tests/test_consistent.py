"""Consistent mode (wlsync run --consistent): every WL commit is MDB as of one snapshot.

README.md, "Consistent mode", has the argument; these tests check it against real
workloads (pgbench's TPC-B, foreign keys), the exclusion of other claims, driver
deaths, a backfill in progress, a large backlog and a rejected key.
"""
from __future__ import annotations

import sqlite3
import subprocess
import threading
import time

import psycopg
import pymysql
import pytest

from tests.conftest import STORES, mysql_execute, wl_postgresql, wl_sqlite
from tests.driver_helpers import run_cli, wait_until, wl_titles
from tests.test_certainty import soak_and_check

# The sinks that can commit several writes as one transaction (Sink.consistent).
CONSISTENT_SINKS = ["sqlite", "postgresql", "mysql"]


@pytest.fixture(params=CONSISTENT_SINKS)
def target(request):
    """A fresh, empty WL of a sink that takes consistent-mode batches."""
    yield from STORES[request.param].make(request)


def wl_query(target: str, query: str) -> list[tuple]:
    """Run one read-only statement on WL (one statement: one snapshot in every store)."""
    if target.startswith("mysql://"):
        return mysql_execute(target, query)
    if target.startswith("sqlite:///"):
        db = sqlite3.connect(target[len("sqlite:///"):], timeout=30)
        try:
            return db.execute(query).fetchall()
        finally:
            db.close()
    with psycopg.connect(target, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def queue_empty(mdb) -> bool:
    return mdb.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0


# -- pgbench's TPC-B: sum(abalance) = sum(tbalance) = sum(bbalance) in every MDB state ------

TPCB_SUMS = ("SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers), "
             "(SELECT sum(bbalance) FROM pgbench_branches), (SELECT count(*) FROM pgbench_accounts)")


class SumsObserver:
    """Reads WL's three sums in one statement, as fast as it can, while drivers sync."""

    def __init__(self, target: str, accounts: int):
        self.target, self.accounts = target, accounts
        self.reads = 0
        self.violations: list[tuple] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                accounts, tellers, branches, count = wl_query(self.target, TPCB_SUMS)[0]
            except (sqlite3.OperationalError, psycopg.errors.UndefinedTable, pymysql.err.ProgrammingError):
                continue  # WL's tables are not there yet
            if count != self.accounts:
                continue  # the first commit (the backfill) has not landed yet
            self.reads += 1
            if not accounts == tellers == branches:
                self.violations.append((accounts, tellers, branches))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def tpcb_setup(mdb, mdb_dsn: str) -> int:
    """pgbench -i (scale 1), the three keyed tables tracked and backfilled; returns the accounts."""
    subprocess.run(["pgbench", "-i", "-q", "-s", "1", mdb_dsn], check=True, capture_output=True, timeout=120)
    for table in ("pgbench_branches", "pgbench_tellers", "pgbench_accounts"):
        mdb.execute("SELECT wlsync.track(%s), wlsync.backfill(%s)", [table, table])
    return mdb.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0]


def tpcb_run(mdb_dsn: str, target: str, driver, accounts: int, *driver_args: str) -> SumsObserver:
    """pgbench's built-in TPC-B-like script, 8 clients, while a driver syncs and an
    observer reads WL; returns the observer once WL has caught up with MDB."""
    sync = driver(*driver_args)
    wait_until(lambda: wl_has_accounts(target) and wl_query(target, TPCB_SUMS)[0][3] == accounts,
               timeout=60, message="the backfill in WL")
    with SumsObserver(target, accounts) as observer:
        subprocess.run(["pgbench", "-n", "-c", "8", "-j", "2", "-T", "8", mdb_dsn],
                       check=True, capture_output=True, timeout=120)
        time.sleep(0.5)
    assert sync.alive()
    return observer


def wl_has_accounts(target: str) -> bool:
    """Whether WL has the three tables (MariaDB creates them one at a time, outside the batch)."""
    query = ("SELECT name FROM sqlite_master" if target.startswith("sqlite:///")
             else "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
             if target.startswith("mysql://")
             else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    try:
        return {"pgbench_accounts", "pgbench_tellers", "pgbench_branches"} <= {name for (name,) in wl_query(target, query)}
    except sqlite3.OperationalError:  # the file is not there yet
        return False


def tpcb_in_sync(mdb, mdb_dsn: str, target: str) -> None:
    """The queue drains, verify finds WL equal to MDB, and the sums agree on both sides."""
    wait_until(lambda: queue_empty(mdb), timeout=60, message="the queue to drain")
    verify = run_cli("verify", "--source", mdb_dsn, "--target", target)
    assert verify.returncode == 0, verify.stdout[-2000:]
    mdb_sums = mdb.execute(TPCB_SUMS).fetchone()
    assert mdb_sums[0] == mdb_sums[1] == mdb_sums[2] != 0  # pgbench moved money
    assert tuple(wl_query(target, TPCB_SUMS)[0]) == tuple(mdb_sums)


def test_under_tpcb_every_wl_state_has_equal_sums_in_consistent_mode(mdb, mdb_dsn, target, driver):
    accounts = tpcb_setup(mdb, mdb_dsn)
    observer = tpcb_run(mdb_dsn, target, driver, accounts, "--consistent", "--batch", "50")
    print(f"consistent: {observer.reads} reads of WL, {len(observer.violations)} with unequal sums")
    assert observer.reads > 20
    assert observer.violations == []
    tpcb_in_sync(mdb, mdb_dsn, target)


def test_under_tpcb_normal_mode_shows_states_mdb_never_had(mdb, mdb_dsn, target, driver):
    """The same observer on a normal-mode driver: it does catch mixed states, so the
    test above could fail. (Convergence still holds: WL ends equal to MDB.)"""
    accounts = tpcb_setup(mdb, mdb_dsn)
    observer = tpcb_run(mdb_dsn, target, driver, accounts, "--batch", "50")
    print(f"normal: {observer.reads} reads of WL, {len(observer.violations)} with unequal sums")
    assert observer.violations
    tpcb_in_sync(mdb, mdb_dsn, target)


# -- foreign keys in WL ----------------------------------------------------------------------

FK_SCHEMA = """
CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent, n int NOT NULL);
SELECT wlsync.track('parent'), wlsync.track('child');
"""
# WL's copies carry MDB's foreign key; PostgreSQL can defer it only when it is DEFERRABLE.
WL_FK_SCHEMA = {
    "sqlite": "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);"
              "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent, n INTEGER);",
    "postgresql": "CREATE TABLE parent (id int PRIMARY KEY, name text);"
                  "CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL "
                  "REFERENCES parent DEFERRABLE INITIALLY IMMEDIATE, n int);",
    # MariaDB cannot defer a foreign key: its sink turns the checks off for a consistent batch.
    "mysql": "CREATE TABLE parent (id int PRIMARY KEY, name text) ENGINE = InnoDB;"
             "CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL, n int,"
             " FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE = InnoDB;",
}


def wl_execute(target: str, script: str) -> None:
    if target.startswith("mysql://"):
        mysql_execute(target, *filter(None, (statement.strip() for statement in script.split(";"))))
    elif target.startswith("sqlite:///"):
        wl_sqlite(target, script)
    else:
        wl_postgresql(target, script)


def families(mdb_dsn: str, count: int, first: int = 1) -> None:
    """Transactions that insert a parent with three children (parents first..first +
    count - 1), and delete an older parent with its children (children first, as MDB's
    own key demands); slowly enough that WL has the children before their parent goes."""
    with psycopg.connect(mdb_dsn) as conn:
        for family in range(first, first + count):
            conn.execute("INSERT INTO parent VALUES (%s, %s)", [family, f"p{family}"])
            conn.execute("INSERT INTO child SELECT %s * 10 + g, %s, g FROM generate_series(1, 3) g",
                         [family, family])
            if family >= first + 5 and family % 2:
                old = family - 5
                conn.execute("DELETE FROM child WHERE parent_id = %s", [old])
                conn.execute("DELETE FROM parent WHERE id = %s", [old])
            conn.commit()
            time.sleep(0.02)


def test_wl_foreign_keys_accept_every_consistent_batch(mdb, mdb_dsn, target, driver):
    wl_execute(target, WL_FK_SCHEMA[store_name(target)])
    mdb.execute(FK_SCHEMA)
    sync = driver("--consistent", "--batch", "4")  # chunks of 4 keys split families apart
    writer = threading.Thread(target=families, args=(mdb_dsn, 150))
    writer.start()
    writer.join(120)
    wait_until(lambda: queue_empty(mdb), timeout=60, message="the queue to drain")
    assert mdb.execute("SELECT count(*) FROM wlsync.dead_letter").fetchone()[0] == 0
    assert "WL rejected" not in sync.log()
    assert run_cli("verify", "--source", mdb_dsn, "--target", target).returncode == 0
    assert wl_query(target, "SELECT count(*) FROM child")[0][0] == mdb.execute(
        "SELECT count(*) FROM child").fetchone()[0] > 100


def test_normal_mode_sends_children_before_their_parents(mdb, mdb_dsn, target, driver):
    """Control for the test above: without --consistent, small batches split
    families and WL's (immediate) foreign key refuses some children."""
    if not target.startswith("postgresql"):
        # SQLite checks foreign keys only on connections that ask for it (normal mode does not);
        # MariaDB's sink, splitting a refused batch, happens to write each parent first.
        pytest.skip("the control needs WL to refuse a child that comes first: PostgreSQL's immediate key")
    wl_execute(target, WL_FK_SCHEMA["postgresql"])
    mdb.execute(FK_SCHEMA)
    sync = driver("--batch", "4")
    # A refusal needs WL to hold a family's children when the batch deleting their
    # parent comes; a driver lagging behind on a loaded machine may find both gone
    # and write neither. More families, a few rounds at most, until one is refused.
    for first in range(1, 5000, 1000):
        families(mdb_dsn, 150, first)
        if "WL rejected" in sync.log():
            break
    wait_until(lambda: "WL rejected" in sync.log(), timeout=30, message="a refused child")


def store_name(target: str) -> str:
    return next(name for name in CONSISTENT_SINKS if target.startswith(name))


# -- one consistent driver at a time, and nothing else claims beside it ------------------------

def test_a_consistent_driver_excludes_other_claims_and_a_standby_takes_over(movies, mdb_dsn, target, driver,
                                                                             connect):
    movies.execute("INSERT INTO movies SELECT g, 't' || g, 2000 FROM generate_series(1, 100) g")
    first = driver("--consistent")
    wait_until(lambda: len(wl_titles(target)) == 100, message="the first consistent batch")
    second = driver("--consistent")
    wait_until(lambda: "standing by: MDB's consistent drain of consumer default is held by a consistent driver" in second.log(),
               message="the second driver standing by")

    # A READ COMMITTED claim (a normal driver, a DBA's psql) is refused meanwhile.
    other = connect(autocommit=True)
    with pytest.raises(psycopg.errors.LockNotAvailable, match="consistent-mode driver is draining"):
        other.execute("SELECT * FROM wlsync.claim_sync_events()")
    normal = run_cli("run", "--once", "--source", mdb_dsn, "--target", target, timeout=60)
    assert normal.returncode == 1 and "consistent-mode driver is draining" in normal.stderr

    first.kill()  # its MDB session ends with it, and the lock with the session
    wait_until(lambda: "took over the consistent drain" in second.log(), message="the standby taking over")
    movies.execute("UPDATE movies SET title = 'after' WHERE id <= 10")
    wait_until(lambda: sum(t == "after" for t in wl_titles(target).values()) == 10, message="the takeover syncing")
    assert second.alive()


def test_consistent_mode_sql_refuses_a_claim_outside_its_transaction(movies, connect):
    holder = connect(autocommit=True)
    assert holder.execute("SELECT wlsync.lock_consistent_drain()").fetchone()[0] is None
    # The lock holder's snapshot batch must run in REPEATABLE READ ...
    with pytest.raises(psycopg.errors.ActiveSqlTransaction, match="REPEATABLE READ"):
        holder.execute("SELECT * FROM wlsync.start_consistent_batch()")
    # ... and only the holder may run one.
    stranger = connect()
    stranger.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    with pytest.raises(psycopg.errors.LockNotAvailable, match="does not hold the consistent drain lock"):
        stranger.execute("SELECT * FROM wlsync.claim_sync_events()")
    stranger.rollback()
    assert "consistent driver" in connect(autocommit=True).execute(
        "SELECT wlsync.lock_consistent_drain()").fetchone()[0]


def test_queue_maintenance_and_claims_do_not_take_each_other_for_a_consistent_driver(movies, connect):
    """The drain lock has a key of its own: a maintenance in flight does not fail a
    claim, and claims in flight do not make maintenance skip its work."""
    movies.execute("INSERT INTO movies VALUES (1, 'a', 2000)")
    maintaining = connect()
    maintaining.execute("SELECT wlsync.maintain_queue()")  # its transaction stays open
    claiming = connect()
    assert len(claiming.execute("SELECT * FROM wlsync.claim_sync_events()").fetchall()) == 1
    maintaining.rollback()
    done = connect(autocommit=True).execute("SELECT wlsync.maintain_queue()").fetchone()[0]
    assert "skipped: another maintenance is running" not in done
    claiming.rollback()


def test_a_snapshot_batch_takes_exactly_the_events_its_snapshot_sees(movies, connect):
    movies.execute("INSERT INTO movies SELECT g, 'old', 2000 FROM generate_series(1, 25) g")
    conn = connect(autocommit=True)
    conn.execute("SELECT wlsync.lock_consistent_drain()")
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    version = conn.execute("SELECT version FROM wlsync.start_consistent_batch()").fetchone()[0]
    movies.execute("UPDATE movies SET title = 'new' WHERE id = 1")  # commits after the snapshot
    movies.execute("INSERT INTO movies VALUES (26, 'new', 2000)")
    claimed = []
    while rows := conn.execute("SELECT pk, row_data, version FROM wlsync.claim_sync_events(10)").fetchall():
        claimed += rows
    conn.execute("COMMIT")
    assert sorted(int(pk["id"]) for pk, _, _ in claimed) == list(range(1, 26))
    assert {row["title"] for _, row, _ in claimed} == {"old"}  # read as of the snapshot
    assert {v for _, _, v in claimed} == {version}
    left = movies.execute("SELECT pk FROM wlsync.queue ORDER BY pk").fetchall()
    assert left == [({"id": 1},), ({"id": 26},)]  # the later commits wait for the next batch


# -- backfill, large backlogs, rejected keys ------------------------------------------------

def test_a_consistent_driver_waits_for_a_backfill_pass_and_completes_it(mdb, mdb_dsn, target, driver):
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text, year int)")
    mdb.execute("INSERT INTO movies SELECT g, 't' || g, 2000 FROM generate_series(1, 300) g")
    mdb.execute("SELECT wlsync.track('movies')")
    sync = driver("--consistent")
    wait_until(lambda: mdb.execute("SELECT notify_until > now() FROM wlsync.capture_state").fetchone()[0],
               message="the driver idle, its wake-up armed")
    # A pass started while the driver runs: a third of the table would be a state MDB never had.
    assert mdb.execute("SELECT wlsync.backfill('movies', 100)").fetchone()[0] == 100
    wait_until(lambda: "waiting for the backfill pass of public.movies to complete" in sync.log(),
               message="the driver waiting for the pass")
    assert wl_titles(target) == {}
    # The driver completes its consumer's passes itself (at most 10 s later), then syncs
    # the whole table in one WL commit.
    wait_until(lambda: len(wl_titles(target)) == 300, timeout=30, message="the whole table in WL")
    assert "synced 300 events (300 keys)" in sync.log()
    assert mdb.execute("SELECT completed_at IS NOT NULL FROM wlsync.backfill_state").fetchone()[0]


def test_a_truncate_and_its_refill_arrive_as_one_commit(movies, mdb_dsn, target):
    """TRUNCATE enqueues every key the table held in the truncating transaction: the
    table is never seen empty in WL when MDB never committed it empty."""
    movies.execute("INSERT INTO movies SELECT g, 'old', 2000 FROM generate_series(1, 300) g")
    assert run_cli("run", "--once", "--consistent", "--source", mdb_dsn, "--target", target).returncode == 0
    with movies.transaction():
        movies.execute("TRUNCATE movies")
        movies.execute("INSERT INTO movies SELECT g, 'new', 2001 FROM generate_series(201, 400) g")
    result = run_cli("run", "--once", "--consistent", "--batch", "50", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count(" INFO synced ") == 1  # 300 deletes and 200 inserts, one WL commit
    assert wl_titles(target) == {i: "new" for i in range(201, 401)}


def test_a_large_backlog_is_one_wl_commit_claimed_in_chunks(movies, mdb_dsn, target):
    movies.execute("INSERT INTO movies SELECT g, 't' || g, 2000 FROM generate_series(1, 20000) g")
    movies.execute("UPDATE movies SET year = 2001 WHERE id % 3 = 0")
    result = run_cli("run", "--once", "--consistent", "--batch", "500", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count(" INFO synced ") == 1
    assert "synced 26666 events (" in result.stderr  # keys: rows claimed (a key may come in two chunks)
    assert len(wl_titles(target)) == 20000
    assert run_cli("verify", "--source", mdb_dsn, "--target", target).returncode == 0


def test_a_key_wl_rejects_becomes_a_dead_letter_and_the_rest_commits(movies, mdb_dsn, target, store, driver):
    movies.execute("INSERT INTO movies SELECT g, 't' || g, 2000 FROM generate_series(1, 10) g")
    result = run_cli("run", "--once", "--consistent", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 0, result.stderr[-2000:]
    undo = store.refuse_title(target, "poison")
    movies.execute("UPDATE movies SET title = 'poison' WHERE id = 3")
    movies.execute("UPDATE movies SET title = 'fine' WHERE id IN (1, 7)")
    result = run_cli("run", "--once", "--consistent", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WL rejected public.movies" in result.stderr
    titles = wl_titles(target)
    assert titles[1] == titles[7] == "fine" and titles[3] == "t3"
    assert movies.execute("SELECT pk FROM wlsync.dead_letter").fetchall() == [({"id": 3},)]
    undo()
    movies.execute("SELECT wlsync.retry_dead_letters()")
    result = run_cli("run", "--once", "--consistent", "--source", mdb_dsn, "--target", target)
    assert result.returncode == 0 and wl_titles(target)[3] == "poison"


def test_sinks_without_transactions_refuse_consistent_mode(movies, mdb_dsn):
    for url, name in (("nats://127.0.0.1:4222/wl-consistent", "NATS"), ("redis://127.0.0.1:6379/10", "Redis")):
        result = run_cli("run", "--once", "--consistent", "--source", mdb_dsn, "--target", url)
        assert result.returncode == 2
        assert result.stderr.startswith(f"wlsync: error: {name}") and "cannot hold a whole MDB snapshot" in result.stderr
        assert "Traceback" not in result.stderr


# -- the soak: writers, drivers SIGKILLed at random, the never-backwards observer ---------------

def test_soak_short_consistent(mdb, mdb_dsn, target, tmp_path):
    soak_and_check(mdb, mdb_dsn, target, tmp_path, seconds=8, writers=3, drivers=3, kill_every=1.5,
                   driver_args=("--consistent",))

