"""make bench: wlsync measured end to end against the anchors issue 10 names, in the same run.

    .venv/bin/python bench/bench.py                 # full run (~20 min on 2 cores), writes bench/RESULTS.md
    BENCH_QUICK=1 .venv/bin/python bench/bench.py   # quick mode (a few minutes), writes bench/out/ only
    .venv/bin/python bench/bench.py --mode smoke    # a tiny slice (< 30 s), for tests/test_bench_smoke.py
    .venv/bin/python bench/bench.py --only drain,latency   # some sections (results under bench/out/)

Sections (see bench/RESULTS.md for what each one reports):
  overhead  pgbench single-row UPDATE / INSERT on a 100k-row table at 1, 4, 16 clients. On this
            server: untracked, wlsync.track, and the floor (a bare PL/pgSQL row trigger inserting
            one (int, bigint) row into an unindexed table). On a throwaway cluster with
            wal_level=logical: the same, plus a live logical slot (pgoutput, publication on the
            table, consumed by pg_recvlogical into /dev/null). Then, on this server, one session
            running single-row statements in a DO block with each of untracked, floor, wlsync:
            the capture's CPU per statement, without pgbench's client or contention
  tpcb      pgbench's built-in TPC-B-like script (scale 4, 8 clients) on tracked pgbench_accounts,
            pgbench_tellers, pgbench_branches: untracked, the floor's triggers, capture only, capture with two drivers
            draining into each sink of drain_sinks; the backlog is drained afterwards and checked
  drain     a pre-filled queue (one event per key) drained by one and two `wlsync_driver.py run
            --once` at the default batch into each sink of drain_sinks (sqlite, postgresql; also
            mysql, redis, nats when their sink modules are there); the claim function alone; a
            short batch-size sweep; the original demo's one-event-at-a-time loop (baseline)
  latency   a listening driver, a writer committing ~100 changes/s, commit-to-visible-in-WL
            latency; again with the wake-up held disarmed (sweep only)
  health    1M events drained by one driver, with and without a REPEATABLE READ transaction held
            open, on this server (autovacuum off) and on the throwaway cluster (autovacuum on):
            events/s, queue size and dead tuples per 100k window; a writer updating a tracked
            table as fast as it can during the long-transaction drains (its max statement
            latency, and whether pg_locks ever shows it waiting); driver peak RSS

Every figure is measured `runs` times (repetitions interleaved: run 1 of every case,
then run 2, ...) and reported as median (min-max); ratios are computed within one
repetition and then summarised the same way. Raw results: bench/out/<stamp>/results.json.

Databases: wlsync_bench_* (BENCH_DB_PREFIX), created here and dropped at the end.
Server: BENCH_PGHOST / BENCH_PGPORT / BENCH_PGUSER (default 127.0.0.1, 5432, postgres).
Throwaway cluster: BENCH_CLUSTER / BENCH_CLUSTER_PORT (default wlsync_bench_logical, 5498),
made with pg_createcluster and dropped (pg_dropcluster --stop) when the run ends, even on error.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import wlsync_migrate  # noqa: E402
import wlsync_verify  # noqa: E402
from wlsync_driver import JsonbLoader  # noqa: E402
from wlsync_sinks import open_sink, tables_from_rows  # noqa: E402

BENCH = ROOT / "bench"
DRIVER = ROOT / "wlsync_driver.py"
PY = sys.executable

HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
PORT = int(os.environ.get("BENCH_PGPORT", "5432"))
USER = os.environ.get("BENCH_PGUSER", "postgres")
CLUSTER = os.environ.get("BENCH_CLUSTER", "wlsync_bench_logical")
CLUSTER_PORT = int(os.environ.get("BENCH_CLUSTER_PORT", "5498"))
CLUSTER_HOST = "127.0.0.1"

# The sinks drain_sinks may name: module of wlsync_sinks/ and how this bench makes a WL for it.
SINK_MODULES = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql", "redis": "redis", "nats": "nats"}
SINK_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB", "redis": "Redis",
              "nats": "NATS JetStream"}
MYSQL_SERVER = os.environ.get("BENCH_MYSQL", "mysql://root@127.0.0.1:3306")
REDIS_SERVER = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/9")
NATS_SERVER = os.environ.get("BENCH_NATS", "nats://127.0.0.1:4222")


# --------------------------------------------------------------------------- configuration

@dataclass
class Config:
    mode: str
    runs: int = 3
    # The throwaway cluster (wal_level=logical, autovacuum=on): the slot variant of the
    # overhead section and the autovacuum-on health case. 0: skip everything that needs it.
    logical_cluster: int = 1
    # 1. capture cost (pgbench)
    overhead_modes: list = field(default_factory=lambda: ["update", "insert"])
    overhead_clients: list = field(default_factory=lambda: [1, 4, 16])
    overhead_variants: list = field(default_factory=lambda: ["untracked", "wlsync", "floor", "wlsync_c2", "wlsync_c4",
                                                             "per_consumer_4"])
    overhead_logical_variants: list = field(default_factory=lambda: ["untracked", "wlsync", "floor", "slot"])
    overhead_seconds: int = 3
    table_rows: int = 100_000
    # One session, no contention: single-row statements in a DO block, per variant (untracked,
    # floor, wlsync): what the capture itself costs in CPU, beside pgbench's TPS. 0: skipped.
    statement_cost_statements: int = 50_000
    # 1b. a real client: pgbench's TPC-B-like script
    tpcb_scale: int = 4
    tpcb_clients: int = 8
    tpcb_seconds: int = 8
    tpcb_drivers: int = 2          # drivers draining into each sink meanwhile; 0: capture only
    tpcb_drain_timeout: float = 60.0
    # 2. drain throughput (one event per key), claim alone, sweep, baseline
    drain_sinks: list = field(default_factory=lambda: ["sqlite", "postgresql"])
    drain_drivers: list = field(default_factory=lambda: [1, 2])
    drain_queue: int = 200_000     # events (one per key) of the headline cases and the claim alone
    # A case still running after drain_cap seconds is stopped (drivers get SIGTERM and finish their
    # batch): its rate covers what it drained by then. Keeps `make bench` within its time budget.
    drain_cap: float = 5.0
    claim_batches: list = field(default_factory=lambda: [100, 1000])
    sweep_sinks: list = field(default_factory=lambda: ["sqlite"])
    drain_batches: list = field(default_factory=lambda: [1, 10, 100])    # the sweep, one driver
    drain_events: dict = field(default_factory=lambda: {1: 5_000, 10: 40_000, 100: 100_000, 1000: 200_000})
    sweep_cap: float = 1.5
    baseline_queue: int = 100_000   # the baseline drains the head of a queue this big ...
    baseline_events: int = 2_500    # ... for this many events (or drain_cap seconds)
    default_batch: int = 1000       # wlsync_driver.py's default --batch
    # consistent mode (issue 13): one driver, default batch, the headline queue, never capped
    # (a snapshot commits whole); compared with the headline one-driver case of the same round
    consistent_sinks: list = field(default_factory=lambda: ["sqlite", "postgresql", "mysql"])
    consistent_cap: float = 120.0
    # issue 12: two consumers draining the headline queue at once, one SQLite driver each
    drain_consumers: int = 1
    # 4. latency
    latency_seconds: float = 8.0
    latency_rate: float = 100.0
    latency_sweep: float = 1.0
    # 5./6. queue health and memory
    health_runs: int = 3             # drains per case: the windows of one drain wander by a third (bench/analysis.md)
    health_events: int = 1_000_000
    health_window: int = 100_000
    # server:case; server main (this one, autovacuum off) or logical (the throwaway, autovacuum on)
    health_cases: list = field(default_factory=lambda: ["main:plain", "main:long", "logical:long"])
    health_writer: int = 1             # a writer updating a tracked table during long-transaction drains
    health_timeout: float = 120.0      # per drain (slower than ~8k events/s for 1M): stopped, reported partial
    health_timeout_long: float = 120.0  # the same, with the long transaction held
    # 7. verify of an equal table, against COPY of it
    verify_rows: int = 1_000_000
    verify_sinks: list = field(default_factory=lambda: ["sqlite", "postgresql"])


def make_config(mode: str) -> Config:
    """The preset of `mode`, then BENCH_<FIELD> overrides (e.g. BENCH_RUNS=5,
    BENCH_DRAIN_SINKS=sqlite,postgresql,mysql,redis,nats,
    BENCH_OVERHEAD_VARIANTS=untracked,wlsync,floor,full_row,notify_every)."""
    cfg = preset(mode)
    for name, value in vars(cfg).items():
        text = os.environ.get(f"BENCH_{name.upper()}")
        if text is None or name == "mode":
            continue
        if isinstance(value, list):
            kind = type(value[0]) if value else str
            setattr(cfg, name, [kind(v) for v in text.split(",") if v])
        elif isinstance(value, (int, float)):
            setattr(cfg, name, type(value)(text))
        else:
            raise SystemExit(f"BENCH_{name.upper()} cannot be overridden")
    for sink in cfg.drain_sinks + cfg.sweep_sinks + cfg.verify_sinks:
        if sink not in SINK_MODULES:
            raise SystemExit(f"unknown sink {sink!r} in BENCH_DRAIN_SINKS/BENCH_SWEEP_SINKS/BENCH_VERIFY_SINKS: "
                             f"use {', '.join(SINK_MODULES)}")
    return cfg


def preset(mode: str) -> Config:
    if mode == "full":
        return Config(mode)
    if mode == "quick":  # BENCH_QUICK=1: every code path, small sizes, a few minutes
        return Config(mode, runs=2, overhead_clients=[1, 16], overhead_seconds=1, table_rows=20_000,
                      statement_cost_statements=5_000,
                      tpcb_scale=1, tpcb_seconds=2, tpcb_drain_timeout=30,
                      drain_queue=20_000, drain_cap=2.0, claim_batches=[1000], drain_batches=[1, 100],
                      drain_events={1: 400, 10: 2_000, 100: 10_000, 1000: 20_000}, sweep_cap=1.0,
                      baseline_queue=10_000, baseline_events=400,
                      latency_seconds=2, latency_sweep=0.5,
                      health_runs=1, health_events=20_000, health_window=5_000, health_timeout=15,
                      health_timeout_long=15, verify_rows=100_000)
    if mode == "smoke":  # tests/test_bench_smoke.py: one case of each kind, < 30 s, no throwaway cluster
        return Config(mode, runs=1, logical_cluster=0, overhead_modes=["update"], overhead_clients=[2],
                      overhead_variants=["untracked", "wlsync", "floor", "wlsync_c4"], overhead_seconds=1,
                      statement_cost_statements=500,
                      table_rows=2_000,
                      tpcb_scale=1, tpcb_clients=2, tpcb_seconds=1, tpcb_drivers=0,
                      drain_sinks=["sqlite", "postgresql"], drain_drivers=[1, 2], drain_queue=2_000, drain_cap=10,
                      claim_batches=[100], drain_batches=[100], drain_events={100: 1_000}, sweep_cap=10,
                      baseline_queue=2_000, baseline_events=100, default_batch=100,
                      latency_seconds=1.5, latency_sweep=0.5,
                      health_runs=1, health_events=4_000, health_window=1_000, health_cases=["main:plain", "main:long"],
                      health_timeout=20, health_timeout_long=20, verify_rows=5_000)
    raise SystemExit(f"unknown mode {mode!r}")


def dsn(dbname: str, port: int | None = None) -> str:
    """A database on this server (port None) or on the throwaway cluster (its port)."""
    if port is None or port == PORT:
        return f"postgresql://{USER}@{HOST}:{PORT}/{dbname}"
    return f"postgresql://postgres@{CLUSTER_HOST}:{port}/{dbname}"


def log(text: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {text}", flush=True)


def summary(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


# --------------------------------------------------------------------------- databases and servers

class Databases:
    """The bench's own databases on this server: MDB (drain, latency, health), pgbench's MDB
    (overhead), the TPC-B MDB, WL; plus the throwaway cluster when a section needs it."""

    def __init__(self, prefix: str):
        if not prefix.startswith("wlsync_bench_"):
            raise SystemExit("BENCH_DB_PREFIX must start with wlsync_bench_")
        self.prefix = prefix
        self.mdb, self.pgbench, self.tpcb, self.wl = prefix + "mdb", prefix + "pgbench", prefix + "tpcb", prefix + "wl"
        self.verify = prefix + "verify"  # the verify section's MDB: one tracked table
        self.admin = psycopg.connect(dsn("postgres"), autocommit=True)
        self.cluster = Throwaway(int(self.admin.execute("SHOW server_version_num").fetchone()[0]) // 10000)
        self.logical_mdb_ready = False
        self.sinks_used: set[str] = set()

    def recreate(self, name: str) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.execute(f'CREATE DATABASE "{name}"')

    def drop_all(self) -> None:
        for name in (self.mdb, self.pgbench, self.tpcb, self.wl, self.verify):
            try:
                self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error as exc:
                log(f"could not drop {name}: {exc}")
        for sink in self.sinks_used:
            if sink not in ("sqlite", "postgresql"):
                try:
                    drop_wl(sink, self)
                except Exception as exc:  # noqa: BLE001 - cleanup of an optional store
                    log(f"could not clean the {sink} WL: {exc}")
        self.admin.close()
        self.cluster.drop()


class Throwaway:
    """The throwaway cluster (pg_createcluster, wal_level=logical, autovacuum=on), made on first
    use and dropped at the end of the run. Its settings otherwise follow this server's defaults."""

    def __init__(self, version: int):
        self.version, self.port, self.up, self.error = str(version), CLUSTER_PORT, False, None

    def exists(self) -> bool:
        if shutil.which("pg_lsclusters") is None:
            return False
        out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
        return any(line.split()[:2] == [self.version, CLUSTER] for line in out.splitlines())

    def ensure(self) -> int:
        """The cluster's port, making the cluster first; RuntimeError (remembered) when it cannot be made."""
        if self.error:
            raise RuntimeError(self.error)
        if self.up:
            return self.port
        try:
            if shutil.which("pg_createcluster") is None:
                raise RuntimeError("pg_createcluster is not installed (postgresql-common)")
            self.drop()  # a leftover of an interrupted run
            log(f"creating the throwaway cluster {self.version}/{CLUSTER} on port {self.port} "
                "(wal_level=logical, autovacuum=on)")
            # PostgreSQL 15's initdb has no -c: settings go in through pg_createcluster's -o.
            proc = subprocess.run(["pg_createcluster", self.version, CLUSTER, "--port", str(self.port),
                                   "-o", "wal_level=logical", "-o", "autovacuum=on",
                                   "-o", "max_wal_senders=4",
                                   "--start", "--", "--auth=trust"], capture_output=True, text=True, timeout=180)
            self.up = True  # (partly) made: drop() removes it
            if proc.returncode != 0:
                raise RuntimeError(f"pg_createcluster failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
            deadline = time.monotonic() + 30
            while True:
                try:
                    psycopg.connect(dsn("postgres", self.port), connect_timeout=2).close()
                    break
                except psycopg.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            return self.port
        except Exception as exc:
            self.error = f"throwaway cluster unavailable: {exc}"
            raise RuntimeError(self.error) from exc

    def settings(self) -> dict:
        with psycopg.connect(dsn("postgres", self.port), autocommit=True) as conn:
            return {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("server_version", "shared_buffers", "synchronous_commit", "fsync", "wal_level",
                                 "max_wal_size", "autovacuum", "autovacuum_naptime")}

    def drop(self) -> None:
        if not (self.up or self.exists()):
            return
        proc = subprocess.run(["pg_dropcluster", "--stop", self.version, CLUSTER], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 and self.exists():
            log(f"pg_dropcluster {self.version} {CLUSTER} failed: {proc.stderr.strip()}")
        else:
            log(f"dropped the throwaway cluster {self.version}/{CLUSTER}")
        self.up = False


def recreate_on(port: int | None, name: str) -> None:
    with psycopg.connect(dsn("postgres", port), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def create_mdb(name: str, rows: int, big_rows: int = 0, port: int | None = None) -> None:
    """A migrated MDB with bench_rows (rows) and optionally bench_big (big_rows), untracked."""
    wlsync_migrate.migrate(dsn(name, port))
    with psycopg.connect(dsn(name, port), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_rows (id int PRIMARY KEY, counter int NOT NULL DEFAULT 0, "
                     "note text NOT NULL DEFAULT 'a modest text value')")
        conn.execute("INSERT INTO bench_rows (id) SELECT generate_series(1, %s)", [rows])
        if big_rows:
            conn.execute("CREATE TABLE bench_big (LIKE bench_rows INCLUDING ALL)")
            conn.execute("INSERT INTO bench_big (id) SELECT generate_series(1, %s)", [big_rows])
        conn.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------- 1. capture cost

OVERHEAD_SETUP = """
-- The floor: the least any in-transaction capture can cost. A bare PL/pgSQL AFTER row trigger
-- inserting one (int, bigint) row into an unindexed table; the same triggers and WHEN clause as
-- wlsync.track (INSERT; UPDATE WHEN (OLD *<> NEW)), nothing else.
CREATE TABLE floor_queue (table_id int, id bigint);
CREATE FUNCTION capture_floor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO floor_queue (table_id, id) VALUES (0, NEW.id);
    RETURN NULL;
END $$;
-- Experiments (BENCH_OVERHEAD_VARIANTS=...,notify_every,full_row).
CREATE TABLE notify_queue (table_id int, pk jsonb);
CREATE FUNCTION capture_key_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notify_queue (table_id, pk) VALUES (0, jsonb_build_object('id', NEW.id));
    PERFORM pg_notify('bench_every_change', '');
    RETURN NULL;
END $$;
-- The design issue 12 did not take: the capture function inserts one row per consumer (here 4,
-- each like wlsync's own row) instead of one row that a fan-out copies later, off the writer's path.
CREATE TABLE per_consumer_queue_1 (table_id int, pk jsonb, enqueued_at timestamptz DEFAULT now());
CREATE TABLE per_consumer_queue_2 (LIKE per_consumer_queue_1 INCLUDING DEFAULTS);
CREATE TABLE per_consumer_queue_3 (LIKE per_consumer_queue_1 INCLUDING DEFAULTS);
CREATE TABLE per_consumer_queue_4 (LIKE per_consumer_queue_1 INCLUDING DEFAULTS);
CREATE FUNCTION capture_per_consumer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO per_consumer_queue_1 (table_id, pk) VALUES (0, jsonb_build_object('id', NEW.id));
    INSERT INTO per_consumer_queue_2 (table_id, pk) VALUES (0, jsonb_build_object('id', NEW.id));
    INSERT INTO per_consumer_queue_3 (table_id, pk) VALUES (0, jsonb_build_object('id', NEW.id));
    INSERT INTO per_consumer_queue_4 (table_id, pk) VALUES (0, jsonb_build_object('id', NEW.id));
    RETURN NULL;
END $$;
CREATE TABLE full_row_queue (event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, table_name text,
                             row_data jsonb, op text);
CREATE FUNCTION capture_full_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO full_row_queue (table_name, row_data, op) VALUES (TG_TABLE_NAME, to_jsonb(NEW), TG_OP);
    RETURN NULL;
END $$;
"""

PGBENCH_SCRIPTS = {
    "update": "\\set id random(1, {rows})\nUPDATE bench_rows SET counter = counter + 1 WHERE id = :id;\n",
    # new keys above the pre-loaded ones: every transaction inserts one row
    "insert": "\\set id random({above}, 2000000000)\nINSERT INTO bench_rows (id) VALUES (:id) ON CONFLICT DO NOTHING;\n",
}
BENCH_TRIGGERS = ("floor_insert", "floor_update", "key_notify", "full_row", "per_consumer_insert",
                  "per_consumer_update")
PER_CONSUMER_QUEUES = tuple(f"per_consumer_queue_{n}" for n in range(1, 5))
# wlsync with N consumers of the table: the writer's path is the same one INSERT (issue 12).
CONSUMER_VARIANTS = {"wlsync_c2": 2, "wlsync_c4": 4}
SLOT, PUBLICATION = "wlsync_bench_slot", "wlsync_bench_pub"


def create_floor_triggers(conn: psycopg.Connection, table: str, function: str) -> None:
    """The floor's triggers on `table`, as wlsync.track installs its own: on INSERT, and on
    UPDATE WHEN (OLD *<> NEW); `function` inserts the row's (table, key)."""
    conn.execute(f"CREATE TRIGGER floor_insert AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()")
    conn.execute(f"CREATE TRIGGER floor_update AFTER UPDATE ON {table} "
                 f"FOR EACH ROW WHEN (OLD *<> NEW) EXECUTE FUNCTION {function}()")


def overhead_variant(conn: psycopg.Connection, variant: str, rows: int) -> None:
    for trigger in BENCH_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger} ON bench_rows")
    conn.execute("SELECT wlsync.untrack('bench_rows') FROM wlsync.tracked_table WHERE relid = 'bench_rows'::regclass")
    # Same starting point for every variant: the rows an INSERT run added are gone,
    # empty queues, vacuumed table, clean checkpoint.
    conn.execute("DELETE FROM bench_rows WHERE id > %s", [rows])
    conn.execute("SELECT wlsync.remove_consumer(name) FROM wlsync.consumer WHERE name <> 'default'")
    truncate_queues(conn, "floor_queue", "notify_queue", "full_row_queue", *PER_CONSUMER_QUEUES)
    conn.execute("VACUUM bench_rows")
    conn.execute("CHECKPOINT")
    if variant == "wlsync":
        conn.execute("SELECT wlsync.track('bench_rows')")
    elif variant in CONSUMER_VARIANTS:
        conn.execute("SELECT wlsync.track('bench_rows')")
        for n in range(2, CONSUMER_VARIANTS[variant] + 1):
            conn.execute("SELECT wlsync.add_consumer(%s, ARRAY['bench_rows']::regclass[])", [f"bench{n}"])
    elif variant == "per_consumer_4":
        conn.execute("CREATE TRIGGER per_consumer_insert AFTER INSERT ON bench_rows "
                     "FOR EACH ROW EXECUTE FUNCTION capture_per_consumer()")
        conn.execute("CREATE TRIGGER per_consumer_update AFTER UPDATE ON bench_rows "
                     "FOR EACH ROW WHEN (OLD *<> NEW) EXECUTE FUNCTION capture_per_consumer()")
    elif variant == "floor":
        create_floor_triggers(conn, "bench_rows", "capture_floor")
    elif variant == "notify_every":
        conn.execute("CREATE TRIGGER key_notify AFTER INSERT OR UPDATE ON bench_rows "
                     "FOR EACH ROW EXECUTE FUNCTION capture_key_notify()")
    elif variant == "full_row":
        conn.execute("CREATE TRIGGER full_row AFTER INSERT OR UPDATE ON bench_rows "
                     "FOR EACH ROW EXECUTE FUNCTION capture_full_row()")
    elif variant not in ("untracked", "slot"):
        raise SystemExit(f"unknown overhead variant {variant!r}")


def pgbench(db: str, script: Path | None, clients: int, seconds: float, port: int | None = None) -> float:
    """TPS of one pgbench run: `script`, or the built-in TPC-B-like script when None (-n: the
    caller vacuums)."""
    host, user = (HOST, USER) if port is None or port == PORT else (CLUSTER_HOST, "postgres")
    command = ["pgbench", "-h", host, "-p", str(port or PORT), "-U", user, "-n",
               "-c", str(clients), "-j", str(clients), "-T", str(seconds)]
    command += ["-f", str(script)] if script else ["-b", "tpcb-like"]
    out = subprocess.run(command + [db], capture_output=True, text=True, timeout=seconds + 120)
    match = re.search(r"^tps = ([0-9.]+)", out.stdout, re.M)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed: {out.stderr.strip()[-500:]}")
    return float(match.group(1))


class LogicalSlot:
    """A live logical replication slot on `db`: pgoutput with the publication on bench_rows,
    consumed by pg_recvlogical (a subprocess writing to /dev/null, status every second)."""

    def __init__(self, conn: psycopg.Connection, db: str, port: int, out: Path):
        self.conn, self.db, self.port, self.out = conn, db, port, out
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [SLOT])
        with open(self.out / "pg_recvlogical.log", "a") as log_file:
            self.proc = subprocess.Popen(
                ["pg_recvlogical", "-h", CLUSTER_HOST, "-p", str(self.port), "-U", "postgres", "-d", self.db,
                 "--slot", SLOT, "--start", "-o", "proto_version=1", "-o", f"publication_names={PUBLICATION}",
                 "-f", "/dev/null", "-s", "1", "-F", "1", "--no-loop"], stdout=log_file, stderr=subprocess.STDOUT)
        STARTED.append(self.proc)
        deadline = time.monotonic() + 15
        while not self.conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                    [SLOT]).fetchone()[0]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pg_recvlogical did not start, see {self.out}/pg_recvlogical.log")
            time.sleep(0.05)

    def stop(self) -> dict:
        """After the load: how far behind the consumer was, and how long it took to catch up."""
        end_lsn = self.conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        lag = self.conn.execute("SELECT pg_wal_lsn_diff(%s, confirmed_flush_lsn) FROM pg_replication_slots "
                                "WHERE slot_name = %s", [end_lsn, SLOT]).fetchone()[0]
        began = time.monotonic()
        caught_up = None
        while time.monotonic() - began < 30 and self.proc.poll() is None:
            if self.conn.execute("SELECT confirmed_flush_lsn >= %s FROM pg_replication_slots WHERE slot_name = %s",
                                 [end_lsn, SLOT]).fetchone()[0]:
                caught_up = time.monotonic() - began
                break
            time.sleep(0.05)
        self.close()
        return {"slot_lag_bytes": float(lag), "slot_catchup_s": caught_up}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        for _ in range(100):
            try:
                self.conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                  "WHERE slot_name = %s", [SLOT])
                return
            except psycopg.errors.ObjectInUse:
                time.sleep(0.1)


