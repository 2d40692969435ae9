"""wlsync driver: keeps WL's copy of MDB's tracked tables in sync.

    python wlsync_driver.py run    --source URL --target URL [--consumer NAME] [--sink-class M:C] [--batch N]
                                   [--sweep-interval S] [--once] [--consistent] [--metrics-port PORT [--metrics-host HOST]]
    python wlsync_driver.py status --source URL [--consumer NAME] [--json]
    python wlsync_driver.py verify --source URL --target URL [--consumer NAME] [--sink-class M:C] [--repair]
    python wlsync_driver.py backfill --source URL [--consumer NAME] [--table T ...] [--chunk N]
    python wlsync_driver.py migrate --source URL

One cycle: BEGIN on MDB; rows := wlsync.claim_sync_events(batch); write them to
WL and commit WL; COMMIT MDB. Events vanish from MDB's queue only after WL has
them; a crash in between redelivers them, and applying them again is harmless.
With --consistent, one cycle is one MDB snapshot: every event it sees, claimed
in chunks on a REPEATABLE READ transaction and written as one WL commit.
The intelligence is in MDB's wlsync.* functions; this file only calls them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import select
import signal
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import orjson
import psycopg
from psycopg import sql
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

import wlsync_verify
from wlsync_db import UserError, check_schema, connect, one_line, source_dsn
from wlsync_metrics import BatchSummary, DriverMetrics, summarize
from wlsync_progress import Progress
from wlsync_sinks import Sink, SinkError, TargetError, open_sink, tables_from_rows

log = logging.getLogger("wlsync")

DEFAULT_BATCH = 1000
DEFAULT_TARGET = "sqlite:///wl.db"
CHANNEL = "wlsync_v1"
MAINTAIN_EVERY = 1.0  # seconds between calls of wlsync.maintain_queue (rotate, seal, TRUNCATE the ring)
REARM_AFTER = 5.0     # seconds after disarming the wake-up before a driver arms it again
BUSY_EVENTS_PER_S = 1000  # above this rate the wake-up is disarmed: NOTIFY would cost writers more than it saves
POLL_INTERVAL = 0.05  # seconds between claims while the wake-up is not armed
GATHER_INTERVAL = 0.1  # busy, with small batches: seconds to let events gather before the next claim
ONCE_MAX_RETRIES = 5  # run --once gives up (exit 1) after this many failed attempts in a row
STANDBY_INTERVAL = 2.0  # --consistent: seconds between attempts to take the drain lock another driver holds
SNAPSHOT_RETRIES = 20  # --consistent: snapshot batches in a row that may race a fan-out before it counts as a failure
WORK_EVERY = 10.0  # seconds between looks at the consumer's other work (wlsync.consumer_work)
FAN_OUT = 10000    # events per wlsync.fan_out call (several consumers): ten batches' worth
BACKFILL_CHUNK = 50000  # keys per committed backfill call (the CLI's default --chunk)
GIL_SWITCH_INTERVAL = 0.001  # seconds a thread may hold the GIL while the other waits (Python's default 0.005)
DEFAULT_CONSUMER = "default"


class JsonbLoader(Loader):
    """jsonb by orjson, called directly: psycopg's set_json_loads(orjson.loads) wraps
    each value in a Python call that copies it first (a tenth of a claim's decoding)."""
    load = staticmethod(orjson.loads)


class Backoff:
    """Capped exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to `cap`."""

    def __init__(self, base: float = 0.5, cap: float = 30.0):
        self.base, self.cap, self.attempt = base, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.base * 2 ** self.attempt)
        self.attempt += 1
        return delay / 2 + random.uniform(0, delay / 2)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Claimed:
    """A claimed batch: its rows, and the MDB connection whose transaction holds them."""
    conn: psycopg.Connection
    rows: list[dict]
    started: float   # time.monotonic() when the claim began
    deadline: float  # WL must not commit after this (the claim's timeouts)


