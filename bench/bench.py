"""make bench: wlsync measured end to end, side by side with the original demo's approach.

    .venv/bin/python bench/bench.py                 # full run (~15-20 min on 2 cores), writes bench/RESULTS.md
    BENCH_QUICK=1 .venv/bin/python bench/bench.py   # smoke mode (< 3 min), writes bench/out/ only
    .venv/bin/python bench/bench.py --mode smoke    # a tiny slice (< 30 s), for tests/test_bench_smoke.py
    .venv/bin/python bench/bench.py --only drain,latency   # some sections (results under bench/out/)

Sections (see bench/RESULTS.md for what each one reports):
  overhead  pgbench single-row UPDATE / INSERT on a 100k-row table at 1, 4, 16 clients:
            untracked vs wlsync.track vs a key trigger that NOTIFYs on every change
  drain     a pre-filled queue (2 events per key) drained by N `wlsync_driver.py run --once
            --batch B` processes into SQLite and PostgreSQL; the claim function alone;
            the original demo's one-event-at-a-time loop (baseline) on the same queue
  latency   a listening driver, a writer committing ~100 changes/s, commit-to-visible-in-WL
            latency; again with the wake-up flag held disarmed (sweep only)
  health    1M events drained by one driver, with and without a REPEATABLE READ transaction
            held open: events/s, queue size and dead tuples per 100k window; driver peak RSS

Every figure is measured `runs` times (repetitions interleaved: run 1 of every case,
then run 2, ...) and reported as median (min-max); ratios are computed within one
repetition and then summarised the same way. Raw results: bench/out/<stamp>/results.json.

Databases: wlsync_bench_* (BENCH_DB_PREFIX), created here and dropped at the end.
Server: BENCH_PGHOST / BENCH_PGPORT / BENCH_PGUSER (default 127.0.0.1, 5432, postgres).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
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

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import wlsync_migrate  # noqa: E402
from wlsync_sinks import open_sink, tables_from_rows  # noqa: E402

BENCH = ROOT / "bench"
DRIVER = ROOT / "wlsync_driver.py"
PY = sys.executable

HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
PORT = int(os.environ.get("BENCH_PGPORT", "5432"))
USER = os.environ.get("BENCH_PGUSER", "postgres")


# --------------------------------------------------------------------------- configuration

@dataclass
class Config:
    mode: str
    runs: int = 3
    # 1. write overhead (pgbench)
    overhead_modes: list = field(default_factory=lambda: ["update", "insert"])
    overhead_clients: list = field(default_factory=lambda: [1, 4, 16])
    overhead_variants: list = field(default_factory=lambda: ["untracked", "wlsync", "notify_every"])
    overhead_seconds: int = 4
    table_rows: int = 100_000
    # 2./3. drain throughput, claim alone, baseline
    drain_sinks: list = field(default_factory=lambda: ["sqlite", "postgresql"])
    drain_drivers: list = field(default_factory=lambda: [1, 2, 4])
    drain_batches: list = field(default_factory=lambda: [1, 10, 100, 1000])
    # queue size (events; always 2 events per key) for each batch size
    drain_events: dict = field(default_factory=lambda: {1: 10_000, 10: 200_000, 100: 200_000, 1000: 200_000})
    # A case (drain, claim alone, baseline) still running after drain_cap seconds is stopped
    # (drivers get SIGTERM and finish their batch): its rate covers what it drained by then.
    # Keeps `make bench` within its time budget however slow a case is.
    drain_cap: float = 2.5
    claim_batches: list = field(default_factory=lambda: [1, 10, 100, 1000])
    baseline_queue: int = 200_000   # the baseline drains the head of a queue this big ...
    baseline_events: int = 5_000    # ... for this many events (or drain_cap seconds)
    default_batch: int = 1000       # wlsync_driver.py's default --batch
    # 4. latency
    latency_seconds: float = 8.0
    latency_rate: float = 100.0
    latency_sweep: float = 1.0
    # 5./6. queue health and memory
    health_events: int = 1_000_000
    health_window: int = 100_000
    health_timeout: float = 60.0       # per drain; a slower drain is stopped and reported partial
    health_timeout_long: float = 40.0  # the same, with the long transaction held (it only gets slower)


def make_config(mode: str) -> Config:
    """The preset of `mode`, then BENCH_<FIELD> overrides (e.g. BENCH_RUNS=5,
    BENCH_OVERHEAD_VARIANTS=untracked,wlsync,wlsync_invoker,full_row,notify_every)."""
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
    return cfg


def preset(mode: str) -> Config:
    if mode == "full":
        return Config(mode)
    if mode == "quick":  # BENCH_QUICK=1: every code path, small sizes, < 3 minutes
        return Config(mode, runs=2, overhead_clients=[1, 16], overhead_seconds=1, table_rows=20_000,
                      drain_drivers=[1, 2], drain_batches=[1, 1000],
                      drain_events={1: 400, 10: 2_000, 100: 10_000, 1000: 10_000}, drain_cap=1.0,
                      claim_batches=[1, 1000], baseline_queue=10_000, baseline_events=400,
                      latency_seconds=2, latency_sweep=0.5,
                      health_events=20_000, health_window=5_000, health_timeout=5,
                      health_timeout_long=5)
    if mode == "smoke":  # tests/test_bench_smoke.py: one case of each kind, < 30 s
        return Config(mode, runs=1, overhead_modes=["update"], overhead_clients=[2],
                      overhead_variants=["untracked", "wlsync"], overhead_seconds=1, table_rows=2_000,
                      drain_sinks=["sqlite", "postgresql"], drain_drivers=[2], drain_batches=[100],
                      drain_events={100: 2_000}, drain_cap=10, claim_batches=[100], baseline_queue=2_000,
                      baseline_events=100, default_batch=100, latency_seconds=1.5, latency_sweep=0.5,
                      health_events=4_000, health_window=1_000, health_timeout=20,
                      health_timeout_long=20)
    raise SystemExit(f"unknown mode {mode!r}")


def dsn(dbname: str) -> str:
    return f"postgresql://{USER}@{HOST}:{PORT}/{dbname}"


def log(text: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {text}", flush=True)


def summary(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


# --------------------------------------------------------------------------- databases

class Databases:
    """The bench's own databases: MDB (drain, latency, health), pgbench's MDB, WL."""

    def __init__(self, prefix: str):
        if not prefix.startswith("wlsync_bench_"):
            raise SystemExit("BENCH_DB_PREFIX must start with wlsync_bench_")
        self.mdb, self.pgbench, self.wl = prefix + "mdb", prefix + "pgbench", prefix + "wl"
        self.admin = psycopg.connect(dsn("postgres"), autocommit=True)

    def recreate(self, name: str) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.execute(f'CREATE DATABASE "{name}"')

    def drop_all(self) -> None:
        for name in (self.mdb, self.pgbench, self.wl):
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()


def create_mdb(name: str, rows: int, big_rows: int = 0) -> None:
    """A migrated MDB with bench_rows (rows, tracked) and optionally bench_big (big_rows, tracked)."""
    wlsync_migrate.migrate(dsn(name))
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_rows (id int PRIMARY KEY, counter int NOT NULL DEFAULT 0, "
                     "note text NOT NULL DEFAULT 'a modest text value')")
        conn.execute("INSERT INTO bench_rows (id) SELECT generate_series(1, %s)", [rows])
        if big_rows:
            conn.execute("CREATE TABLE bench_big (LIKE bench_rows INCLUDING ALL)")
            conn.execute("INSERT INTO bench_big (id) SELECT generate_series(1, %s)", [big_rows])
        conn.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------- 1. write overhead

OVERHEAD_SETUP = """
CREATE FUNCTION capture_key_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wlsync.queue_0 (table_id, pk) VALUES (0, jsonb_build_object('id', NEW.id));
    PERFORM pg_notify('bench_every_change', '');
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