# One statement per loop turn, each on its own row: 7919 is prime to any table_rows of 2^a 5^b,
# so (i * 7919) % rows walks every row once before it repeats one.
STATEMENT_COST_LOOPS = {
    "update": "UPDATE bench_rows SET counter = counter + 1 WHERE id = (i * 7919) % {rows} + 1",
    "insert": "INSERT INTO bench_rows (id) VALUES ({rows} + i)",
}
STATEMENT_COST_VARIANTS = ("untracked", "floor", "wlsync")


def statement_cost(conn: psycopg.Connection, mode: str, variant: str, rows: int, statements: int) -> float:
    """Microseconds per single-row statement of `statements` run by one session in one DO block,
    with `variant`'s capture: its CPU cost without pgbench's client, network or contention."""
    overhead_variant(conn, variant, rows)
    loop = STATEMENT_COST_LOOPS[mode].format(rows=rows)
    started = time.perf_counter()
    conn.execute(f"DO $$ BEGIN FOR i IN 1..{statements} LOOP {loop}; END LOOP; END $$")
    return (time.perf_counter() - started) / statements * 1e6


def statement_costs(cfg: Config, conn: psycopg.Connection) -> list[dict]:
    """statement_cost of each mode and variant, rounds interleaved; the triggers' cost (the
    variant's microseconds minus untracked's) and wlsync's above the floor's, within each round."""
    raw = []
    for run in range(1, cfg.runs + 1):
        for mode in cfg.overhead_modes:
            for variant in STATEMENT_COST_VARIANTS:
                us = statement_cost(conn, mode, variant, cfg.table_rows, cfg.statement_cost_statements)
                raw.append({"mode": mode, "variant": variant, "run": run, "us": us})
                log(f"statement cost {mode} run {run} {variant}: {us:.2f} us per statement")
    results = []
    for mode in cfg.overhead_modes:
        us = {v: {r["run"]: r["us"] for r in raw if (r["mode"], r["variant"]) == (mode, v)}
              for v in STATEMENT_COST_VARIANTS}
        runs = sorted(us["untracked"])
        entry = {"mode": mode, **{v: summary(list(us[v].values())) for v in STATEMENT_COST_VARIANTS}}
        for v in ("floor", "wlsync"):
            entry[f"{v}_trigger"] = summary([us[v][r] - us["untracked"][r] for r in runs])
        entry["wlsync_above_floor"] = summary([us["wlsync"][r] - us["floor"][r] for r in runs])
        results.append(entry)
    return results