class Driver:
    def __init__(self, dsn: str, sink: Sink, batch: int, sweep_interval: float, once: bool,
                 claim_timeout: float, max_attempts: int, metrics: DriverMetrics | None = None,
                 consistent: bool = False, consumer: str = DEFAULT_CONSUMER):
        self.dsn, self.sink, self.batch, self.consistent = dsn, sink, batch, consistent
        self.consumer = consumer
        self.metrics = metrics or DriverMetrics()
        self.sweep_interval, self.once, self.claim_timeout = sweep_interval, once, claim_timeout
        self.max_attempts = max_attempts
        self.stopping = False
        self.synced_events = 0
        self.claims: psycopg.Connection | None = None  # claims, maintenance, the first batch
        self.spare: psycopg.Connection | None = None   # the batch claimed ahead (see drain)
        self.ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="claim-ahead")
        self.listener: psycopg.Connection | None = None
        self.known_columns: dict[tuple[str, str], set[str]] = {}
        self.backoff = Backoff()  # reset by every batch that syncs
        self.maintained_at = 0.0    # time.monotonic() of the last wlsync.maintain_queue
        self.armed = False          # whether capture functions NOTIFY us (wlsync.arm_wakeup)
        self.rate_window = (time.monotonic(), 0)  # (start, events synced since) for BUSY_EVENTS_PER_S
        self.disarmed_at = -REARM_AFTER
        self.waiting_for: str | None = None  # --consistent: why MDB says not to claim now, as last logged
        self.fanning = True  # whether wlsync.fan_out has work (several consumers); rechecked with maintenance
        self.worked_at = -WORK_EVERY  # time.monotonic() of the last look at wlsync.consumer_work
        self.once_since: datetime | None = None  # --once: MDB's now() as it began (see drain)
        # Fault injection for the crash and ordering tests: sleep with the batch
        # claimed, before its WL write or between WL's commit and MDB's.
        self.pause_at = os.environ.get("WLSYNC_TEST_PAUSE_AT")
        self.pause_seconds = float(os.environ.get("WLSYNC_TEST_PAUSE_SECONDS", "0"))
        # Signals wake the select() in wait() through this pipe.
        self.wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        os.set_blocking(self.wake_read, False)
        signal.set_wakeup_fd(wake_write)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.stop)

    def stop(self, signum, _frame) -> None:
        log.info("received %s: finishing the batch in hand, then exiting", signal.Signals(signum).name)
        self.stopping = True

    # -- connections ------------------------------------------------------------------

    def connect(self) -> None:
        self.claims = self.claim_connection()
        check_schema(self.claims, self.dsn)
        # Fencing versions must stay above what WL has seen, even after MDB was
        # restored from a backup: WL would refuse every write as stale.
        self.claims.execute("SELECT wlsync.raise_claim_version(%s)", [self.sink.max_version()])
        if self.consistent and not self.take_drain_lock():
            return  # stopped while standing by
        self.work(self.claims, force=True)  # a new consumer's backfill, a resync: before draining
        self.listener = connect(self.dsn, autocommit=True, application_name="wlsync_driver_listen")
        self.listener.execute(f"LISTEN {CHANNEL}")
        self.metrics.connected()

    def take_drain_lock(self) -> bool:
        """--consistent: hold MDB's consistent drain lock on the claim connection
        for as long as it lives (wlsync.lock_consistent_drain); while another
        driver holds it, stand by. False when stopped before getting it."""
        holder = None
        while not self.stopping:
            now = self.claims.execute("SELECT wlsync.lock_consistent_drain(%s) AS holder",
                                      [self.consumer]).fetchone()["holder"]
            if now is None:
                if holder is not None:
                    log.info("took over the consistent drain")
                return True
            if now != holder:
                log.info("standing by: MDB's consistent drain of consumer %s is held by %s", self.consumer, now)
            holder = now
            self.wait_for(STANDBY_INTERVAL, listening=False)
        return False

    def claim_connection(self) -> psycopg.Connection:
        conn = connect(self.dsn, autocommit=True, row_factory=dict_row, application_name="wlsync_driver")
        conn.adapters.register_loader("jsonb", JsonbLoader)  # every claimed key and row is jsonb
        # MDB's warnings (a dropped malformed queue row, ...) belong in our log.
        conn.add_notice_handler(
            lambda diag: log.warning("MDB says: %s", diag.message_primary)
            if diag.severity_nonlocalized == "WARNING" else None)
        # Bound the claim transaction: a hung WL must not hold MDB's rows forever.
        timeout_ms = int(self.claim_timeout * 1000)
        conn.execute(f"SET idle_in_transaction_session_timeout = {timeout_ms}")
        conn.execute(f"SET statement_timeout = {timeout_ms}")
        conn.execute("SET lock_timeout = '10s'")
        # Each claimed row's enqueued_at decodes in half the time in plain 'UTC': psycopg
        # converts a timestamp to the session's zone, and any other zone (a server's
        # 'Etc/UTC' included) goes through zoneinfo per value (0.8 against 1.7 ms per
        # 1,000 rows, bench/analysis.md). Rows' values are rendered in UTC by MDB anyway.
        conn.execute("SET TimeZone = 'UTC'")
        # A claim's commit need not wait for its WAL flush: one lost in a crash of
        # MDB (or a failover) leaves its events queued, and they are delivered
        # again (WL's fence makes that harmless; every driver reconnects and lifts
        # the versions above WL's, wlsync.raise_claim_version). Writers' commits
        # then stop sharing the disk's flushes with every batch, and the batch's
        # MDB commit stops waiting for one. PostgreSQL still flushes at once any
        # commit that drops files (maintain_queue's TRUNCATE).
        conn.execute("SET synchronous_commit = off")
        return conn

    def close(self) -> None:
        for conn in (self.claims, self.spare, self.listener):
            if conn is not None:
                conn.close()
        self.claims = self.spare = self.listener = None

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        """Drain until stopped (or, with --once, until caught up: see drain)."""
        self.connect()  # errors of the first connection are the user's: reported, exit 2
        while True:
            try:
                if self.claims is None:
                    self.connect()
                if not self.stopping:
                    self.serve()
                return 0
            except (psycopg.OperationalError, UserError) as exc:
                problem = f"MDB unavailable ({exc if isinstance(exc, UserError) else one_line(exc)})"
                self.metrics.failed("mdb")
            except SinkError as exc:  # sinks raise nothing else: a WL failure never reads as MDB's
                problem = f"WL failed ({exc})"
                self.metrics.failed("wl")
            self.close()
            if self.stopping:
                return 0
            if self.once and self.backoff.attempt >= ONCE_MAX_RETRIES:
                log.error("%s; giving up after %d retries", problem, self.backoff.attempt)
                return 1
            delay = self.backoff.next()
            log.warning("%s; retrying in %.1f s", problem, delay)
            self.wait_for(delay, listening=False)

    def serve(self) -> None:
        if self.once and self.once_since is None:
            self.once_since = self.claims.execute("SELECT now() AS now").fetchone()["now"]
        self.drain()  # after every (re)connect: notifications sent while away are lost
        if self.once:
            self.maintain(self.claims, force=True)  # TRUNCATE what this drain emptied, before exiting
        while not self.stopping and not self.once:
            # The queue looked empty. Arming the wake-up rewrites every capture
            # function (wlsync.arm_wakeup), so a driver that just disarmed it
            # because it was busy polls for a while instead of flapping.
            self.armed = (time.monotonic() - self.disarmed_at >= REARM_AFTER and
                          self.listener.execute("SELECT wlsync.arm_wakeup(%s * interval '1 second')",
                                                [2 * self.sweep_interval]).fetchone()[0])
            # Re-check: a change committed while we armed did not notify.
            if not self.drain():
                self.wait_for(self.sweep_interval if self.armed else POLL_INTERVAL, listening=self.armed)
            self.drain()

    def drain(self) -> int:
        """Sync batches until a claim comes back empty (with --once, or short of
        a batch with only events enqueued after it began); returns the events synced.

        Under a backlog (a claim came back full) the next batch is claimed on the
        spare connection while WL writes this one: MDB reads rows while WL
        writes, on two cores instead of one after the other. The two batches
        are two claims, as of two drivers: SKIP LOCKED keeps their events
        apart, and WL's fencing keeps a key from going back (README, "Per-key
        rule")."""
        if self.consistent:
            return self.drain_snapshots()
        total = 0
        ahead: Future | None = None
        free = self.claims  # the claim connection not busy with the batch claimed ahead
        try:
            while not self.stopping or ahead is not None:
                if ahead is None:
                    batch = self.claim(free)
                else:
                    batch, ahead = ahead.result(), None
                if not batch.rows:
                    batch.conn.execute("COMMIT")
                    self.maintain(batch.conn)
                    break
                full = sum(r["events"] for r in batch.rows) >= self.batch
                if full and not self.stopping:
                    if self.spare is None:  # opened at the first backlog: an idle driver holds two connections
                        self.spare = self.claim_connection()
                    ahead = self.ahead.submit(self.claim, self.spare if batch.conn is self.claims else self.claims)
                synced = self.sync_batch(batch)
                free = batch.conn
                # After the batch, not before the claim: the change that woke
                # the driver does not wait for a maintenance that falls due.
                self.maintain(free)
                total += synced
                if self.once and not full and all(r["enqueued_at"] >= self.once_since for r in batch.rows):
                    # Caught up: the claim took all it found (short of a batch:
                    # every slot scanned, wrapped around), and all of it came
                    # after --once began. Under continuous writes the queue is
                    # never empty; --once ends here all the same. Neither test
                    # alone will do: keys held back by a dead letter shorten a
                    # claim of older events, and a claim of new events may be
                    # full while older ones wait behind its scan's start.
                    break
                self.pace(synced, gather=ahead is None)
        finally:
            if ahead is not None:  # failing: the batch claimed ahead goes back to the queue
                try:
                    rollback(ahead.result().conn)
                except psycopg.Error:
                    pass  # its claim failed: claim() rolled it back, or MDB did
        return total

    def drain_snapshots(self) -> int:
        """--consistent: sync snapshot batches until one finds nothing to take."""
        total, raced = 0, 0
        while not self.stopping:
            self.maintain(self.claims)
            try:
                synced = self.sync_snapshot()
            except psycopg.errors.SerializationFailure as exc:
                # Another consumer's fan-out took writers' events under this
                # snapshot (README, "Consumers"): both sides rolled back, again.
                raced += 1
                if raced > SNAPSHOT_RETRIES:
                    raise
                log.info("consistent batch raced a fan-out (%s); retrying", one_line(exc))
                continue
            raced = 0
            if not synced:
                break
            total += synced
            if self.once:
                break  # a snapshot batch took every event its snapshot saw: caught up
            self.pace(synced, gather=True)
        return total

    def pace(self, synced: int, gather: bool) -> None:
        """After a batch: stop wake-ups while busy, and let events gather when
        claims come back small under load."""
        busy = self.busy(synced)
        if self.armed and busy:
            # Notifications are useless now, and every notifying writer
            # takes NOTIFY's global lock at commit: writers would commit
            # one at a time. Poll instead for a while.
            self.listener.execute("SELECT wlsync.disarm_wakeup()")
            self.armed, self.disarmed_at = False, time.monotonic()
        if gather and busy and synced < self.batch // 10 and not self.once:
            # Many small claims cost MDB more per event than a few larger
            # ones: under load, let events gather a moment (not with
            # --once, which is to end as soon as the queue looks empty).
            self.wait_for(GATHER_INTERVAL, listening=False)

    def busy(self, synced: int) -> bool:
        """Whether events arrive faster than BUSY_EVENTS_PER_S (over the last second or so)."""
        started, events = self.rate_window
        events += synced
        elapsed = time.monotonic() - started
        if elapsed >= 1.0:
            self.rate_window = (time.monotonic(), 0)
        else:
            self.rate_window = (started, events)
        return synced >= self.batch or events > BUSY_EVENTS_PER_S * max(elapsed, 0.25)

    def maintain(self, conn: psycopg.Connection, force: bool = False) -> None:
        """Rotate, seal and TRUNCATE the queue ring (wlsync.maintain_queue), about once a second."""
        if not force and time.monotonic() - self.maintained_at < MAINTAIN_EVERY:
            return
        self.maintained_at = time.monotonic()
        try:
            done = conn.execute("SELECT wlsync.maintain_queue() AS done").fetchone()["done"]
        except psycopg.OperationalError:
            raise  # MDB is gone: the caller reconnects
        except psycopg.Error as exc:  # maintenance can wait; the queue keeps flowing without it
            log.warning("queue maintenance failed (MDB): %s", one_line(exc))
            return
        if done:
            log.debug("queue maintenance: %s", ", ".join(done))
        self.fanning = True  # a consumer may have been added: claim() finds out
        self.work(conn)

    def work(self, conn: psycopg.Connection, force: bool = False) -> None:
        """The consumer's work besides draining (wlsync.consumer_work), every
        WORK_EVERY s: backfill passes still incomplete (a new consumer starts
        complete: wlsync.add_consumer starts them), and a rebuild of WL after
        MDB dropped the consumer's pending events past its max_pending."""
        if not force and time.monotonic() - self.worked_at < WORK_EVERY:
            return
        self.worked_at = time.monotonic()
        work = conn.execute("SELECT * FROM wlsync.consumer_work(%s)", [self.consumer]).fetchone()
        for table in work["backfill_tables"]:
            self.backfill(conn, table)
        if work["resync_requested_at"] is not None and not self.stopping:
            self.resync(conn, work["resync_requested_at"], work["dropped_events"])

    def backfill(self, conn: psycopg.Connection, table: str) -> None:
        """Run a backfill pass of the consumer to its end, in committed chunks
        (resumable: a pass another driver or `backfill` runs too just ends sooner)."""
        log.info("consumer %s: backfilling %s", self.consumer, table)
        enqueued = 0
        while not self.stopping and (chunk := conn.execute(
                "SELECT wlsync.backfill(%s, %s, %s) AS n", [table, BACKFILL_CHUNK, self.consumer]).fetchone()["n"]):
            enqueued += chunk
        if not self.stopping:
            log.info("consumer %s: backfill pass of %s complete (%d keys enqueued by this driver)",
                     self.consumer, table, enqueued)

    def resync(self, conn: psycopg.Connection, requested_at: datetime, dropped: int) -> None:
        """Rebuild WL after MDB dropped the consumer's pending events: verify
        --repair enqueues every key WL holds differently (missing, extra or
        changed), so the drain that follows makes WL equal to MDB."""
        log.warning("consumer %s: MDB dropped its pending events past max_pending at %s (%d dropped so far); "
                    "rebuilding WL (verify --repair)", self.consumer, requested_at.isoformat(), dropped)
        wlsync_verify.verify(self.dsn, self.sink, repair=True, consumer=self.consumer)
        cleared = conn.execute("SELECT wlsync.resync_done(%s, %s) AS cleared",
                               [self.consumer, requested_at]).fetchone()["cleared"]
        self.metrics.resyncs.inc()
        log.info("consumer %s: WL rebuilt; %s", self.consumer,
                 "resync done" if cleared else "events were dropped again meanwhile: another rebuild follows")

    def claim_rows(self, conn: psycopg.Connection, wait: bool) -> list[dict]:
        """Fan out (several consumers), BEGIN and claim; the transaction stays open."""
        if self.fanning:
            self.fanning = conn.execute("SELECT wlsync.fan_out(%s, %s) AS moved",
                                        [FAN_OUT, wait]).fetchone()["moved"] is not None
        conn.execute("BEGIN")
        try:
            return conn.execute("SELECT * FROM wlsync.claim_sync_events(%s, %s)",
                                [self.batch, self.consumer]).fetchall()
        except BaseException:
            rollback(conn)
            raise

    def claim(self, conn: psycopg.Connection) -> Claimed:
        """Claim a batch on `conn`, in a transaction left open for sync_batch.
        With several consumers, first move the writers' events into every
        consumer's queue (wlsync.fan_out, a short transaction of its own)."""
        started = time.monotonic()
        rows = self.claim_rows(conn, wait=False)
        if not rows and self.fanning:
            # Empty, or are our events in another driver's fan-out that has not
            # committed yet? Wait for it, then look again.
            conn.execute("COMMIT")
            rows = self.claim_rows(conn, wait=True)
        # WL must not commit once MDB may have ended the claim (its timeouts).
        return Claimed(conn, rows, started, started + self.claim_timeout - 1.0)

    def sync_batch(self, batch: Claimed) -> int:
        """Write a claimed batch to WL, commit WL, then commit the claim in MDB."""
        conn, rows = batch.conn, batch.rows
        self.metrics.claimed()
        try:
            self.ensure_tables(conn, rows)
            self.test_pause("before_wl_write")
            rejected = self.write(rows, batch.deadline, self.sink.apply)  # WL commits here; MDB right after
            self.test_pause("after_wl_commit")
            for row, error in rejected:
                self.hold_back(conn, row, error)
        except BaseException:
            rollback(conn)
            raise
        conn.execute("COMMIT")
        held_back = {id(row) for row, _ in rejected}
        return self.synced(summarize([r for r in rows if id(r) not in held_back]), batch.started, len(held_back))

    def sync_snapshot(self) -> int:
        """--consistent: one MDB snapshot as one WL commit. In a REPEATABLE READ
        transaction, claim in chunks until the snapshot has nothing left, write
        each chunk into one open WL transaction (memory holds one chunk), commit
        WL, then MDB. WL then equals MDB as of that snapshot (README,
        "Consistent mode"). Returns the events synced."""
        conn, started = self.claims, time.monotonic()
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        wl_open = False
        try:
            waiting_for = conn.execute("SELECT waiting_for FROM wlsync.start_consistent_batch(%s)",
                                       [self.consumer]).fetchone()["waiting_for"]
            if waiting_for != self.waiting_for and waiting_for is not None:
                log.warning("consistent mode: not claiming; waiting for %s", waiting_for)
            self.waiting_for = waiting_for
            summary, held_back = summarize([]), 0
            while waiting_for is None:
                rows = conn.execute("SELECT * FROM wlsync.claim_sync_events(%s, %s)",
                                    [self.batch, self.consumer]).fetchall()
                if not rows:
                    break
                # MDB ends the claim after claim_timeout of idleness: each chunk moves the deadline.
                deadline = time.monotonic() + self.claim_timeout - 1.0
                self.metrics.claimed()
                # Before the transaction when it can be (a table new to WL): some
                # stores commit on DDL (MariaDB).
                self.ensure_tables(conn, rows)
                if not wl_open:
                    self.sink.begin(deadline)
                    wl_open = True
                self.test_pause("before_wl_write")
                rejected = self.write(rows, deadline, self.sink.write)
                for row, error in rejected:
                    self.hold_back(conn, row, error)
                rejected_rows = {id(row) for row, _ in rejected}
                summary.add(summarize([r for r in rows if id(r) not in rejected_rows]))
                held_back += len(rejected_rows)
            if wl_open:
                self.sink.commit(deadline)  # a deferred constraint WL refuses fails here: retried whole
                wl_open = False
                self.test_pause("after_wl_commit")
        except BaseException:
            if wl_open:
                self.sink.rollback()
            rollback(conn)
            raise
        conn.execute("COMMIT")
        if not summary.keys and not held_back:
            return 0
        return self.synced(summary, started, held_back)

    def synced(self, summary: BatchSummary, started: float, held_back: int) -> int:
        """Count and log a batch committed in WL and MDB; returns its events (or,
        when WL rejected all of them, how many keys it rejected: still progress)."""
        self.backoff.reset()
        events, lag, tables = summary.events, summary.lag, summary.keys_by_table()
        self.synced_events += events
        self.metrics.batch_synced(summary, time.monotonic() - started, rejected=bool(held_back))
        if not summary.keys:
            return held_back  # all rejected: keep draining, they wait for their retry
        log.info("synced %d events (%d keys) in %.1f ms, lag %.3f s: %s", events, summary.keys,
                 (time.monotonic() - started) * 1000, lag,
                 ", ".join(f"{t}={n}" for t, n in sorted(tables.items())),
                 extra={"fields": {"events": events, "keys": summary.keys, "lag_s": round(lag, 3),
                                   "tables": tables}})
        return events

    def write(self, rows: list[dict], deadline: float, put) -> list[tuple[dict, str]]:
        """Write rows to WL with ``put`` (sink.apply, which commits, or, in
        consistent mode, sink.write into the open transaction); when WL rejects
        them, split them until the rows at fault stand alone and write the rest.
        Returns the rejected rows."""
        try:
            put(rows, deadline)
            return []
        except SinkError as exc:
            if not exc.rejected:
                raise
            if len(rows) == 1:
                return [(rows[0], str(exc))]
            middle = len(rows) // 2
            return self.write(rows[:middle], deadline, put) + self.write(rows[middle:], deadline, put)

    def hold_back(self, conn: psycopg.Connection, row: dict, error: str) -> None:
        """Record a key WL rejected: retried with backoff, parked after --max-attempts."""
        relation = sql.Identifier(row["table_schema"], row["table_name"]).as_string(conn)
        state = conn.execute("SELECT wlsync.record_failure(%s, %s, %s, %s, %s, %s) AS state",
                             [relation, Jsonb(row["pk"]), error, row["attempts"], self.max_attempts,
                              self.consumer]).fetchone()["state"]
        level = logging.ERROR if state == "parked" else logging.WARNING
        name = f"{row['table_schema']}.{row['table_name']}"
        self.metrics.key_rejected(name, state)
        log.log(level, "WL rejected %s %s (attempt %d): %s; %s", name, json.dumps(row["pk"]),
                row["attempts"] + 1, error,
                "parked as a dead letter" if state == "parked" else "will retry with backoff",
                extra={"fields": {"table": name, "pk": row["pk"], "state": state}})

    def test_pause(self, point: str) -> None:
        if self.pause_at == point:
            log.warning("test pause at %s (%.1f s)", point, self.pause_seconds)
            time.sleep(self.pause_seconds)

    def ensure_tables(self, conn: psycopg.Connection, rows: list[dict]) -> None:
        """Create WL tables the first time a table shows up, and follow its columns:
        an added column is added in WL; a dropped one is no longer written.

        One row per table is looked at: a claim reads each table's rows in one
        statement, under a lock that keeps ALTER TABLE out until it commits, so
        the rows of one table in a batch all have the same columns."""
        first: dict[tuple[str, str], dict | None] = {}  # per table, its first row_data (a delete's is None)
        for r in rows:
            table = (r["table_schema"], r["table_name"])
            if first.get(table) is None:
                first[table] = r["row_data"]
        if all(table in self.known_columns and (data is None or data.keys() == self.known_columns[table])
               for table, data in first.items()):
            return
        tables = tables_from_rows(
            tuple(row.values()) for row in conn.execute("SELECT * FROM wlsync.tracked_columns(%s)", [self.consumer]))
        self.sink.ensure_tables(tables)
        self.known_columns = {key: {c.name for c in t.columns} for key, t in tables.items()}

    def wait_for(self, timeout: float, listening: bool) -> bool:
        """Sleep up to `timeout`; returns early on a notification (True) or a signal."""
        watched = [self.wake_read] + ([self.listener.fileno()] if listening else [])
        ready, _, _ = select.select(watched, [], [], timeout)
        if self.wake_read in ready:
            os.read(self.wake_read, 512)
        if listening and self.listener.fileno() in ready:
            # Consumes the notifications; raises OperationalError if the connection died.
            return bool(list(self.listener.notifies(timeout=0)))
        return False