def overhead_variant(conn: psycopg.Connection, variant: str, rows: int) -> None:
    conn.execute("DROP TRIGGER IF EXISTS key_notify ON bench_rows")
    conn.execute("DROP TRIGGER IF EXISTS full_row ON bench_rows")
    conn.execute("SELECT wlsync.untrack('bench_rows') FROM wlsync.tracked_table WHERE relid = 'bench_rows'::regclass")
    # Same starting point for every variant: the rows an INSERT run added are gone,
    # empty queues, vacuumed table, clean checkpoint.
    conn.execute("DELETE FROM bench_rows WHERE id > %s", [rows])
    conn.execute(f"TRUNCATE {QUEUE_TABLES}, full_row_queue")
    conn.execute("VACUUM bench_rows")
    conn.execute("CHECKPOINT")
    if variant == "wlsync":
        conn.execute("SELECT wlsync.track('bench_rows')")
    elif variant == "notify_every":
        conn.execute("CREATE TRIGGER key_notify AFTER INSERT OR UPDATE ON bench_rows "
                     "FOR EACH ROW EXECUTE FUNCTION capture_key_notify()")
    elif variant == "wlsync_invoker":  # experiment: the generated trigger without SECURITY DEFINER / SET
        table_id = conn.execute("SELECT wlsync.track('bench_rows')").fetchone()[0]
        conn.execute(f"ALTER FUNCTION wlsync._capture_row_{table_id}() SECURITY INVOKER RESET ALL")
    elif variant == "full_row":
        conn.execute("CREATE TRIGGER full_row AFTER INSERT OR UPDATE ON bench_rows "
                     "FOR EACH ROW EXECUTE FUNCTION capture_full_row()")
    elif variant != "untracked":
        raise SystemExit(f"unknown overhead variant {variant!r}")