def section_overhead(cfg: Config, dbs: Databases, out: Path) -> dict:
    servers: list[tuple[str, int | None, list]] = [("main", None, cfg.overhead_variants)]
    skipped = None
    if cfg.logical_cluster and cfg.overhead_logical_variants:
        try:
            servers.append(("logical", dbs.cluster.ensure(), cfg.overhead_logical_variants))
        except RuntimeError as exc:
            skipped = str(exc)
            log(f"overhead: logical-cluster variants skipped: {exc}")
    conns = {}
    try:
        for server, port, variants in servers:
            recreate_on(port, dbs.pgbench)
            create_mdb(dbs.pgbench, cfg.table_rows, port=port)
            conn = conns[server] = psycopg.connect(dsn(dbs.pgbench, port), autocommit=True)
            conn.execute(OVERHEAD_SETUP)
            if "slot" in variants:
                conn.execute(f"CREATE PUBLICATION {PUBLICATION} FOR TABLE bench_rows")
        raw = []
        for mode in cfg.overhead_modes:
            script = out / f"pgbench_{mode}.sql"
            script.write_text(PGBENCH_SCRIPTS[mode].format(rows=cfg.table_rows, above=cfg.table_rows + 1))
            for clients in cfg.overhead_clients:
                for run in range(1, cfg.runs + 1):
                    for server, port, variants in servers:
                        for variant in variants:
                            conn = conns[server]
                            overhead_variant(conn, variant, cfg.table_rows)
                            slot = None
                            if variant == "slot":
                                slot = LogicalSlot(conn, dbs.pgbench, port, out)
                                slot.start()
                            try:
                                tps = pgbench(dbs.pgbench, script, clients, cfg.overhead_seconds, port)
                                extra = slot.stop() if slot else {}
                            finally:
                                if slot:
                                    slot.close()
                            raw.append({"server": server, "mode": mode, "clients": clients, "run": run,
                                        "variant": variant, "tps": tps, **extra})
                            note = (f" (slot: {extra['slot_lag_bytes'] / 1024:,.0f} kB behind at the end, caught up "
                                    f"in {'>30' if extra['slot_catchup_s'] is None else round(extra['slot_catchup_s'], 1)} s)"
                                    if extra else "")
                            log(f"overhead {server} {mode} c={clients} run {run} {variant}: {tps:,.0f} tps{note}")
        costs = statement_costs(cfg, conns["main"]) if cfg.statement_cost_statements else []
        for server, _port, _variants in servers:
            overhead_variant(conns[server], "untracked", cfg.table_rows)
    finally:
        for conn in conns.values():
            conn.close()
    results = []
    for server, _port, variants in servers:
        for mode in cfg.overhead_modes:
            for clients in cfg.overhead_clients:
                cases = [r for r in raw if (r["server"], r["mode"], r["clients"]) == (server, mode, clients)]
                by_run = {v: {r["run"]: r["tps"] for r in cases if r["variant"] == v} for v in variants}
                base = by_run.get("untracked", {})

                def pct(v: str, run: int) -> float | None:
                    if run not in base or run not in by_run.get(v, {}):
                        return None
                    return 100 * (1 - by_run[v][run] / base[run])
                for variant in variants:
                    mine = [r for r in cases if r["variant"] == variant]
                    entry = {"server": server, "mode": mode, "clients": clients, "variant": variant,
                             "tps": summary([r["tps"] for r in mine])}
                    if variant != "untracked" and base:
                        # points of overhead within each round (same run, interleaved), then summarised
                        entry["overhead_pct"] = summary([pct(variant, r["run"]) for r in mine])
                        for anchor in ("floor", "slot", "wlsync"):
                            if anchor in variants and variant != anchor:
                                entry[f"pts_vs_{anchor}"] = summary(
                                    [pct(variant, r["run"]) - pct(anchor, r["run"]) for r in mine
                                     if pct(anchor, r["run"]) is not None])
                    if variant == "slot":
                        entry["slot_lag_kb"] = summary([r["slot_lag_bytes"] / 1024 for r in mine])
                        entry["slot_catchup_s"] = summary([r["slot_catchup_s"] for r in mine])
                        entry["slot_not_caught_up"] = sum(r["slot_catchup_s"] is None for r in mine)
                    results.append(entry)
    return {"seconds": cfg.overhead_seconds, "rows": cfg.table_rows, "servers": [s[0] for s in servers],
            "logical_skipped": skipped,
            "logical_settings": dbs.cluster.settings() if len(servers) > 1 else None,
            "raw": raw, "results": results,
            "statement_cost": {"statements": cfg.statement_cost_statements, "results": costs}}


# --------------------------------------------------------------------------- queue helpers

def key_expr(conn: psycopg.Connection, table: str) -> str:
    """wlsync's own key spelling for `table` (alias t), as the capture trigger writes it."""
    return conn.execute("SELECT wlsync._key_json_sql(%s::regclass, t.pk_columns, 't') FROM wlsync.tracked_table t "
                        "WHERE t.relid = %s::regclass", [table, table]).fetchone()[0]


def prefill(conn: psycopg.Connection, table: str, keys: int, per_key: int = 1) -> int:
    """Empty the queue, then enqueue `per_key` events for each of the keys 1..keys.

    Events of one key are `keys` apart (all keys once, then all keys again). Returns the
    number of events."""
    table_id = conn.execute("SELECT table_id FROM wlsync.tracked_table WHERE relid = %s::regclass",
                            [table]).fetchone()[0]
    truncate_queues(conn)
    current = current_queue(conn)
    conn.execute(f"INSERT INTO {current} (table_id, pk) SELECT {table_id}, {key_expr(conn, table)} "
                 f"FROM generate_series(1, {per_key}) AS g, {table} AS t WHERE t.id <= {keys} ORDER BY g, t.id")
    conn.execute(f"VACUUM ANALYZE {current}")
    return queue_count(conn)


# The writers' queue ring (migrations/0012.queue-v2.sql); wlsync.queue is a view over it and
# over every consumer's ring (migrations/0019.consumers.sql), which truncate_queues empties too.
QUEUE_TABLES = "wlsync.queue_0, wlsync.queue_1, wlsync.queue_2"