def rollback(conn: psycopg.Connection) -> None:
    """End a claim's transaction, leaving its events queued. On a broken
    connection there is nothing to do: MDB rolls back what the session held."""
    if conn.closed:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass


# -- status and backfill ------------------------------------------------------------------

def status(dsn: str, as_json: bool = False, consumer: str = DEFAULT_CONSUMER) -> int:
    with connect(dsn, autocommit=True) as conn:
        check_schema(conn, dsn)
        rows = conn.execute("SELECT table_schema, table_name, pending_events, oldest_age, retrying_keys, "
                            "dead_letters, oldest_enqueued_at FROM wlsync.queue_status(%s)", [consumer]).fetchall()
        resync_at, dropped, backfills = conn.execute("SELECT * FROM wlsync.consumer_work(%s)", [consumer]).fetchone()
    if as_json:
        print(json.dumps({"consumer": consumer, "dropped_events": dropped,
                          "resync_requested_at": resync_at.isoformat() if resync_at else None,
                          "backfills_running": list(backfills), "tables": [
            {"table": f"{schema}.{table}", "schema": schema, "name": table, "pending_events": pending,
             "oldest_enqueued_at": oldest.isoformat() if oldest else None,
             "oldest_age_seconds": age.total_seconds() if age is not None else None,
             "retrying_keys": retrying, "dead_letters": dead}
            for schema, table, pending, age, retrying, dead, oldest in rows]}, indent=2))
        return 0
    if not rows:
        print(f"consumer {consumer} receives no tables: SELECT wlsync.track('<table>'{'' if consumer == DEFAULT_CONSUMER else f', {consumer!r}'}) to start")
        return 0
    if consumer != DEFAULT_CONSUMER or resync_at or backfills:
        print(f"consumer {consumer}" + (f": backfilling {', '.join(backfills)}" if backfills else "")
              + (f"; {dropped} pending events dropped past max_pending, WL rebuild requested at "
                 f"{resync_at.isoformat()} (its driver does it)" if resync_at else ""))
    print(f"{'table':40} {'pending':>10} {'oldest age':>12} {'retrying':>9} {'dead letters':>13}")
    for schema, table, pending, age, retrying, dead, _oldest in rows:
        age_text = f"{age.total_seconds():.1f} s" if age is not None else "-"
        print(f"{schema + '.' + table:40} {pending:>10} {age_text:>12} {retrying:>9} {dead:>13}")
    if any(row[5] for row in rows):
        print("dead letters: SELECT * FROM wlsync.dead_letters; re-drive with SELECT wlsync.retry_dead_letters();")
    return 0