def pgbench(db: str, script: Path, clients: int, seconds: float) -> float:
    out = subprocess.run(["pgbench", "-h", HOST, "-p", str(PORT), "-U", USER, "-n", "-f", str(script),
                          "-c", str(clients), "-j", str(clients), "-T", str(seconds), db],
                         capture_output=True, text=True, timeout=seconds + 120)
    match = re.search(r"^tps = ([0-9.]+)", out.stdout, re.M)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed: {out.stderr.strip()[-500:]}")
    return float(match.group(1))


def section_overhead(cfg: Config, dbs: Databases, out: Path) -> dict:
    dbs.recreate(dbs.pgbench)
    create_mdb(dbs.pgbench, cfg.table_rows)
    with psycopg.connect(dsn(dbs.pgbench), autocommit=True) as conn:
        conn.execute(OVERHEAD_SETUP)
        raw = []
        for mode in cfg.overhead_modes:
            script = out / f"pgbench_{mode}.sql"
            script.write_text(PGBENCH_SCRIPTS[mode].format(rows=cfg.table_rows, above=cfg.table_rows + 1))
            for clients in cfg.overhead_clients:
                for run in range(1, cfg.runs + 1):
                    for variant in cfg.overhead_variants:
                        overhead_variant(conn, variant, cfg.table_rows)
                        tps = pgbench(dbs.pgbench, script, clients, cfg.overhead_seconds)
                        raw.append({"mode": mode, "clients": clients, "run": run, "variant": variant, "tps": tps})
                        log(f"overhead {mode} c={clients} run {run} {variant}: {tps:,.0f} tps")
        overhead_variant(conn, "untracked", cfg.table_rows)
    results = []
    for mode in cfg.overhead_modes:
        for clients in cfg.overhead_clients:
            cases = [r for r in raw if r["mode"] == mode and r["clients"] == clients]
            base = {r["run"]: r["tps"] for r in cases if r["variant"] == "untracked"}
            for variant in cfg.overhead_variants:
                mine = [r for r in cases if r["variant"] == variant]
                entry = {"mode": mode, "clients": clients, "variant": variant,
                         "tps": summary([r["tps"] for r in mine])}
                if variant != "untracked":
                    # overhead within each repetition (same run, interleaved), then summarised
                    entry["overhead_pct"] = summary([100 * (1 - r["tps"] / base[r["run"]]) for r in mine])
                results.append(entry)
    return {"seconds": cfg.overhead_seconds, "rows": cfg.table_rows, "raw": raw, "results": results}


# --------------------------------------------------------------------------- queue helpers

def key_expr(conn: psycopg.Connection, table: str) -> str:
    """wlsync's own key spelling for `table` (alias t), as the capture trigger writes it."""
    return conn.execute("SELECT wlsync._key_json_sql(%s::regclass, t.pk_columns, 't') FROM wlsync.tracked_table t "
                        "WHERE t.relid = %s::regclass", [table, table]).fetchone()[0]