def truncate_queues(conn: psycopg.Connection, *others: str) -> None:
    """TRUNCATE every ring slot (the writers' and each consumer's), and `others`."""
    rings = conn.execute("SELECT string_agg(format('wlsync.%I', wlsync._slot_table(ring, slot)), ', ') "
                         "FROM wlsync.queue_slot").fetchone()[0]
    conn.execute(f"TRUNCATE {', '.join([rings, *others])}")
QUEUE_OIDS = "ARRAY['wlsync.queue_0'::regclass, 'wlsync.queue_1'::regclass, 'wlsync.queue_2'::regclass]::oid[]"
QUEUE_STATS = ("SELECT sum(pg_total_relation_size(relid)), sum(pg_relation_size(relid)), sum(n_dead_tup), "
               "sum(autovacuum_count), sum(n_live_tup) FROM pg_stat_user_tables WHERE relid = ANY (" + QUEUE_OIDS + ")")


def queue_stats(conn: psycopg.Connection) -> list:
    """QUEUE_STATS as numbers (sum() returns numeric)."""
    return [None if v is None else int(v) for v in conn.execute(QUEUE_STATS).fetchone()]


def current_queue(conn: psycopg.Connection) -> str:
    """The ring slot capture functions insert into now."""
    return conn.execute("SELECT format('wlsync.%I', 'queue_' || slot) FROM wlsync.queue_slot "
                        "WHERE ring = 0 AND state = 'current'").fetchone()[0]


def queue_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0]


# --------------------------------------------------------------------------- WL targets, one per sink

def nats_name(prefix: str) -> str:
    """wlsyncbench for the default prefix, wlsyncbench-bv for wlsync_bench_bv_ (NATS: letters, digits, -)."""
    rest = re.sub(r"[^A-Za-z0-9]+", "-", prefix[len("wlsync_bench_"):]).strip("-")
    return "wlsyncbench" + (f"-{rest}" if rest else "")


def wl_base_url(sink: str, dbs: Databases, out: Path, name: str) -> str:
    if sink == "sqlite":
        return f"sqlite:///{out / name}.db"
    if sink == "postgresql":
        return dsn(dbs.wl)
    if sink == "mysql":
        return f"{MYSQL_SERVER}/{dbs.wl}"
    if sink == "redis":
        return f"{REDIS_SERVER}?prefix={dbs.prefix}"
    return f"{NATS_SERVER}/{nats_name(dbs.prefix)}"


def reset_wl(sink: str, dbs: Databases, target: str) -> None:
    """Make the WL of `target` empty (the bench's own database, key prefix or bucket prefix)."""
    if sink == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(target[len("sqlite:///"):] + suffix).unlink(missing_ok=True)
    elif sink == "postgresql":
        if not dbs.admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbs.wl]).fetchone():
            dbs.recreate(dbs.wl)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    else:
        dbs.sinks_used.add(sink)
        drop_wl(sink, dbs, recreate=True)