def backfill(dsn: str, tables: list[str], chunk: int, consumer: str = DEFAULT_CONSUMER) -> int:
    """Backfill tables (all the consumer's by default) in committed chunks, with progress."""
    with connect(dsn, autocommit=True) as conn:
        check_schema(conn, dsn)
        # (relation for SQL, name shown): the names as given, or every tracked table
        relations = [(table, table) for table in tables] or [
            (sql.Identifier(schema, name).as_string(conn), f"{schema}.{name}")
            for schema, name in conn.execute("SELECT table_schema, table_name FROM wlsync.metrics(1024, %s)",
                                             [consumer])]
        estimate = conn.execute(
            "SELECT sum(m.table_rows_estimate)::bigint FROM wlsync.metrics(1024, %s) AS m "
            "WHERE format('%%I.%%I', m.table_schema, m.table_name)::regclass = ANY (%s::regclass[])",
            [consumer, [relation for relation, _ in relations]]).fetchone()[0]
        with Progress("backfill", unit="keys", verb="enqueued, backfill pass complete", total=estimate) as progress:
            for relation, shown in relations:
                progress.start(shown)
                while enqueued := conn.execute("SELECT wlsync.backfill(%s, %s, %s)",
                                               [relation, chunk, consumer]).fetchone()[0]:
                    progress.advance(shown, enqueued)
    return 0