def prefill(conn: psycopg.Connection, table: str, keys: int, per_key: int) -> int:
    """Empty the queue, then enqueue `per_key` events for each of the keys 1..keys.

    Events of one key are `keys` apart (all keys once, then all keys again), as after
    a backfill followed by a write to every row. Returns the number of events."""
    table_id = conn.execute("SELECT table_id FROM wlsync.tracked_table WHERE relid = %s::regclass",
                            [table]).fetchone()[0]
    conn.execute(f"TRUNCATE {QUEUE_TABLES}")
    current = current_queue(conn)
    conn.execute(f"INSERT INTO {current} (table_id, pk) SELECT {table_id}, {key_expr(conn, table)} "
                 f"FROM generate_series(1, {per_key}) AS g, {table} AS t WHERE t.id <= {keys} ORDER BY g, t.id")
    conn.execute(f"VACUUM ANALYZE {current}")
    return queue_count(conn)


# The queue ring (migrations/0012.queue-v2.sql); wlsync.queue is a view over it.
QUEUE_TABLES = "wlsync.queue_0, wlsync.queue_1, wlsync.queue_2"
QUEUE_STATS = ("SELECT sum(pg_total_relation_size(relid)), sum(pg_relation_size(relid)), sum(n_dead_tup), "
               "sum(autovacuum_count) FROM pg_stat_user_tables WHERE relid IN "
               "('wlsync.queue_0'::regclass, 'wlsync.queue_1'::regclass, 'wlsync.queue_2'::regclass)")


def current_queue(conn: psycopg.Connection) -> str:
    """The ring slot capture functions insert into now."""
    return conn.execute("SELECT format('wlsync.%I', 'queue_' || slot) FROM wlsync.queue_slot "
                        "WHERE state = 'current'").fetchone()[0]


def queue_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0]


def target_url(sink: str, dbs: Databases, out: Path, name: str) -> str:
    """A fresh WL for one case, its tables already created (as the driver's sink would
    create them) so that drivers starting together do not race to create them."""
    if sink == "sqlite":
        path = out / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        target = f"sqlite:///{path}"
    else:
        target = dsn(dbs.wl)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_rows, bench_big")
    with psycopg.connect(dsn(dbs.mdb)) as mdb:
        tables = tables_from_rows(mdb.execute("SELECT * FROM wlsync.tracked_columns()").fetchall())
    wl = open_sink(target)
    try:
        wl.ensure_tables(tables)
    finally:
        wl.close()
    return target


def wl_count(target: str, table: str) -> int:
    if target.startswith("sqlite:///"):
        db = sqlite3.connect(target[len("sqlite:///"):])
        try:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            db.close()
    with psycopg.connect(target) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


SYNCED = re.compile(r"synced (\d+) events \((\d+) keys\) in ([0-9.]+) ms")


def parse_driver_log(path: Path) -> list[tuple[float, float, int, int]]:
    """(start, end, events, keys) of every batch a driver logged (--log-json), in epoch seconds."""
    batches = []
    for line in path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        match = SYNCED.match(entry.get("msg", ""))
        if match:
            end = datetime.fromisoformat(entry["ts"]).timestamp()
            batches.append((end - float(match.group(3)) / 1000, end, int(match.group(1)), int(match.group(2))))
    return batches


STARTED: list[subprocess.Popen] = []  # every driver this run started, killed at exit if still running


def start_driver(source: str, target: str, log_path: Path, *args: str) -> subprocess.Popen:
    log_file = open(log_path, "w")
    try:
        STARTED.append(subprocess.Popen([PY, str(DRIVER), "--log-json", "run", "--source", source, "--target", target, *args],
                                        stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT))
        return STARTED[-1]
    finally:
        log_file.close()


# --------------------------------------------------------------------------- 2./3. drain

