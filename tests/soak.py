"""The soak run: writer processes, driver processes killed at random, an observer on WL."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.driver_helpers import DriverProcess, run_cli, wait_until, wl_rows, wl_table
from tests.soak_writer import ITEM_KEYS, PAIR_AS, PAIR_BS
from wlsync_sinks import open_sink

SCHEMA = """
CREATE TABLE soak_items (id int PRIMARY KEY, version bigint NOT NULL, payload text);
CREATE TABLE soak_pairs (a int, b text, version bigint NOT NULL, PRIMARY KEY (a, b));
CREATE TABLE soak_log (id bigserial PRIMARY KEY, writer int NOT NULL);
CREATE TABLE soak_clock (k text PRIMARY KEY, v bigint NOT NULL DEFAULT 0);  -- not tracked
SELECT wlsync.track('soak_items'), wlsync.track('soak_pairs'), wlsync.track('soak_log');
"""


SOAK_ITEMS = wl_table("soak_items", [("id", "integer"), ("version", "bigint")], pk=["id"])
SOAK_PAIRS = wl_table("soak_pairs", [("a", "integer"), ("b", "text"), ("version", "bigint")], pk=["a", "b"])
SOAK_LOG = wl_table("soak_log", [("id", "bigint")], pk=["id"])


@dataclass
class Observer:
    """Polls WL; records every time a row shows an older version than already seen,
    or comes back after a delete with a version not newer than before."""
    target: str
    seen: dict = field(default_factory=dict)       # key -> highest version seen
    deleted: set = field(default_factory=set)      # keys seen gone after being seen
    violations: list = field(default_factory=list)
    polls: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def check(self, rows: dict) -> None:
        for key, version in rows.items():
            last = self.seen.get(key)
            if last is not None and (version < last or (key in self.deleted and version <= last)):
                self.violations.append((key, last, version, key in self.deleted))
            self.seen[key] = max(version, last or version)
            self.deleted.discard(key)
        for key in self.seen.keys() - rows.keys():
            self.deleted.add(key)

    def run(self) -> None:
        # Every key the writers can touch is read by key, each poll: one atomic read per
        # key is what the never-backwards rule needs. Listing keys would not do: it is
        # no snapshot in every store (NATS lists a bucket by walking its stream while
        # drivers rewrite keys, and a key rewritten meanwhile moves behind the walk), so
        # a key missing from a listing is no proof that WL deleted it.
        items = [{"id": str(i)} for i in range(1, ITEM_KEYS + 1)]
        pairs = [{"a": str(a), "b": b} for a in range(1, PAIR_AS + 1) for b in PAIR_BS]
        sink = open_sink(self.target)
        try:
            while not self.stop.is_set():
                found = zip(items, sink.rows_by_key(SOAK_ITEMS, items), strict=True)
                rows = {("i", pk["id"]): int(row["version"]) for pk, row in found if row is not None}
                found = zip(pairs, sink.rows_by_key(SOAK_PAIRS, pairs), strict=True)
                rows.update({("p", pk["a"], pk["b"]): int(row["version"]) for pk, row in found if row is not None})
                self.check(rows)
                self.polls += 1
                time.sleep(0.01)
        finally:
            sink.close()


def run_soak(mdb: psycopg.Connection, dsn: str, target: str, workdir: Path, seconds: float,
             writers: int, drivers: int, kill_every: float, seed: int = 7, driver_args: tuple = ()) -> dict:
    rng = random.Random(seed)
    mdb.execute(SCHEMA)
    mdb.execute("INSERT INTO soak_clock SELECT 'i:' || g || ':' FROM generate_series(1, %s) g", [ITEM_KEYS])
    mdb.execute("INSERT INTO soak_clock SELECT 'p:' || a || ':' || b FROM generate_series(1, %s) a, unnest(%s::text[]) b",
                [PAIR_AS, PAIR_BS])
    observer = Observer(target)
    watcher = threading.Thread(target=observer.run, daemon=True)
    running = [DriverProcess(dsn, target, workdir / f"driver{n}.log", "--batch", "20", "--sweep-interval", "1", *driver_args)
               for n in range(drivers)]
    kills = 0
    writer_procs = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("soak_writer.py")), dsn,
                                      str(seed * 100 + n), str(seconds)], stdout=subprocess.PIPE, text=True)
                    for n in range(writers)]
    watcher.start()
    try:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(rng.uniform(0.5, 1.5) * kill_every)
            victim = rng.randrange(drivers)
            running[victim].kill() if not os.environ.get("NOKILL") else None
            running[victim].stop()
            kills += 1
            running[victim] = DriverProcess(dsn, target, workdir / f"driver{victim}.{kills}.log",
                                            "--batch", "20", "--sweep-interval", "1", *driver_args)
        totals = [json.loads(p.communicate(timeout=60)[0]) for p in writer_procs]
        wait_until(lambda: mdb.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0, timeout=60,
                   message="the queue to drain")
        time.sleep(0.1)
    finally:
        observer.stop.set()
        watcher.join(10)
        for process in running:
            process.stop()
    committed = sum(t["committed"] for t in totals)
    verify = run_cli("verify", "--source", dsn, "--target", target)
    return {
        "committed": committed,
        "rolled_back": sum(t["rolled_back"] for t in totals),
        "wl_log_rows": len(wl_rows(target, SOAK_LOG)),
        "mdb_log_rows": mdb.execute("SELECT count(*) FROM soak_log").fetchone()[0],
        "events": mdb.execute("SELECT sum(n_tup_ins) FROM pg_stat_user_tables WHERE schemaname = 'wlsync' "
                              "AND relname IN ('queue_0', 'queue_1', 'queue_2')").fetchone()[0],
        "kills": kills,
        "observer_polls": observer.polls,
        "violations": observer.violations,
        "verify_code": verify.returncode,
        "verify_output": verify.stdout[-2000:],
    }