def queue_progress(dsn: str, consumer: str) -> Progress:
    """run --once: progress against the events queued now (new ones may add to them)."""
    with connect(dsn, autocommit=True) as conn:
        check_schema(conn, dsn)
        queued = conn.execute("SELECT sum(queued_events)::bigint FROM wlsync.metrics(1024, %s)",
                              [consumer]).fetchone()[0]
    return Progress("run --once", unit="events", verb="synced", total=queued)


def serve_metrics(metrics: DriverMetrics, host: str, port: int) -> None:
    try:
        metrics.serve(host, port)
    except OSError as exc:
        raise UserError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
                        "choose another --metrics-port (or --metrics-host)") from None
    log.info("serving Prometheus metrics at http://%s:%d/metrics", host, port)


# -- command line -----------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
                 "level": record.levelname.lower(), "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def port_number(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port number (1-65535), got {text!r}")
    return int(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wlsync", description="Keep WL's copy of MDB's tracked tables in sync.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    commands = parser.add_subparsers(dest="command", required=True)
    source_help = "MDB libpq URL (default: $WLSYNC_SOURCE, then the PG* variables)"
    target_help = (f"WL as a URL whose scheme names the sink: sqlite:///relative.db, sqlite:////absolute.db, "
                   f"postgresql://..., or a scheme an installed plug-in registers (default {DEFAULT_TARGET})")
    sink_class_help = "the sink as module:Class, constructed with --target (instead of looking up its scheme)"
    consumer_help = (f"the consumer (a WL of its own: SELECT * FROM wlsync.consumers; default {DEFAULT_CONSUMER!r}, "
                     "which receives every table tracked with wlsync.track)")

    run = commands.add_parser("run", help="listen and drain the queue into WL")
    run.add_argument("--source", help=source_help)
    run.add_argument("--target", default=DEFAULT_TARGET, help=target_help)
    run.add_argument("--sink-class", metavar="MODULE:CLASS", help=sink_class_help)
    run.add_argument("--consumer", default=DEFAULT_CONSUMER, metavar="NAME", help=consumer_help)
    run.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH, help="keys per claim (default %(default)s)")
    run.add_argument("--sweep-interval", type=positive_float, default=60.0,
                     help="seconds between drains without a notification (default %(default)s)")
    run.add_argument("--claim-timeout", type=positive_float, default=60.0,
                     help="seconds a claim transaction may stay open (default %(default)s)")
    run.add_argument("--max-attempts", type=positive_int, default=10,
                     help="times WL may reject a key before it is parked as a dead letter (default %(default)s)")
    run.add_argument("--once", action="store_true",
                     help="drain until caught up (an empty queue, or a claim short of a batch holding only "
                          "events enqueued after it began), then exit")
    run.add_argument("--consistent", action="store_true",
                     help="every WL commit is MDB as of one snapshot, for all tracked tables together "
                          "(one driver drains; others stand by; README, \"Consistent mode\")")
    run.add_argument("--metrics-port", type=port_number, metavar="PORT",
                     help="serve Prometheus metrics at http://HOST:PORT/metrics")
    run.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                     help="address the metrics server listens on (default %(default)s; 0.0.0.0 for every interface)")

    stat = commands.add_parser("status", help="pending events per tracked table")
    stat.add_argument("--source", help=source_help)
    stat.add_argument("--json", action="store_true", help="print one JSON document, for scripts")
    stat.add_argument("--consumer", default=DEFAULT_CONSUMER, metavar="NAME", help=consumer_help)

    ver = commands.add_parser("verify", help="compare MDB and WL; exit 1 when they differ")
    ver.add_argument("--source", help=source_help)
    ver.add_argument("--target", default=DEFAULT_TARGET, help=target_help)
    ver.add_argument("--sink-class", metavar="MODULE:CLASS", help=sink_class_help)
    ver.add_argument("--repair", action="store_true", help="re-enqueue every differing key")
    ver.add_argument("--consumer", default=DEFAULT_CONSUMER, metavar="NAME", help=consumer_help)

    back = commands.add_parser("backfill", help="enqueue existing rows of tracked tables, in committed chunks")
    back.add_argument("--source", help=source_help)
    back.add_argument("--table", action="append", default=[],
                      help="a tracked table (repeatable; default: every tracked table)")
    back.add_argument("--chunk", type=positive_int, default=BACKFILL_CHUNK, help="keys per transaction (default %(default)s)")
    back.add_argument("--consumer", default=DEFAULT_CONSUMER, metavar="NAME", help=consumer_help)

    mig = commands.add_parser("migrate", help="install or upgrade the wlsync schema in MDB")
    mig.add_argument("--source", help=source_help)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if args.log_json else
                         logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    dsn = source_dsn(args.source)
    sink = None
    try:
        if args.command == "migrate":
            import wlsync_migrate
            return wlsync_migrate.main(["migrate", "--source", dsn] if dsn else ["migrate"])
        if args.command == "status":
            return status(dsn, args.json, args.consumer)
        if args.command == "backfill":
            return backfill(dsn, args.table, args.chunk, args.consumer)
        sink = open_sink(args.target, args.sink_class)
        if args.command == "run" and args.consistent and not sink.consistent:
            raise UserError(f"{sink.name} cannot hold a whole MDB snapshot in one WL transaction, which "
                            "--consistent needs: run without --consistent, or sync into SQLite, PostgreSQL or "
                            "MariaDB/MySQL")
        if args.command == "verify":
            code = wlsync_verify.verify(dsn, sink, args.repair, show_progress=True, consumer=args.consumer)
            log.info("verify done, peak RSS %.1f MB", peak_rss_mb(), extra={"fields": {"peak_rss_mb": peak_rss_mb()}})
            return code
        # The claim-ahead thread decodes a batch while this one writes the last:
        # hand the GIL over after 1 ms instead of 5, so neither waits long for the
        # other (interleaved runs: bench/analysis.md).
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        metrics = DriverMetrics(args.sink_class or urlsplit(args.target).scheme,
                                dsn if args.metrics_port else None, args.consumer)
        if args.metrics_port:
            serve_metrics(metrics, args.metrics_host, args.metrics_port)
        if args.once:
            metrics.progress = queue_progress(dsn, args.consumer)
        driver = Driver(dsn, sink, args.batch, args.sweep_interval, args.once, args.claim_timeout,
                        args.max_attempts, metrics, args.consistent, args.consumer)
        try:
            code = driver.run()
        finally:
            driver.close()
            if metrics.progress is not None:
                metrics.progress.close()
        log.info("stopped after syncing %d events, peak RSS %.1f MB", driver.synced_events, peak_rss_mb(),
                 extra={"fields": {"events": driver.synced_events, "peak_rss_mb": peak_rss_mb()}})
        return code
    except (UserError, TargetError) as exc:
        print(f"wlsync: error: {exc}", file=sys.stderr)
        return 2
    except SinkError as exc:
        print(f"wlsync: error: WL failed: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:  # the sinks raise SinkError: this is MDB's
        print(f"wlsync: error: MDB: {one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        if sink is not None:
            sink.close()


if __name__ == "__main__":
    sys.exit(main())