def drain_with_drivers(cfg: Config, dbs: Databases, out: Path, conn, sink: str, drivers: int, batch: int,
                       run: int) -> dict:
    events = cfg.drain_events[batch]
    queued = prefill(conn, "bench_rows", events // 2, 2)
    name = f"drain_{sink}_d{drivers}_b{batch}_r{run}"
    target = target_url(sink, dbs, out, name)
    started = time.time()
    procs = [start_driver(dsn(dbs.mdb), target, out / f"{name}_{i}.log", "--once", "--batch", str(batch))
             for i in range(drivers)]
    capped = wait_all(procs, cfg.drain_cap)
    wall = time.time() - started
    codes = [p.returncode for p in procs]
    if any(codes):
        raise RuntimeError(f"{name}: driver exit codes {codes}, see {out}/{name}_*.log")
    left = queue_count(conn)
    batches = [b for i in range(drivers) for b in parse_driver_log(out / f"{name}_{i}.log")]
    synced, keys = sum(b[2] for b in batches), sum(b[3] for b in batches)
    # Two drivers may each take an event of one key (WL keeps the newer read), so
    # keys are checked against WL only as distinct keys of a complete drain.
    if synced + left != queued or (left and not capped) or (not capped and wl_count(target, "bench_rows") != queued // 2):
        raise RuntimeError(f"{name}: {queued} queued, {synced} synced, {left} left in the queue")
    # From the first claim's start to the last commit: process start-up and connecting excluded.
    elapsed = max(b[1] for b in batches) - min(b[0] for b in batches)
    rate = synced / elapsed
    log(f"drain {sink} drivers={drivers} batch={batch} run {run}: {synced}/{queued} events in {elapsed:.2f} s "
        f"= {rate:,.0f} events/s (wall incl. start-up {wall:.2f} s){' CAPPED' if capped else ''}")
    return {"sink": sink, "drivers": drivers, "batch": batch, "run": run, "events": queued, "synced": synced,
            "capped": capped, "seconds": elapsed, "wall_seconds": wall, "events_per_s": rate,
            "keys_per_s": keys / elapsed}


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


def claim_alone(cfg: Config, dbs: Databases, conn, batch: int, run: int) -> dict:
    """BEGIN; SELECT * FROM wlsync.claim_sync_events(batch); COMMIT in a loop: no sink at all."""
    queued = prefill(conn, "bench_rows", cfg.drain_events[batch] // 2, 2)
    events, capped = 0, False
    with psycopg.connect(dsn(dbs.mdb)) as claimer:
        started = time.perf_counter()
        while True:
            rows = claimer.execute("SELECT events, * FROM wlsync.claim_sync_events(%s)", [batch]).fetchall()
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
    log(f"claim alone batch={batch} run {run}: {events}/{queued} events in {elapsed:.2f} s = "
        f"{events / elapsed:,.0f} events/s{' CAPPED' if capped else ''}")
    return {"batch": batch, "run": run, "events": queued, "synced": events, "capped": capped, "seconds": elapsed,
            "events_per_s": events / elapsed}


def baseline(cfg: Config, dbs: Databases, out: Path, conn, run: int) -> dict:
    """The original demo's loop: one event per claim (LIMIT 1 ... FOR UPDATE SKIP LOCKED in a
    subquery of a DELETE ... RETURNING), one thread, re-read the row, write it to SQLite,
    commit WL, commit MDB. Same table, same queue (the head of a queue of baseline_queue events)."""
    prefill(conn, "bench_rows", cfg.baseline_queue // 2, 2)
    queue = current_queue(conn)
    path = out / f"baseline_r{run}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    wl = sqlite3.connect(path, isolation_level=None)
    wl.execute("PRAGMA journal_mode = WAL")
    wl.execute("PRAGMA synchronous = FULL")  # the same durability as wlsync's SQLite sink
    wl.execute("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, counter INTEGER, note TEXT)")
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
            row = mdb.execute("SELECT id, counter, note FROM bench_rows WHERE id = %s",
                              [int(claimed[1]["id"])]).fetchone()
            wl.execute("BEGIN")
            if row is None:
                wl.execute("DELETE FROM bench_rows WHERE id = ?", [int(claimed[1]["id"])])
            else:
                wl.execute("INSERT INTO bench_rows (id, counter, note) VALUES (?, ?, ?) ON CONFLICT (id) "
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
    raw_drain, raw_claim, raw_base = [], [], []
    with psycopg.connect(dsn(dbs.mdb), autocommit=True) as conn:
        conn.execute("SELECT wlsync.track('bench_rows')")
        for run in range(1, cfg.runs + 1):
            raw_base.append(baseline(cfg, dbs, out, conn, run))
            for batch in cfg.claim_batches:
                raw_claim.append(claim_alone(cfg, dbs, conn, batch, run))
            for sink in cfg.drain_sinks:
                for drivers in cfg.drain_drivers:
                    for batch in cfg.drain_batches:
                        raw_drain.append(drain_with_drivers(cfg, dbs, out, conn, sink, drivers, batch, run))
        conn.execute(f"TRUNCATE {QUEUE_TABLES}")
    drain = []
    for sink in cfg.drain_sinks:
        for drivers in cfg.drain_drivers:
            for batch in cfg.drain_batches:
                mine = [r for r in raw_drain if (r["sink"], r["drivers"], r["batch"]) == (sink, drivers, batch)]
                drain.append({"sink": sink, "drivers": drivers, "batch": batch, "events": cfg.drain_events[batch],
                              "capped_runs": sum(r["capped"] for r in mine),
                              "drained_pct": summary([100 * r["synced"] / r["events"] for r in mine]),
                              "events_per_s": summary([r["events_per_s"] for r in mine]),
                              "keys_per_s": summary([r["keys_per_s"] for r in mine])})
    claims = [{"batch": b, "events": cfg.drain_events[b],
               "capped_runs": sum(r["capped"] for r in raw_claim if r["batch"] == b),
               "drained_pct": summary([100 * r["synced"] / r["events"] for r in raw_claim if r["batch"] == b]),
               "events_per_s": summary([r["events_per_s"] for r in raw_claim if r["batch"] == b])}
              for b in cfg.claim_batches]
    base_by_run = {r["run"]: r["events_per_s"] for r in raw_base}
    ratios = []
    for sink in cfg.drain_sinks:
        for drivers in cfg.drain_drivers:
            for batch in cfg.drain_batches:
                mine = [r for r in raw_drain if (r["sink"], r["drivers"], r["batch"]) == (sink, drivers, batch)]
                ratios.append({"sink": sink, "drivers": drivers, "batch": batch,
                               "x_baseline": summary([r["events_per_s"] / base_by_run[r["run"]] for r in mine])})
    return {"drain": drain, "claim_alone": claims,
            "baseline": {"events": cfg.baseline_events, "queue": cfg.baseline_queue,
                         "drained": summary([r["events"] for r in raw_base]),
                         "events_per_s": summary([r["events_per_s"] for r in raw_base])},
            "ratios": ratios, "default_batch": cfg.default_batch, "cap": cfg.drain_cap,
            "raw": {"drain": raw_drain, "claim_alone": raw_claim, "baseline": raw_base}}


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


def latency_run(cfg: Config, dbs: Databases, out: Path, conn, notify: bool, run: int) -> dict:
    """A driver listening; a writer commits ~rate single-row UPDATEs a second (one per
    transaction); a poller reads WL until each committed value shows up."""
    conn.execute(f"TRUNCATE {QUEUE_TABLES}")
    conn.execute("DROP TRIGGER IF EXISTS bench_keep_disarmed ON wlsync.capture_state")
    if not notify:
        conn.execute(KEEP_DISARMED)
    sweep = 60.0 if notify else cfg.latency_sweep  # with NOTIFY: the driver's default sweep
    name = f"latency_{'notify' if notify else 'sweep'}_r{run}"
    target = target_url("sqlite", dbs, out, name)
    driver = start_driver(dsn(dbs.mdb), target, out / f"{name}.log", "--sweep-interval", str(sweep))
    wl_path = target[len("sqlite:///"):]
    pending: dict[int, list] = {}   # key -> [value, commit time or None]
    lock = threading.Lock()
    latencies: list[float] = []
    done = threading.Event()
    run_base = run * 10_000_000 + (0 if notify else 5_000_000)

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
    result = {"notify": notify, "run": run, "sweep_interval": sweep, "changes": changes,
              "measured": len(latencies), "not_seen": lost,
              "p50_ms": 1000 * percentile(latencies, 50), "p95_ms": 1000 * percentile(latencies, 95),
              "p99_ms": 1000 * percentile(latencies, 99), "max_ms": 1000 * max(latencies)}
    log(f"latency {'notify' if notify else 'sweep-only'} run {run}: p50 {result['p50_ms']:.2f} ms, "
        f"p95 {result['p95_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.1f} ms "
        f"({len(latencies)} changes)")
    return result


def section_latency(cfg: Config, dbs: Databases, out: Path) -> dict:
    raw = []
    with psycopg.connect(dsn(dbs.mdb), autocommit=True) as conn:
        conn.execute("SELECT wlsync.track('bench_rows')")
        for run in range(1, cfg.runs + 1):
            for notify in (True, False):
                raw.append(latency_run(cfg, dbs, out, conn, notify, run))
    results = []
    for notify in (True, False):
        mine = [r for r in raw if r["notify"] == notify]
        results.append({"notify": notify, "sweep_interval": mine[0]["sweep_interval"],
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


def health_run(cfg: Config, dbs: Databases, out: Path, conn, long_txn: bool, run: int) -> dict:
    queued = prefill(conn, "bench_big", cfg.health_events, 1)
    name = f"health_{'rr' if long_txn else 'plain'}_r{run}"
    target = target_url("sqlite", dbs, out, name)
    holder = None
    if long_txn:  # an idle REPEATABLE READ transaction with a snapshot, held for the whole drain
        holder = psycopg.connect(dsn(dbs.mdb))
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM bench_rows WHERE id = 1").fetchone()
    samples = []
    monitor_conn = psycopg.connect(dsn(dbs.mdb), autocommit=True)
    driver = start_driver(dsn(dbs.mdb), target, out / f"{name}.log", "--once", "--batch", str(cfg.default_batch))
    started = time.time()
    hwm = 0
    stopped_early = False
    timeout = cfg.health_timeout_long if long_txn else cfg.health_timeout
    rusage = None
    while True:
        pid_done, status, rusage = os.wait4(driver.pid, os.WNOHANG)
        if pid_done:
            driver.returncode = os.waitstatus_to_exitcode(status)
            break
        mem = proc_status(driver.pid)
        hwm = max(hwm, mem.get("VmHWM", 0))
        stats = monitor_conn.execute(QUEUE_STATS).fetchone()
        samples.append({"t": time.time(), "total_bytes": stats[0], "heap_bytes": stats[1], "dead": stats[2],
                        "autovacuums": stats[3], "rss_kb": mem.get("VmRSS")})
        if not stopped_early and time.time() - started > timeout:
            log(f"{name}: still draining after {timeout:.0f} s: stopping the driver (partial result)")
            driver.send_signal(signal.SIGTERM)
            stopped_early = True
        time.sleep(0.5)
    final = monitor_conn.execute(
        QUEUE_STATS).fetchone()[::2]
    exact_dead = None
    try:  # exact count (a scan of the queue), before the long transaction ends
        exact_dead = monitor_conn.execute(
            "SELECT sum((pgstattuple(q)).dead_tuple_count) FROM unnest(ARRAY['wlsync.queue_0', 'wlsync.queue_1', "
            "'wlsync.queue_2']) AS q").fetchone()[0]
    except psycopg.Error:
        pass
    if holder is not None:
        holder.rollback()
        holder.close()
    monitor_conn.close()
    if driver.returncode != 0:
        raise RuntimeError(f"{name}: driver exit code {driver.returncode}, see {out}/{name}.log")
    batches = sorted(parse_driver_log(out / f"{name}.log"), key=lambda b: b[1])
    synced = sum(b[2] for b in batches)
    peak_rss_kb = max(hwm, rusage.ru_maxrss if rusage else 0)  # ru_maxrss is in KiB on Linux
    # per-window throughput: time at which the cumulative count crossed each window boundary
    windows, done_events, window_start = [], 0, batches[0][0] if batches else started
    boundary = cfg.health_window
    for b in batches:
        done_events += b[2]
        while done_events >= boundary:
            at = [s for s in samples if s["t"] <= b[1]]
            sample = at[-1] if at else samples[0]
            windows.append({"upto": boundary, "events_per_s": cfg.health_window / (b[1] - window_start),
                            "queue_total_bytes": sample["total_bytes"], "dead_tuples": sample["dead"]})
            window_start, boundary = b[1], boundary + cfg.health_window
    elapsed = batches[-1][1] - batches[0][0] if batches else 0
    result = {"long_txn": long_txn, "run": run, "queued": queued, "synced": synced,
              "complete": synced == queued and not stopped_early, "seconds": elapsed,
              "events_per_s": synced / elapsed if elapsed else None, "peak_rss_mb": peak_rss_kb / 1024,
              "windows": windows, "max_dead_tuples": max((s["dead"] for s in samples), default=None),
              "max_total_bytes": max((s["total_bytes"] for s in samples), default=None),
              "final_total_bytes": final[0], "final_dead_tuples": final[1], "final_dead_exact": exact_dead,
              "autovacuums": (samples[-1]["autovacuums"] - samples[0]["autovacuums"]) if samples else None}
    log(f"health {'with' if long_txn else 'without'} long txn run {run}: {synced}/{queued} events in "
        f"{elapsed:.1f} s, windows " + ", ".join(f"{w['events_per_s']:,.0f}" for w in windows)
        + f" events/s, max dead {result['max_dead_tuples']}, peak RSS {result['peak_rss_mb']:.1f} MB")
    return result


def section_health(cfg: Config, dbs: Databases, out: Path) -> dict:
    raw = []
    with psycopg.connect(dsn(dbs.mdb), autocommit=True) as conn:
        conn.execute("SELECT wlsync.track('bench_big')")
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        except psycopg.Error as exc:
            log(f"pgstattuple unavailable ({exc}): dead tuples from pg_stat_user_tables only")
        for run in range(1, cfg.runs + 1):
            for long_txn in (False, True):
                raw.append(health_run(cfg, dbs, out, conn, long_txn, run))
        conn.execute(f"TRUNCATE {QUEUE_TABLES}")
    results = []
    for long_txn in (False, True):
        mine = [r for r in raw if r["long_txn"] == long_txn]
        count = max(len(r["windows"]) for r in mine)
        windows = []
        for i in range(count):
            ws = [r["windows"][i] for r in mine if len(r["windows"]) > i]
            windows.append({"upto": ws[0]["upto"], "runs": len(ws),
                            "events_per_s": summary([w["events_per_s"] for w in ws]),
                            "queue_total_bytes": summary([w["queue_total_bytes"] for w in ws]),
                            "dead_tuples": summary([w["dead_tuples"] for w in ws])})
        results.append({"long_txn": long_txn, "complete_runs": sum(r["complete"] for r in mine),
                        "events_per_s": summary([r["events_per_s"] for r in mine]),
                        "seconds": summary([r["seconds"] for r in mine]),
                        "peak_rss_mb": summary([r["peak_rss_mb"] for r in mine]),
                        "max_dead_tuples": summary([r["max_dead_tuples"] for r in mine]),
                        "max_total_bytes": summary([r["max_total_bytes"] for r in mine]),
                        "final_total_bytes": summary([r["final_total_bytes"] for r in mine]),
                        "final_dead_exact": summary([r["final_dead_exact"] for r in mine]),
                        "autovacuums": summary([r["autovacuums"] for r in mine]),
                        "windows": windows})
    return {"events": cfg.health_events, "window": cfg.health_window, "batch": cfg.default_batch,
            "timeout": cfg.health_timeout, "timeout_long": cfg.health_timeout_long, "results": results, "raw": raw}


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
                             "max_wal_size", "autovacuum_naptime")}
    return {"cpu": first(r"^model name\s*:\s*(.*)$", "/proc/cpuinfo"), "cores": os.cpu_count(),
            "memory_gib": round(int(first(r"^MemTotal:\s*(\d+)", "/proc/meminfo")) / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "psycopg": psycopg.__version__, "sqlite": sqlite3.sqlite_version, "postgres": settings,
            "load_before": os.getloadavg()}


SECTIONS = ["overhead", "drain", "latency", "health"]


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
    dbs = Databases(os.environ.get("BENCH_DB_PREFIX", "wlsync_bench_"))
    results = {"mode": args.mode, "config": asdict(cfg), "sections": sections,
               "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(dbs),
               "durations": {}}
    log(f"wlsync bench, mode {args.mode}, sections {','.join(sections)}; raw output in {out}")
    total = time.monotonic()
    try:
        if any(s in sections for s in ("drain", "latency", "health")):
            dbs.recreate(dbs.mdb)
            create_mdb(dbs.mdb, cfg.table_rows, cfg.health_events if "health" in sections else 0)
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