def drop_wl(sink: str, dbs: Databases, recreate: bool = False) -> None:
    if sink == "mysql":
        import pymysql
        parts = urlsplit(MYSQL_SERVER)
        conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                               password=parts.password or "", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{dbs.wl}`")
                if recreate:
                    cur.execute(f"CREATE DATABASE `{dbs.wl}` CHARACTER SET utf8mb4")
        finally:
            conn.close()
    elif sink == "redis":
        import redis
        client = redis.Redis.from_url(REDIS_SERVER)
        try:
            keys = list(client.scan_iter(match=dbs.prefix + "*", count=1000))  # the prefix has no glob characters
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start:start + 1000])
        finally:
            client.close()
    elif sink == "nats":
        name = nats_name(dbs.prefix)

        async def drop() -> None:
            import nats
            nc = await nats.connect(NATS_SERVER, connect_timeout=3, max_reconnect_attempts=0)
            try:
                js = nc.jetstream()
                for stream in await js.streams_info():
                    if stream.config.name.startswith((f"KV_{name}_", f"KV_{name}-wlsync")):
                        await js.delete_stream(stream.config.name)
            finally:
                await nc.close()
        asyncio.run(drop())


def mdb_tables(mdb_dsn: str) -> dict:
    with psycopg.connect(mdb_dsn) as mdb:
        return tables_from_rows(mdb.execute("SELECT * FROM wlsync.tracked_columns()").fetchall())


def target_url(sink: str, dbs: Databases, out: Path, name: str, mdb_dsn: str | None = None) -> str:
    """A fresh, empty WL for one case, its tables already created (as the driver's sink would
    create them) so that drivers starting together do not race to create them."""
    target = wl_base_url(sink, dbs, out, name)
    reset_wl(sink, dbs, target)
    wl = open_sink(target)
    try:
        wl.ensure_tables(mdb_tables(mdb_dsn or dsn(dbs.mdb)))
    finally:
        wl.close()
    return target


def sink_unavailable(sink: str, dbs: Databases, out: Path) -> str | None:
    """Why `sink` cannot be benchmarked here (None: it can): a sink module not merged yet, its
    client library missing, its server down."""
    module = SINK_MODULES[sink]
    if importlib.util.find_spec(f"wlsync_sinks.{module}") is None:
        return f"wlsync_sinks/{module}.py is not in this checkout"
    target = wl_base_url(sink, dbs, out, f"probe_{sink}")
    try:
        reset_wl(sink, dbs, target)
        wl = open_sink(target)
        try:
            wl.max_version()
        finally:
            wl.close()
    except Exception as exc:  # noqa: BLE001 - any failure makes the sink a skipped one, with its reason
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]
    return None


def available_sinks(sinks: list[str], dbs: Databases, out: Path, section: str) -> tuple[list[str], dict]:
    ok, skipped = [], {}
    for sink in dict.fromkeys(sinks):
        reason = sink_unavailable(sink, dbs, out)
        if reason:
            skipped[sink] = reason
            log(f"{section}: sink {sink} skipped: {reason}")
        else:
            ok.append(sink)
    return ok, skipped


def wl_count(target: str, table: str, mdb_dsn: str | None = None) -> int:
    if target.startswith("sqlite:///"):
        db = sqlite3.connect(target[len("sqlite:///"):])
        try:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            db.close()
    if urlsplit(target).scheme in ("postgresql", "postgres"):
        with psycopg.connect(target) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    # Any other sink: through its own key listing (what verify uses).
    tables = {t.name: t for t in mdb_tables(mdb_dsn).values()}
    wl = open_sink(target)
    try:
        return sum(len(chunk) for chunk in wl.keys(tables[table], 10_000))
    finally:
        wl.close()


SYNCED = re.compile(r"synced (\d+) events \((\d+) keys\) in ([0-9.]+) ms")


def parse_driver_log(path: Path, table: str | None = None) -> list[tuple[float, float, int, int]]:
    """(start, end, events, keys) of every batch a driver logged (--log-json), in epoch seconds.
    With `table` (e.g. public.bench_big): only that table's keys (events = keys: one event per key)."""
    batches = []
    for line in path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        match = SYNCED.match(entry.get("msg", ""))
        if match:
            end = datetime.fromisoformat(entry["ts"]).timestamp()
            events, keys = int(match.group(1)), int(match.group(2))
            if table is not None:
                events = keys = entry.get("tables", {}).get(table, 0)
            batches.append((end - float(match.group(3)) / 1000, end, events, keys))
    return batches


STARTED: list[subprocess.Popen] = []  # every process this run started, killed at exit if still running


def start_driver(source: str, target: str, log_path: Path, *args: str) -> subprocess.Popen:
    log_file = open(log_path, "w")
    try:
        STARTED.append(subprocess.Popen([PY, str(DRIVER), "--log-json", "run", "--source", source, "--target", target, *args],
                                        stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT))
        return STARTED[-1]
    finally:
        log_file.close()


def wait_all(procs: list[subprocess.Popen], cap: float) -> bool:
    """Wait for the drivers; past `cap` seconds, SIGTERM them (they finish the batch in
    hand and exit 0). Returns whether they had to be stopped."""
    deadline = time.monotonic() + cap
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.01)
    capped = any(p.poll() is None for p in procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=120)
    return capped


# --------------------------------------------------------------------------- 1b. a real client: TPC-B

TPCB_KEYS = {"pgbench_accounts": "aid", "pgbench_tellers": "tid", "pgbench_branches": "bid"}  # tracked, with their keys
TPCB_TABLES = tuple(TPCB_KEYS)


# The floor of section 1 on each TPC-B table: a bare row trigger function inserting (table, key)
# into an unindexed table (its triggers: create_floor_triggers).
TPCB_FLOOR_SETUP = "CREATE TABLE IF NOT EXISTS tpcb_floor_queue (table_id int, id bigint);\n" + "".join(
    f"""CREATE OR REPLACE FUNCTION {table}_floor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tpcb_floor_queue (table_id, id) VALUES ({n}, NEW.{key});
    RETURN NULL;
END $$;
""" for n, (table, key) in enumerate(TPCB_KEYS.items(), start=1))


def tpcb_reset(conn: psycopg.Connection, variant: str) -> None:
    """What pgbench does before a run without -n, plus empty queues and a checkpoint; then
    `variant`'s capture: none (untracked), the floor's triggers, or wlsync.track."""
    for table in TPCB_TABLES:
        conn.execute("SELECT wlsync.untrack(%s) FROM wlsync.tracked_table WHERE relid = %s::regclass", [table, table])
        conn.execute(f"DROP TRIGGER IF EXISTS floor_insert ON {table}")
        conn.execute(f"DROP TRIGGER IF EXISTS floor_update ON {table}")
    truncate_queues(conn, "pgbench_history", "tpcb_floor_queue")
    conn.execute("VACUUM pgbench_branches")
    conn.execute("VACUUM pgbench_tellers")
    conn.execute("CHECKPOINT")
    for table in TPCB_TABLES:
        if variant == "floor":
            create_floor_triggers(conn, table, f"{table}_floor")
        elif variant != "untracked":
            conn.execute("SELECT wlsync.track(%s)", [table])


def wait_for_drivers(conn: psycopg.Connection, count: int, timeout: float = 20) -> None:
    """Until `count` drivers hold their claim connection to this database."""
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = 'wlsync_driver'").fetchone()[0] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} drivers did not connect within {timeout:.0f} s")
        time.sleep(0.05)


def tpcb_check(conn: psycopg.Connection, target: str) -> bool | None:
    """WL (empty at the round's start) holds MDB's balance for every account it has, and has
    every account whose balance changed in the round (tpcb_before: the balances at its start;
    an UPDATE that changes nothing, a delta of 0, makes no event). None for a sink read
    through other means."""
    if target.startswith("sqlite:///"):
        db = sqlite3.connect(target[len("sqlite:///"):])
        try:
            got = dict(db.execute("SELECT CAST(aid AS INTEGER), CAST(abalance AS INTEGER) "
                                  "FROM pgbench_accounts").fetchall())
        finally:
            db.close()
    elif urlsplit(target).scheme in ("postgresql", "postgres"):
        with psycopg.connect(target) as wl:
            got = dict(wl.execute("SELECT aid, abalance FROM pgbench_accounts").fetchall())
    else:
        return None
    mdb = dict(conn.execute("SELECT aid, abalance FROM pgbench_accounts WHERE aid = ANY(%s)", [list(got)]).fetchall())
    changed = dict(conn.execute("SELECT a.aid, a.abalance FROM pgbench_accounts AS a JOIN tpcb_before AS b "
                                "USING (aid) WHERE a.abalance <> b.abalance").fetchall())
    return got == mdb and all(got.get(aid) == balance for aid, balance in changed.items())


def section_tpcb(cfg: Config, dbs: Databases, out: Path) -> dict:
    dbs.recreate(dbs.tpcb)
    wlsync_migrate.migrate(dsn(dbs.tpcb))
    init = subprocess.run(["pgbench", "-h", HOST, "-p", str(PORT), "-U", USER, "-i", "-q", "-s", str(cfg.tpcb_scale),
                           dbs.tpcb], capture_output=True, text=True, timeout=600)
    if init.returncode != 0:
        raise RuntimeError(f"pgbench -i failed: {init.stderr.strip()[-500:]}")
    sinks, skipped = (available_sinks(cfg.drain_sinks, dbs, out, "tpcb") if cfg.tpcb_drivers else ([], {}))
    variants = ["untracked", "floor", "capture"] + [f"drivers:{sink}" for sink in sinks]
    raw = []
    with psycopg.connect(dsn(dbs.tpcb), autocommit=True) as conn:
        conn.execute(TPCB_FLOOR_SETUP)
        conn.execute("VACUUM ANALYZE")
        for run in range(1, cfg.runs + 1):
            for variant in variants:
                tpcb_reset(conn, variant)
                procs, entry = [], {"variant": variant, "run": run}
                sink = variant.split(":", 1)[1] if variant.startswith("drivers:") else None
                if sink:
                    name = f"tpcb_{sink}_r{run}"
                    target = target_url(sink, dbs, out, name, dsn(dbs.tpcb))
                    procs = [start_driver(dsn(dbs.tpcb), target, out / f"{name}_{i}.log", "--sweep-interval", "1")
                             for i in range(cfg.tpcb_drivers)]
                    wait_for_drivers(conn, cfg.tpcb_drivers)
                if sink:
                    conn.execute("DROP TABLE IF EXISTS tpcb_before")
                    conn.execute("CREATE TEMP TABLE tpcb_before AS SELECT aid, abalance FROM pgbench_accounts")
                entry["tps"] = pgbench(dbs.tpcb, None, cfg.tpcb_clients, cfg.tpcb_seconds)
                entry["queued_after"] = queue_count(conn)
                if sink:
                    # The backlog left when the load stops must drain; then the drivers stop on SIGTERM.
                    began = time.monotonic()
                    while queue_count(conn) and time.monotonic() - began < cfg.tpcb_drain_timeout:
                        time.sleep(0.1)
                    left = queue_count(conn)
                    entry["drain_after_s"] = time.monotonic() - began if not left else None
                    entry["left_after_timeout"] = left
                    for p in procs:
                        p.send_signal(signal.SIGTERM)
                    entry["driver_exit_codes"] = [p.wait(timeout=60) for p in procs]
                    entry["synced"] = sum(b[2] for i in range(len(procs))
                                          for b in parse_driver_log(out / f"{name}_{i}.log"))
                    entry["wl_matches"] = tpcb_check(conn, target) if not left else False
                log(f"tpcb run {run} {variant}: {entry['tps']:,.0f} tps, {entry['queued_after']:,} events queued at "
                    "the end" + (f"; drained {entry.get('drain_after_s') or 0:.1f} s later ({left} left), "
                                 f"drivers exit {entry['driver_exit_codes']}, WL matches MDB: {entry['wl_matches']}"
                                 if sink else ""))
                raw.append(entry)
        tpcb_reset(conn, "untracked")
    results = []
    base = {r["run"]: r["tps"] for r in raw if r["variant"] == "untracked"}
    for variant in variants:
        mine = [r for r in raw if r["variant"] == variant]
        entry = {"variant": variant, "tps": summary([r["tps"] for r in mine]),
                 "pct_of_untracked": summary([100 * r["tps"] / base[r["run"]] for r in mine if r["run"] in base]),
                 "queued_after": summary([r["queued_after"] for r in mine])}
        if variant.startswith("drivers:"):
            entry.update({"drain_after_s": summary([r["drain_after_s"] for r in mine]),
                          "not_drained_runs": sum(r["drain_after_s"] is None for r in mine),
                          "driver_failures": sum(any(c != 0 for c in r["driver_exit_codes"]) for r in mine),
                          "wl_checked": sum(r["wl_matches"] is not None for r in mine),
                          "wl_mismatches": sum(r["wl_matches"] is False for r in mine)})
        results.append(entry)
    return {"scale": cfg.tpcb_scale, "clients": cfg.tpcb_clients, "seconds": cfg.tpcb_seconds,
            "drivers": cfg.tpcb_drivers, "skipped_sinks": skipped, "results": results, "raw": raw}


# --------------------------------------------------------------------------- 2./3. drain

def drain_with_drivers(cfg: Config, dbs: Databases, out: Path, conn, sink: str, drivers: int, batch: int,
                       run: int, events: int, cap: float, case: str, *driver_args: str) -> dict:
    """`drivers` drivers started together on a queue of `events` events, one per key of bench_big."""
    queued = prefill(conn, "bench_big", events, 1)
    name = f"drain_{case}_{sink}_d{drivers}_b{batch}_r{run}"
    target = target_url(sink, dbs, out, name)
    started = time.time()
    procs = [start_driver(dsn(dbs.mdb), target, out / f"{name}_{i}.log", "--once", "--batch", str(batch),
                          *driver_args) for i in range(drivers)]
    capped = wait_all(procs, cap)
    wall = time.time() - started
    # A stopped driver that logged its clean stop and was then ended by the signal
    # during interpreter shutdown (-SIGTERM) stopped cleanly all the same.
    codes = [0 if p.returncode == -signal.SIGTERM and capped and "stopped after syncing" in
             (out / f"{name}_{i}.log").read_text() else p.returncode for i, p in enumerate(procs)]
    if any(codes):
        raise RuntimeError(f"{name}: driver exit codes {codes}, see {out}/{name}_*.log")
    left = queue_count(conn)
    batches = [b for i in range(drivers) for b in parse_driver_log(out / f"{name}_{i}.log")]
    synced, keys = sum(b[2] for b in batches), sum(b[3] for b in batches)
    if synced + left != queued or (left and not capped) or (
            not capped and wl_count(target, "bench_big", dsn(dbs.mdb)) != queued):
        raise RuntimeError(f"{name}: {queued} queued, {synced} synced, {left} left in the queue")
    # From the first claim's start to the last commit: process start-up and connecting excluded.
    elapsed = max(b[1] for b in batches) - min(b[0] for b in batches)
    rate = synced / elapsed
    log(f"drain {case} {sink} drivers={drivers} batch={batch} run {run}: {synced}/{queued} events in {elapsed:.2f} s "
        f"= {rate:,.0f} events/s (wall incl. start-up {wall:.2f} s){' CAPPED' if capped else ''}")
    rss = [float(m) for i in range(drivers)
           for m in re.findall(r'"peak_rss_mb": ([0-9.]+)', (out / f"{name}_{i}.log").read_text())]
    return {"case": case, "sink": sink, "drivers": drivers, "batch": batch, "run": run, "events": queued,
            "synced": synced, "capped": capped, "seconds": elapsed, "wall_seconds": wall, "events_per_s": rate,
            "keys_per_s": keys / elapsed, "commits": len(batches), "peak_rss_mb": max(rss, default=None)}


def drain_two_consumers(cfg: Config, dbs: Databases, out: Path, conn, run: int) -> list[dict]:
    """Issue 12: the default consumer and a second one (both on bench_big) drain the same
    prefilled queue at once, one driver each, into a SQLite file each: per consumer, events/s
    from its first claim to its last commit. Every event is fanned out to both."""
    conn.execute("SELECT wlsync.add_consumer('bench2', ARRAY['bench_big']::regclass[])")
    # Its backfill pass would enqueue every row of bench_big for it: this case measures the
    # queue alone, so the pass is marked complete.
    conn.execute("UPDATE wlsync.backfill_state SET completed_at = now() "
                 "WHERE consumer_id = (SELECT consumer_id FROM wlsync.consumer WHERE name = 'bench2')")
    try:
        queued = prefill(conn, "bench_big", cfg.drain_queue, 1)
        procs, names = [], []
        for consumer in ("default", "bench2"):
            name = f"drain_consumers_{consumer}_r{run}"
            target = target_url("sqlite", dbs, out, name)
            procs.append(start_driver(dsn(dbs.mdb), target, out / f"{name}.log", "--once", "--consumer", consumer))
            names.append((consumer, name, target))
        capped = wait_all(procs, cfg.consistent_cap)
        results = []
        for (consumer, name, target), proc in zip(names, procs, strict=True):
            batches = parse_driver_log(out / f"{name}.log")
            synced = sum(b[2] for b in batches)
            if proc.returncode or (not capped and (synced != queued or wl_count(target, "bench_big") != queued)):
                raise RuntimeError(f"{name}: exit {proc.returncode}, {queued} queued, {synced} synced, see {out}")
            elapsed = max(b[1] for b in batches) - min(b[0] for b in batches)
            log(f"drain two consumers run {run}, {consumer}: {synced}/{queued} events in {elapsed:.2f} s = "
                f"{synced / elapsed:,.0f} events/s{' CAPPED' if capped else ''}")
            results.append({"case": "consumers", "consumer": consumer, "run": run, "events": queued,
                            "synced": synced, "capped": capped, "seconds": elapsed,
                            "events_per_s": synced / elapsed})
        return results
    finally:
        conn.execute("SELECT wlsync.remove_consumer('bench2')")


def claim_alone(cfg: Config, dbs: Databases, conn, batch: int, run: int, fetch: bool = True) -> dict:
    """BEGIN; SELECT * FROM wlsync.claim_sync_events(batch); COMMIT in a loop: no sink at all.
    The rows are fetched and decoded as the driver decodes them (psycopg, jsonb by orjson);
    with fetch=False they are summed in MDB instead: MDB's work alone, nothing sent."""
    queued = prefill(conn, "bench_big", cfg.drain_queue, 1)
    query = ("SELECT events, * FROM wlsync.claim_sync_events(%s)" if fetch else
             "SELECT sum(events) FROM wlsync.claim_sync_events(%s) HAVING count(*) > 0")
    events, capped = 0, False
    with psycopg.connect(dsn(dbs.mdb)) as claimer:
        claimer.adapters.register_loader("jsonb", JsonbLoader)  # as wlsync_driver.Driver.claim_connection
        started = time.perf_counter()
        while True:
            rows = claimer.execute(query, [batch]).fetchall()
            claimer.commit()
            if not rows:
                break
            events += sum(r[0] for r in rows)
            if time.perf_counter() - started > cfg.drain_cap:
                capped = True
                break
        elapsed = time.perf_counter() - started
    if events != queued and not capped:
        raise RuntimeError(f"claim alone: {queued} queued, {events} claimed")
    log(f"claim alone batch={batch}{'' if fetch else ' (in MDB, rows not fetched)'} run {run}: {events}/{queued} "
        f"events in {elapsed:.2f} s = {events / elapsed:,.0f} events/s{' CAPPED' if capped else ''}")
    return {"batch": batch, "run": run, "fetch": fetch, "events": queued, "synced": events, "capped": capped,
            "seconds": elapsed, "events_per_s": events / elapsed}


def baseline(cfg: Config, dbs: Databases, out: Path, conn, run: int) -> dict:
    """The original demo's loop: one event per claim (LIMIT 1 ... FOR UPDATE SKIP LOCKED in a
    subquery of a DELETE ... RETURNING), one thread, re-read the row, write it to SQLite,
    commit WL, commit MDB. Same table, same kind of queue (one event per key), its head."""
    prefill(conn, "bench_big", cfg.baseline_queue, 1)
    queue = current_queue(conn)
    path = out / f"baseline_r{run}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    wl = sqlite3.connect(path, isolation_level=None)
    wl.execute("PRAGMA journal_mode = WAL")
    wl.execute("PRAGMA synchronous = FULL")  # the same durability as wlsync's SQLite sink
    wl.execute("CREATE TABLE bench_big (id INTEGER PRIMARY KEY, counter INTEGER, note TEXT)")
    events = 0
    with psycopg.connect(dsn(dbs.mdb)) as mdb:
        started = time.perf_counter()
        while events < cfg.baseline_events and time.perf_counter() - started < cfg.drain_cap:
            claimed = mdb.execute(
                f"DELETE FROM {queue} WHERE ctid = (SELECT ctid FROM {queue} "
                "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING table_id, pk").fetchone()
            if claimed is None:
                mdb.commit()
                break
            row = mdb.execute("SELECT id, counter, note FROM bench_big WHERE id = %s",
                              [int(claimed[1]["id"])]).fetchone()
            wl.execute("BEGIN")
            if row is None:
                wl.execute("DELETE FROM bench_big WHERE id = ?", [int(claimed[1]["id"])])
            else:
                wl.execute("INSERT INTO bench_big (id, counter, note) VALUES (?, ?, ?) ON CONFLICT (id) "
                           "DO UPDATE SET counter = excluded.counter, note = excluded.note", row)
            wl.execute("COMMIT")
            mdb.commit()
            events += 1
        elapsed = time.perf_counter() - started
    wl.close()
    log(f"baseline run {run}: {events} events in {elapsed:.2f} s = {events / elapsed:,.0f} events/s")
    return {"run": run, "events": events, "queue": cfg.baseline_queue, "seconds": elapsed,
            "events_per_s": events / elapsed}


def section_drain(cfg: Config, dbs: Databases, out: Path) -> dict:
    dbs.recreate(dbs.wl)
    raw_drain, raw_claim, raw_base, raw_consumers = [], [], [], []
    with psycopg.connect(dsn(dbs.mdb), autocommit=True) as conn:
        conn.execute("SELECT wlsync.track('bench_big')")
        sinks, skipped = available_sinks(cfg.drain_sinks, dbs, out, "drain")
        extra, extra_skipped = available_sinks([s for s in cfg.sweep_sinks if s not in cfg.drain_sinks], dbs, out,
                                               "drain sweep")
        skipped.update(extra_skipped)
        sweep_sinks = [s for s in cfg.sweep_sinks if s in sinks or s in extra]
        consistent = [s for s in cfg.consistent_sinks if s in sinks]
        for run in range(1, cfg.runs + 1):
            raw_base.append(baseline(cfg, dbs, out, conn, run))
            for batch in cfg.claim_batches:
                raw_claim.append(claim_alone(cfg, dbs, conn, batch, run))
                raw_claim.append(claim_alone(cfg, dbs, conn, batch, run, fetch=False))
            for sink in sinks:  # the headline cases: one event per key, default batch, 1 and 2 drivers
                for drivers in cfg.drain_drivers:
                    raw_drain.append(drain_with_drivers(cfg, dbs, out, conn, sink, drivers, cfg.default_batch, run,
                                                        cfg.drain_queue, cfg.drain_cap, "headline"))
            if cfg.drain_consumers:
                raw_consumers += drain_two_consumers(cfg, dbs, out, conn, run)
            for sink in consistent:  # consistent mode: one driver, one snapshot per WL commit
                raw_drain.append(drain_with_drivers(cfg, dbs, out, conn, sink, 1, cfg.default_batch, run,
                                                    cfg.drain_queue, cfg.consistent_cap, "consistent", "--consistent"))
            for sink in sweep_sinks:  # the batch-size sweep, one driver
                for batch in cfg.drain_batches:
                    raw_drain.append(drain_with_drivers(cfg, dbs, out, conn, sink, 1, batch, run,
                                                        cfg.drain_events[batch], cfg.sweep_cap, "sweep"))
        truncate_queues(conn)
        conn.execute("SELECT wlsync.untrack('bench_big')")

    def rows(case: str, sink: str, drivers: int, batch: int) -> list[dict]:
        return [r for r in raw_drain if (r["case"], r["sink"], r["drivers"], r["batch"]) == (case, sink, drivers, batch)]
    base_by_run = {r["run"]: r["events_per_s"] for r in raw_base}
    drain = []
    for case, case_sinks, drivers_list, batches in (("headline", sinks, cfg.drain_drivers, [cfg.default_batch]),
                                                   ("consistent", consistent, [1], [cfg.default_batch]),
                                                   ("sweep", sweep_sinks, [1], cfg.drain_batches)):
        for sink in case_sinks:
            for drivers in drivers_list:
                for batch in batches:
                    mine = rows(case, sink, drivers, batch)
                    entry = {"case": case, "sink": sink, "drivers": drivers, "batch": batch,
                             "events": mine[0]["events"] if mine else None,
                             "capped_runs": sum(r["capped"] for r in mine),
                             "drained_pct": summary([100 * r["synced"] / r["events"] for r in mine]),
                             "events_per_s": summary([r["events_per_s"] for r in mine]),
                             "x_baseline": summary([r["events_per_s"] / base_by_run[r["run"]] for r in mine])}
                    if case == "headline" and drivers != 1:
                        one = {r["run"]: r["events_per_s"] for r in rows(case, sink, 1, batch)}
                        entry["x_one_driver"] = summary([r["events_per_s"] / one[r["run"]] for r in mine
                                                         if r["run"] in one])
                    if case == "consistent":  # against normal mode's one driver, same round
                        normal = {r["run"]: r["events_per_s"] for r in rows("headline", sink, 1, batch)}
                        entry["x_normal"] = summary([r["events_per_s"] / normal[r["run"]] for r in mine
                                                     if r["run"] in normal])
                        entry["commits"] = summary([r["commits"] for r in mine])
                        entry["peak_rss_mb"] = summary([r["peak_rss_mb"] for r in mine if r["peak_rss_mb"]])
                    drain.append(entry)
    def claimed(b: int, fetch: bool) -> list[dict]:
        return [r for r in raw_claim if r["batch"] == b and r.get("fetch", True) == fetch]

    claims = [{"batch": b, "events": cfg.drain_queue,
               "capped_runs": sum(r["capped"] for r in claimed(b, True)),
               "drained_pct": summary([100 * r["synced"] / r["events"] for r in claimed(b, True)]),
               "events_per_s": summary([r["events_per_s"] for r in claimed(b, True)]),
               "in_mdb_events_per_s": summary([r["events_per_s"] for r in claimed(b, False)])}
              for b in cfg.claim_batches]
    one = {r["run"]: r["events_per_s"] for r in rows("headline", "sqlite", 1, cfg.default_batch)}
    consumers = [{"consumer": c, "events": cfg.drain_queue,
                  "capped_runs": sum(r["capped"] for r in raw_consumers if r["consumer"] == c),
                  "drained_pct": summary([100 * r["synced"] / r["events"] for r in raw_consumers
                                          if r["consumer"] == c]),
                  "events_per_s": summary([r["events_per_s"] for r in raw_consumers if r["consumer"] == c]),
                  "x_one_consumer": summary([r["events_per_s"] / one[r["run"]] for r in raw_consumers
                                             if r["consumer"] == c and r["run"] in one])}
                 for c in ("default", "bench2") if any(r["consumer"] == c for r in raw_consumers)]
    return {"drain": drain, "claim_alone": claims, "skipped_sinks": skipped, "sinks": sinks,
            "consistent_sinks": consistent, "consumers": consumers,
            "baseline": {"events": cfg.baseline_events, "queue": cfg.baseline_queue,
                         "drained": summary([r["events"] for r in raw_base]),
                         "events_per_s": summary([r["events_per_s"] for r in raw_base])},
            "default_batch": cfg.default_batch, "queue": cfg.drain_queue, "cap": cfg.drain_cap,
            "sweep_cap": cfg.sweep_cap,
            "raw": {"drain": raw_drain, "claim_alone": raw_claim, "baseline": raw_base, "consumers": raw_consumers}}


# --------------------------------------------------------------------------- 4. latency

KEEP_DISARMED = """
CREATE OR REPLACE FUNCTION public.bench_keep_disarmed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.notify_until := NULL; RETURN NEW; END $$;
CREATE OR REPLACE TRIGGER bench_keep_disarmed BEFORE INSERT OR UPDATE ON wlsync.capture_state
    FOR EACH ROW EXECUTE FUNCTION public.bench_keep_disarmed();
SELECT wlsync.disarm_wakeup();
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[rank]


def latency_run(cfg: Config, dbs: Databases, out: Path, conn, notify: bool, run: int, consistent: bool = False) -> dict:
    """A driver listening; a writer commits ~rate single-row UPDATEs a second (one per
    transaction); a poller reads WL until each committed value shows up."""
    truncate_queues(conn)
    conn.execute("DROP TRIGGER IF EXISTS bench_keep_disarmed ON wlsync.capture_state")
    if not notify:
        conn.execute(KEEP_DISARMED)
    sweep = 60.0 if notify else cfg.latency_sweep  # with NOTIFY: the driver's default sweep
    name = f"latency_{'notify' if notify else 'sweep'}{'_consistent' if consistent else ''}_r{run}"
    target = target_url("sqlite", dbs, out, name)
    driver = start_driver(dsn(dbs.mdb), target, out / f"{name}.log", "--sweep-interval", str(sweep),
                          *(["--consistent"] if consistent else []))
    wl_path = target[len("sqlite:///"):]
    pending: dict[int, list] = {}   # key -> [value, commit time or None]
    lock = threading.Lock()
    latencies: list[float] = []
    done = threading.Event()
    run_base = run * 10_000_000 + (0 if notify else 5_000_000) + (2_500_000 if consistent else 0)

    def poll() -> None:
        wl = None
        while not (done.is_set() and not pending):
            if wl is None:
                if not Path(wl_path).exists():
                    time.sleep(0.001)
                    continue
                wl = sqlite3.connect(wl_path, isolation_level=None)
            with lock:
                keys = list(pending)
            if not keys:
                time.sleep(0.0002)
                continue
            try:
                rows = wl.execute(f"SELECT id, counter FROM bench_rows WHERE id IN ({','.join('?' * len(keys))})",
                                  keys).fetchall()
            except sqlite3.OperationalError:  # table not created yet / busy
                time.sleep(0.0005)
                continue
            now = time.monotonic()
            with lock:
                for key, counter in rows:
                    entry = pending.get(key)
                    if entry and entry[1] is not None and counter >= entry[0]:
                        latencies.append(max(0.0, now - entry[1]))
                        del pending[key]
            time.sleep(0.0002)
        if wl is not None:
            wl.close()

    with psycopg.connect(dsn(dbs.mdb), autocommit=True) as writer:
        # Warm-up: the driver creates the WL table on its first batch.
        writer.execute("UPDATE bench_rows SET counter = %s WHERE id = 1", [run_base])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if Path(wl_path).exists() and wl_count(target, "bench_rows") > 0:
                    break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.05)
        time.sleep(max(0.5, sweep if not notify else 0.5))  # let the driver settle into its wait
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        changes = int(cfg.latency_seconds * cfg.latency_rate)
        started = time.monotonic()
        for i in range(changes):
            delay = started + i / cfg.latency_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            key, value = 2 + i % (cfg.table_rows - 1), run_base + 1 + i
            with lock:
                pending[key] = [value, None]
            writer.execute("UPDATE bench_rows SET counter = %s WHERE id = %s", [value, key])
            committed = time.monotonic()
            with lock:
                if key in pending:
                    pending[key][1] = committed
        done.set()
        poller.join(timeout=sweep * 2 + 30)
        lost = len(pending)
    driver.send_signal(signal.SIGTERM)
    driver.wait(timeout=60)
    conn.execute("DROP TRIGGER IF EXISTS bench_keep_disarmed ON wlsync.capture_state")
    result = {"notify": notify, "consistent": consistent, "run": run, "sweep_interval": sweep, "changes": changes,
              "measured": len(latencies), "not_seen": lost,
              "p50_ms": 1000 * percentile(latencies, 50), "p95_ms": 1000 * percentile(latencies, 95),
              "p99_ms": 1000 * percentile(latencies, 99), "max_ms": 1000 * max(latencies)}
    log(f"latency {'notify' if notify else 'sweep-only'}{' consistent' if consistent else ''} run {run}: "
        f"p50 {result['p50_ms']:.2f} ms, "
        f"p95 {result['p95_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.1f} ms "
        f"({len(latencies)} changes)")
    return result


# (wake-up by NOTIFY, consistent mode): normal mode with and without NOTIFY, consistent mode with it
LATENCY_CASES = ((True, False), (False, False), (True, True))


def section_latency(cfg: Config, dbs: Databases, out: Path) -> dict:
    raw = []
    with psycopg.connect(dsn(dbs.mdb), autocommit=True) as conn:
        conn.execute("SELECT wlsync.track('bench_rows')")
        for run in range(1, cfg.runs + 1):
            for notify, consistent in LATENCY_CASES:
                raw.append(latency_run(cfg, dbs, out, conn, notify, run, consistent))
    results = []
    for notify, consistent in LATENCY_CASES:
        mine = [r for r in raw if (r["notify"], r["consistent"]) == (notify, consistent)]
        results.append({"notify": notify, "consistent": consistent, "sweep_interval": mine[0]["sweep_interval"],
                        "changes": sum(r["measured"] for r in mine), "not_seen": sum(r["not_seen"] for r in mine),
                        **{k: summary([r[k] for r in mine]) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}})
    return {"rate": cfg.latency_rate, "seconds": cfg.latency_seconds, "results": results, "raw": raw}


# --------------------------------------------------------------------------- 5./6. health and memory

def proc_status(pid: int) -> dict:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(.*)$", text, re.M)}


class Writer:
    """A writer updating tracked rows of bench_rows as fast as it can (one statement per
    transaction, autocommit), timing every statement; and a sampler of pg_locks every 10 ms:
    does anyone wait for a lock on a queue table, is the writer waiting on anyone?"""

    def __init__(self, mdb_dsn: str, rows: int):
        self.mdb_dsn, self.rows = mdb_dsn, rows
        self.latencies: list[float] = []
        self.queue_waits: list[dict] = []
        self.writer_blocked = 0
        self.samples = 0
        self.done = threading.Event()
        self.ready = threading.Event()
        self.pid = None
        self.error = None
        self.threads = [threading.Thread(target=self.write, daemon=True),
                        threading.Thread(target=self.sample, daemon=True)]

    def start(self) -> None:
        self.threads[0].start()
        self.ready.wait(10)
        self.threads[1].start()

    def stop(self) -> dict:
        self.done.set()
        for t in self.threads:
            t.join(timeout=30)
        lat = sorted(self.latencies)
        return {"statements": len(lat), "error": self.error,
                "median_ms": 1000 * lat[len(lat) // 2] if lat else None,
                "p99_ms": 1000 * percentile(lat, 99) if lat else None,
                "max_ms": 1000 * lat[-1] if lat else None,
                "lock_samples": self.samples, "queue_lock_waits": len(self.queue_waits),
                "queue_lock_wait_examples": self.queue_waits[:5], "writer_blocked_samples": self.writer_blocked}

    def write(self) -> None:
        try:
            with psycopg.connect(self.mdb_dsn, autocommit=True, application_name="wlsync_bench_writer") as conn:
                self.pid = conn.info.backend_pid
                self.ready.set()
                rng = random.Random(7)
                while not self.done.is_set():
                    key = rng.randint(1, self.rows)
                    began = time.perf_counter()
                    conn.execute("UPDATE bench_rows SET counter = counter + 1 WHERE id = %s", [key])
                    self.latencies.append(time.perf_counter() - began)
        except Exception as exc:  # noqa: BLE001 - reported with the results
            self.error = str(exc)
            self.ready.set()

    def sample(self) -> None:
        with psycopg.connect(self.mdb_dsn, autocommit=True, application_name="wlsync_bench_locks") as conn:
            while not self.done.is_set():
                waits = conn.execute(
                    "SELECT l.pid, l.mode, l.relation::regclass::text, a.application_name, "
                    "pg_blocking_pids(l.pid) FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND l.locktype = 'relation' AND l.relation = ANY (" + QUEUE_OIDS + ") "
                    # The bench's own monitor (its size queries wait behind a TRUNCATE) is no writer.
                    "AND a.application_name <> 'wlsync_bench_monitor'").fetchall()
                for pid, mode, rel, app, blockers in waits:
                    self.queue_waits.append({"t": time.time(), "pid": pid, "mode": mode, "relation": rel,
                                             "application": app, "blocked_by": blockers})
                if self.pid is not None and conn.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0",
                                                         [self.pid]).fetchone()[0]:
                    self.writer_blocked += 1
                self.samples += 1
                time.sleep(0.01)


def health_run(cfg: Config, dbs: Databases, out: Path, conn, server: str, port: int | None, long_txn: bool,
               run: int) -> dict:
    mdb_dsn = dsn(dbs.mdb, port)
    queued = prefill(conn, "bench_big", cfg.health_events, 1)
    name = f"health_{server}_{'rr' if long_txn else 'plain'}_r{run}"
    target = target_url("sqlite", dbs, out, name, mdb_dsn)
    holder = None
    if long_txn:  # an idle REPEATABLE READ transaction with a snapshot, held for the whole drain
        holder = psycopg.connect(mdb_dsn)
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM bench_rows WHERE id = 1").fetchone()
    samples = []
    monitor_conn = psycopg.connect(mdb_dsn, autocommit=True, application_name="wlsync_bench_monitor")
    writer = Writer(mdb_dsn, cfg.table_rows) if long_txn and cfg.health_writer else None
    if writer:
        writer.start()
    driver = start_driver(mdb_dsn, target, out / f"{name}.log", "--once", "--batch", str(cfg.default_batch))
    started = time.time()
    hwm = 0
    stopped_early = False
    timeout = cfg.health_timeout_long if long_txn else cfg.health_timeout
    rusage = None
    slot_seen: dict[int, str] = {}
    truncations = 0
    try:
        while True:
            pid_done, status, rusage = os.wait4(driver.pid, os.WNOHANG)
            if pid_done:
                driver.returncode = os.waitstatus_to_exitcode(status)
                break
            mem = proc_status(driver.pid)
            hwm = max(hwm, mem.get("VmHWM", 0))
            stats = queue_stats(monitor_conn)
            for slot, state in monitor_conn.execute("SELECT slot, state FROM wlsync.queue_slot "
                                                    "WHERE ring = 0").fetchall():
                if slot_seen.get(slot) == "sealed" and state != "sealed":
                    truncations += 1  # a sealed slot is left only by its TRUNCATE
                slot_seen[slot] = state
            samples.append({"t": time.time(), "total_bytes": stats[0], "heap_bytes": stats[1], "dead": stats[2],
                            "autovacuums": stats[3], "live": stats[4], "rss_kb": mem.get("VmRSS")})
            # With the writer, run --once ends at its first claim short of a batch holding only
            # the writer's events enqueued after it began: the prefilled ones are in WL by then.
            if not stopped_early and time.time() - started > timeout:
                log(f"{name}: still draining after {timeout:.0f} s: stopping the driver (partial result)")
                driver.send_signal(signal.SIGTERM)
                stopped_early = True
            time.sleep(0.5)
    finally:
        writer_result = writer.stop() if writer else None
    final = queue_stats(monitor_conn)
    exact_dead = None
    try:  # exact count (a scan of the queue), before the long transaction ends
        exact_dead = monitor_conn.execute(
            "SELECT sum((pgstattuple(q)).dead_tuple_count) FROM unnest(" + QUEUE_OIDS + "::regclass[]) AS q").fetchone()[0]
        exact_dead = None if exact_dead is None else int(exact_dead)
    except psycopg.Error:
        pass
    if holder is not None:
        holder.rollback()
        holder.close()
    monitor_conn.close()
    # As in drain_with_drivers: a driver stopped by our SIGTERM while run --once was already
    # ending (-SIGTERM during interpreter shutdown) after logging its clean stop, stopped cleanly.
    if driver.returncode == -signal.SIGTERM and stopped_early and "stopped after syncing" in (
            out / f"{name}.log").read_text():
        driver.returncode = 0
    if driver.returncode != 0:
        raise RuntimeError(f"{name}: driver exit code {driver.returncode}, see {out}/{name}.log")
    # Only bench_big's events (one per key): the writer's events on bench_rows are drained too.
    batches = sorted(parse_driver_log(out / f"{name}.log", "public.bench_big"), key=lambda b: b[1])
    batches = [b for b in batches if b[2]]
    synced = sum(b[2] for b in batches)
    peak_rss_kb = max(hwm, rusage.ru_maxrss if rusage else 0)  # ru_maxrss is in KiB on Linux
    # per-window throughput: time at which the cumulative count crossed each window boundary
    windows, done_events, window_start = [], 0, batches[0][0] if batches else started
    boundary = cfg.health_window
    for b in batches:
        done_events += b[2]
        while done_events >= boundary:
            at = [s for s in samples if s["t"] <= b[1]]
            sample = at[-1] if at else (samples[0] if samples else {})
            windows.append({"upto": boundary, "events_per_s": cfg.health_window / max(b[1] - window_start, 1e-6),
                            "queue_total_bytes": sample.get("total_bytes"), "dead_tuples": sample.get("dead")})
            window_start, boundary = b[1], boundary + cfg.health_window
    elapsed = batches[-1][1] - batches[0][0] if batches else 0
    result = {"server": server, "long_txn": long_txn, "run": run, "queued": queued, "synced": synced,
              "complete": synced == queued and not stopped_early, "seconds": elapsed,
              "events_per_s": synced / elapsed if elapsed else None, "peak_rss_mb": peak_rss_kb / 1024,
              "windows": windows, "last_first_ratio": (windows[-1]["events_per_s"] / windows[0]["events_per_s"]
                                                       if len(windows) > 1 else None),
              "max_dead_tuples": max((s["dead"] for s in samples), default=None),
              "max_total_bytes": max((s["total_bytes"] for s in samples), default=None),
              "final_total_bytes": final[0], "final_dead_tuples": final[2], "final_dead_exact": exact_dead,
              "truncations_seen": truncations,
              "autovacuums": (final[3] - samples[0]["autovacuums"]) if samples else None,
              "writer": writer_result}
    log(f"health {server} {'with' if long_txn else 'without'} long txn run {run}: {synced}/{queued} events in "
        f"{elapsed:.1f} s, windows " + ", ".join(f"{w['events_per_s']:,.0f}" for w in windows)
        + f" events/s, max dead {result['max_dead_tuples']}, final dead {final[2]}, final queue "
        f"{(final[0] or 0) / 1048576:.1f} MiB, {truncations} TRUNCATEs seen, peak RSS {result['peak_rss_mb']:.1f} MB"
        + (f"; writer: {writer_result['statements']} statements, max {writer_result['max_ms']:.1f} ms, "
           f"{writer_result['queue_lock_waits']} queue-lock waits in {writer_result['lock_samples']} samples"
           if writer_result and writer_result["statements"] else ""))
    return result


def prepare_health_mdb(cfg: Config, dbs: Databases, server: str) -> int | None:
    """The MDB of `server` for the health cases (this server's is made by main()); bench_big and
    bench_rows tracked (the writer's table)."""
    port = None
    if server == "logical":
        port = dbs.cluster.ensure()
        if not dbs.logical_mdb_ready:
            recreate_on(port, dbs.mdb)
            create_mdb(dbs.mdb, cfg.table_rows, cfg.health_events, port=port)
            dbs.logical_mdb_ready = True
    with psycopg.connect(dsn(dbs.mdb, port), autocommit=True) as conn:
        conn.execute("SELECT wlsync.track('bench_big')")
        conn.execute("SELECT wlsync.track('bench_rows')")
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        except psycopg.Error as exc:
            log(f"pgstattuple unavailable ({exc}): dead tuples from pg_stat_user_tables only")
    return port


def section_health(cfg: Config, dbs: Databases, out: Path) -> dict:
    cases = []
    skipped = {}
    for case in cfg.health_cases:
        server, kind = case.split(":")
        if server not in ("main", "logical") or kind not in ("plain", "long"):
            raise SystemExit(f"unknown health case {case!r}: use main|logical:plain|long")
        if server == "logical" and not cfg.logical_cluster:
            skipped[case] = "BENCH_LOGICAL_CLUSTER=0"
            continue
        cases.append((server, kind == "long"))
    ports = {}
    for server in dict.fromkeys(s for s, _ in cases):
        try:
            ports[server] = prepare_health_mdb(cfg, dbs, server)
        except RuntimeError as exc:
            for s, lt in cases:
                if s == server:
                    skipped[f"{s}:{'long' if lt else 'plain'}"] = str(exc)
            log(f"health: {server} cases skipped: {exc}")
    cases = [c for c in cases if c[0] in ports]
    raw = []
    conns = {server: psycopg.connect(dsn(dbs.mdb, port), autocommit=True) for server, port in ports.items()}
    try:
        for run in range(1, cfg.health_runs + 1):
            for server, long_txn in cases:
                raw.append(health_run(cfg, dbs, out, conns[server], server, ports[server], long_txn, run))
        for conn in conns.values():
            truncate_queues(conn)
            conn.execute("SELECT wlsync.untrack('bench_rows')")
    finally:
        for conn in conns.values():
            conn.close()
    results = []
    for server, long_txn in cases:
        mine = [r for r in raw if (r["server"], r["long_txn"]) == (server, long_txn)]
        count = max(len(r["windows"]) for r in mine)
        windows = []
        for i in range(count):
            ws = [r["windows"][i] for r in mine if len(r["windows"]) > i]
            windows.append({"upto": ws[0]["upto"], "runs": len(ws),
                            "events_per_s": summary([w["events_per_s"] for w in ws]),
                            "queue_total_bytes": summary([w["queue_total_bytes"] for w in ws]),
                            "dead_tuples": summary([w["dead_tuples"] for w in ws])})
        writers = [r["writer"] for r in mine if r["writer"]]
        results.append({"server": server, "long_txn": long_txn, "complete_runs": sum(r["complete"] for r in mine),
                        "runs": len(mine),
                        "events_per_s": summary([r["events_per_s"] for r in mine]),
                        "last_first_ratio": summary([r["last_first_ratio"] for r in mine]),
                        "seconds": summary([r["seconds"] for r in mine]),
                        "peak_rss_mb": summary([r["peak_rss_mb"] for r in mine]),
                        "max_dead_tuples": summary([r["max_dead_tuples"] for r in mine]),
                        "final_dead_tuples": summary([r["final_dead_tuples"] for r in mine]),
                        "max_total_bytes": summary([r["max_total_bytes"] for r in mine]),
                        "final_total_bytes": summary([r["final_total_bytes"] for r in mine]),
                        "final_dead_exact": summary([r["final_dead_exact"] for r in mine]),
                        "truncations_seen": summary([r["truncations_seen"] for r in mine]),
                        "autovacuums": summary([r["autovacuums"] for r in mine]),
                        "writer": {"statements": summary([w["statements"] for w in writers]),
                                   "median_ms": summary([w["median_ms"] for w in writers]),
                                   "p99_ms": summary([w["p99_ms"] for w in writers]),
                                   "max_ms": summary([w["max_ms"] for w in writers]),
                                   "lock_samples": sum(w["lock_samples"] for w in writers),
                                   "queue_lock_waits": sum(w["queue_lock_waits"] for w in writers),
                                   "writer_blocked_samples": sum(w["writer_blocked_samples"] for w in writers),
                                   "errors": [w["error"] for w in writers if w["error"]]} if writers else None,
                        "windows": windows})
    return {"events": cfg.health_events, "window": cfg.health_window, "batch": cfg.default_batch,
            "timeout": cfg.health_timeout, "timeout_long": cfg.health_timeout_long, "skipped": skipped,
            "logical_settings": dbs.cluster.settings() if "logical" in ports else None,
            "results": results, "raw": raw}


# --------------------------------------------------------------------------- 7. verify

VERIFY_TABLE = "bench_verify"


def copy_seconds(mdb_dsn: str) -> float:
    """`COPY (SELECT * FROM bench_verify) TO STDOUT`, every block read by this process."""
    with psycopg.connect(mdb_dsn) as conn:
        started = time.monotonic()
        with conn.cursor().copy(f"COPY (SELECT * FROM {VERIFY_TABLE}) TO STDOUT") as copy:
            for _block in copy:
                pass
        return time.monotonic() - started


def verify_seconds(mdb_dsn: str, target: str) -> float:
    """One `verify` (wlsync_verify.verify, in this process) of MDB against `target`, which must pass."""
    sink = open_sink(target)
    try:
        started = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            code = wlsync_verify.verify(mdb_dsn, sink)
        elapsed = time.monotonic() - started
    finally:
        sink.close()
    if code != 0:
        raise RuntimeError(f"verify into {target} found differences: {printed.getvalue()[-500:]}")
    return elapsed


def section_verify(cfg: Config, dbs: Databases, out: Path) -> dict:
    """An equal table in MDB and in each WL, filled the way wlsync fills it (a backfill, drained
    by one driver); then, round by round: COPY of the table, and verify into each WL."""
    mdb = dsn(dbs.verify)
    dbs.recreate(dbs.verify)
    wlsync_migrate.migrate(mdb)
    with psycopg.connect(mdb, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {VERIFY_TABLE} (id bigint PRIMARY KEY, title text, n numeric, at timestamptz)")
        conn.execute(f"INSERT INTO {VERIFY_TABLE} SELECT g, 'title ' || g, g / 7.0, "
                     "'2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, %s) g",
                     [cfg.verify_rows])
        conn.execute("VACUUM ANALYZE")
        conn.execute(f"SELECT wlsync.track('{VERIFY_TABLE}')")
    sinks, skipped = available_sinks(cfg.verify_sinks, dbs, out, "verify")
    targets = {}
    for sink in sinks:
        targets[sink] = target_url(sink, dbs, out, f"verify_{sink}", mdb)
        for args in (["backfill", "--source", mdb],
                     ["run", "--once", "--source", mdb, "--target", targets[sink]]):
            proc = subprocess.run([PY, str(DRIVER), "--log-level", "WARNING", *args], capture_output=True, text=True,
                                  timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"verify: filling the {sink} WL failed: {proc.stderr[-500:]}")
        log(f"verify: the {sink} WL holds {wl_count(targets[sink], VERIFY_TABLE, mdb):,} rows")
    raw = []
    for run in range(1, cfg.runs + 1):
        copy = copy_seconds(mdb)
        for sink in sinks:
            seconds = verify_seconds(mdb, targets[sink])
            raw.append({"run": run, "sink": sink, "verify_s": seconds, "copy_s": copy, "ratio": seconds / copy})
            log(f"verify: round {run}, {sink}: {seconds:.2f} s, COPY {copy:.2f} s ({seconds / copy:.1f}x)")
    return {"rows": cfg.verify_rows, "skipped_sinks": skipped, "sinks": sinks,
            "results": [{"sink": sink, **{key: summary([r[key] for r in raw if r["sink"] == sink])
                                          for key in ("verify_s", "copy_s", "ratio")}} for sink in sinks],
            "raw": raw}


# --------------------------------------------------------------------------- machine and main

def machine(dbs: Databases) -> dict:
    def first(pattern: str, path: str) -> str:
        try:
            match = re.search(pattern, Path(path).read_text(), re.M)
            return match.group(1).strip() if match else "?"
        except OSError:
            return "?"
    settings = {name: dbs.admin.execute(f"SHOW {name}").fetchone()[0]
                for name in ("server_version", "shared_buffers", "synchronous_commit", "fsync", "wal_level",
                             "max_wal_size", "autovacuum", "autovacuum_naptime")}
    return {"cpu": first(r"^model name\s*:\s*(.*)$", "/proc/cpuinfo"), "cores": os.cpu_count(),
            "memory_gib": round(int(first(r"^MemTotal:\s*(\d+)", "/proc/meminfo")) / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "psycopg": psycopg.__version__, "sqlite": sqlite3.sqlite_version, "postgres": settings,
            "load_before": os.getloadavg()}


SECTIONS = ["overhead", "tpcb", "drain", "latency", "health", "verify"]


def interrupted(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through main()'s finally: processes, databases, cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["full", "quick", "smoke"],
                        default="quick" if os.environ.get("BENCH_QUICK") not in (None, "", "0") else "full")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--out", help="output directory (default bench/out/<mode>-<timestamp>)")
    parser.add_argument("--no-results-md", action="store_true", help="do not (re)write bench/RESULTS.md")
    args = parser.parse_args(argv)
    cfg = make_config(args.mode)
    sections = args.only.split(",") if args.only else SECTIONS
    for s in sections:
        if s not in SECTIONS:
            parser.error(f"unknown section {s!r}")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else BENCH / "out" / f"{args.mode}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    dbs = Databases(os.environ.get("BENCH_DB_PREFIX", "wlsync_bench_"))
    results = {"mode": args.mode, "config": asdict(cfg), "sections": sections,
               "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(dbs),
               "durations": {}}
    log(f"wlsync bench, mode {args.mode}, sections {','.join(sections)}; raw output in {out}")
    total = time.monotonic()
    try:
        if any(s in sections for s in ("drain", "latency", "health")):
            dbs.recreate(dbs.mdb)
            big = max([cfg.drain_queue, cfg.baseline_queue, *cfg.drain_events.values()] if "drain" in sections else [0])
            if "health" in sections:
                big = max(big, cfg.health_events)
            create_mdb(dbs.mdb, cfg.table_rows, big)
        for section in sections:
            began = time.monotonic()
            log(f"== {section}")
            results[section] = globals()[f"section_{section}"](cfg, dbs, out)
            results["durations"][section] = round(time.monotonic() - began, 1)
            (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    finally:
        for proc in STARTED:
            if proc.returncode is None and proc.poll() is None:
                proc.kill()
                proc.wait()
        dbs.drop_all()
    results["durations"]["total"] = round(time.monotonic() - total, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    import report  # bench/report.py, next to this file
    markdown = report.render(results)
    (out / "RESULTS.md").write_text(markdown)
    if args.mode == "full" and sections == SECTIONS and not args.no_results_md:
        (BENCH / "RESULTS.md").write_text(markdown)
        log("wrote bench/RESULTS.md")
    else:
        log(f"{args.mode} mode / partial run: bench/RESULTS.md left alone; report in {out / 'RESULTS.md'}")
    log(f"done in {results['durations']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
