"""Prometheus metrics of a running driver: `wlsync run --metrics-port PORT`.

The driver's loop makes a few cheap calls per batch (claimed, batch_synced,
key_rejected, failed, connected): counters and histograms in memory. The queue
figures come from MDB's wlsync.metrics() on a connection of their own, read
when /metrics is scraped and at most every QUEUE_REFRESH seconds, in the HTTP
server's thread: the claim loop never waits for them.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

import psycopg
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector,
                               disable_created_metrics, start_http_server)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from wlsync_db import connect, one_line
from wlsync_progress import Progress

log = logging.getLogger("wlsync")

QUEUE_REFRESH = 5.0  # seconds: the most often /metrics reads wlsync.metrics() in MDB

# No *_created series (a start time per counter): noise on a dashboard, and
# Prometheus finds resets without them.
disable_created_metrics()


@dataclass
class BatchSummary:
    """One pass over a committed batch's rows: what the log line and the metrics need."""
    events: int = 0
    keys: int = 0
    lag: float = 0.0  # seconds from the oldest event's capture to now (just after the commit)
    by_table: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (table, action) -> [keys, events]

    def add(self, other: BatchSummary) -> None:
        """Count another part of the same WL commit (consistent mode's chunks) in this one."""
        self.events += other.events
        self.keys += other.keys
        self.lag = max(self.lag, other.lag)
        for key, (keys, events) in other.by_table.items():
            counts = self.by_table.setdefault(key, [0, 0])
            counts[0] += keys
            counts[1] += events

    def keys_by_table(self) -> dict[str, int]:
        tables: dict[str, int] = {}
        for (table, _action), (keys, _events) in self.by_table.items():
            tables[table] = tables.get(table, 0) + keys
        return tables


def summarize(rows: list[dict]) -> BatchSummary:
    summary = BatchSummary(keys=len(rows))
    oldest = None
    for row in rows:
        counts = summary.by_table.get((row["table_schema"], row["table_name"], row["action"]))
        if counts is None:
            counts = summary.by_table[(row["table_schema"], row["table_name"], row["action"])] = [0, 0]
        counts[0] += 1
        counts[1] += row["events"]
        if oldest is None or row["enqueued_at"] < oldest:
            oldest = row["enqueued_at"]
    summary.by_table = {(f"{schema}.{table}", action): counts
                        for (schema, table, action), counts in summary.by_table.items()}
    summary.events = sum(events for _keys, events in summary.by_table.values())
    if oldest is not None:
        summary.lag = (datetime.now(timezone.utc) - oldest).total_seconds()
    return summary


def driver_version() -> str:
    try:
        return metadata.version("wlsync")
    except metadata.PackageNotFoundError:  # a checkout that is not installed
        return "unknown"


class DriverMetrics:
    """The driver's counters; served over HTTP only once serve() is called."""

    def __init__(self, sink_kind: str = "unknown", dsn: str | None = None, consumer: str = "default"):
        self.registry = CollectorRegistry()
        self.in_flight = False  # a claimed batch not yet committed
        self.progress: Progress | None = None  # run --once: events synced per table
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total, ...
        self.events = Counter(
            "wlsync_events_synced", "Change events of MDB's queue that reached WL (committed in WL, then taken "
            "off the queue), by table and action: upsert (the row was written) or delete (the row was gone).",
            ["table", "action"], registry=r)
        self.keys = Counter(
            "wlsync_keys_synced", "Rows written to WL (one per key and batch: several events of one key in a "
            "batch make one write), by table and action (upsert or delete).", ["table", "action"], registry=r)
        self.batches = Counter(
            "wlsync_batches", "Batches claimed from MDB's queue, by outcome: committed (every key written to WL), "
            "rejected (committed, but WL refused some keys: see wlsync_keys_rejected_total), rolled_back (MDB "
            "or WL failed before the commit: its events stay queued and are claimed again).",
            ["outcome"], registry=r)
        for outcome in ("committed", "rejected", "rolled_back"):
            self.batches.labels(outcome)
        self.rejected = Counter(
            "wlsync_keys_rejected", "Keys WL refused to store, by table and what became of them: retrying (claimed "
            "again after a backoff) or parked (a dead letter after --max-attempts: see wlsync.dead_letters).",
            ["table", "state"], registry=r)
        self.duration = Histogram(
            "wlsync_batch_duration_seconds", "Time one batch takes: claim in MDB, write and commit in WL, commit "
            "in MDB.", registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.size = Histogram(
            "wlsync_batch_size_events", "Change events per committed batch (at most run --batch).", registry=r,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000))
        self.lag = Histogram(
            "wlsync_sync_lag_seconds", "How far WL is behind MDB: for each committed batch, seconds from the "
            "capture of its oldest event in MDB (the start of the writing transaction) until the batch was "
            "committed in WL and MDB. Compares MDB's clock with the driver's.", registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
        self.connected_gauge = Gauge(
            "wlsync_connected", "1 while the driver's connection to this side works (mdb: MDB, the source "
            "database; wl: WL, the target datastore), 0 before the first connection and while it fails (the driver retries with backoff).",
            ["side"], registry=r)
        for side in ("mdb", "wl"):
            self.connected_gauge.labels(side).set(0)  # until the first connection works
        self.resyncs = Counter(
            "wlsync_resyncs", "Times this driver rebuilt its consumer's WL (verify --repair) because MDB dropped "
            "its pending events past max_pending (see wlsync_dropped_events).", registry=r)
        Info("wlsync_driver", "The running driver: wlsync version, the kind of WL sink it writes to, and the "
             "consumer it drains.", registry=r).info({"version": driver_version(), "sink": sink_kind,
                                                      "consumer": consumer})
        if dsn is not None:
            r.register(QueueCollector(dsn, consumer))

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics from a background thread (prometheus_client's HTTP server)."""
        start_http_server(port, addr=host, registry=self.registry)

    # -- hooks of the driver's loop --------------------------------------------------

    def connected(self) -> None:
        self.connected_gauge.labels("mdb").set(1)
        self.connected_gauge.labels("wl").set(1)

    def failed(self, side: str) -> None:
        """The loop lost MDB ("mdb") or WL ("wl"); a batch in hand was rolled back."""
        self.connected_gauge.labels(side).set(0)
        if self.in_flight:
            self.batches.labels("rolled_back").inc()
            self.in_flight = False

    def claimed(self) -> None:
        self.in_flight = True

    def key_rejected(self, table: str, state: str) -> None:
        self.rejected.labels(table, "parked" if state == "parked" else "retrying").inc()

    def batch_synced(self, summary: BatchSummary, seconds: float, rejected: bool) -> None:
        self.in_flight = False
        self.connected()
        self.batches.labels("rejected" if rejected else "committed").inc()
        self.duration.observe(seconds)
        self.size.observe(summary.events)
        if summary.keys:
            self.lag.observe(summary.lag)
        for (table, action), (keys, events) in summary.by_table.items():
            self.keys.labels(table, action).inc(keys)
            self.events.labels(table, action).inc(events)
            if self.progress is not None:
                self.progress.advance(table, events)


class QueueCollector(Collector):
    """Queue figures per table from wlsync.metrics(), read at scrape time, at most every QUEUE_REFRESH s."""

    def __init__(self, dsn: str, consumer: str):
        self.dsn, self.consumer = dsn, consumer
        self.lock = threading.Lock()  # scrapes may come in parallel
        self.conn: psycopg.Connection | None = None
        self.read_at = -QUEUE_REFRESH
        self.rows: list[tuple] | None = None
        self.overflow: tuple | None = None  # (dropped events, resync pending) of the consumer

    def describe(self):
        return []  # figures depend on MDB: do not read it when the collector is registered

    def refresh(self) -> None:
        if time.monotonic() - self.read_at < QUEUE_REFRESH:
            return
        self.read_at = time.monotonic()
        try:
            if self.conn is None or self.conn.closed:
                self.conn = connect(self.dsn, autocommit=True, application_name="wlsync_metrics")
                self.conn.execute("SET statement_timeout = '5s'")
            self.rows = self.conn.execute(
                "SELECT table_schema || '.' || table_name, queued_events, queued_exact, oldest_age_seconds, "
                "retrying_keys, dead_letters FROM wlsync.metrics(1024, %s)", [self.consumer]).fetchall()
            self.overflow = self.conn.execute(
                "SELECT dropped_events, resync_requested_at IS NOT NULL FROM wlsync.consumer_work(%s)",
                [self.consumer]).fetchone()
        except Exception as exc:  # any failure: no queue figures in this scrape, and a new try next time
            log.warning("metrics: cannot read the queue figures from MDB: %s", one_line(exc))
            self.rows = None
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def collect(self):
        with self.lock:
            self.refresh()
            rows, overflow = self.rows, self.overflow
        if rows is None:  # MDB unreachable: absent, rather than stale figures
            return
        depth = GaugeMetricFamily(
            "wlsync_queue_events", "Change events waiting in MDB's queue, by table (from wlsync.metrics(): "
            "counted on a small queue, estimated from a sample on a large one: see wlsync_queue_exact).",
            labels=["table"])
        age = GaugeMetricFamily(
            "wlsync_queue_oldest_age_seconds", "Age of the oldest change event waiting in MDB's queue, by table; "
            "absent for a table with nothing waiting.", labels=["table"])
        retrying = GaugeMetricFamily(
            "wlsync_retrying_keys", "Keys WL refused that wait for their next attempt, by table "
            "(wlsync.dead_letters with state retrying).", labels=["table"])
        dead = GaugeMetricFamily(
            "wlsync_dead_letters", "Keys parked after WL refused them --max-attempts times, by table: they are "
            "not synced until re-driven (SELECT wlsync.retry_dead_letters();).", labels=["table"])
        exact = GaugeMetricFamily(
            "wlsync_queue_exact", "1 when wlsync_queue_events was counted exactly, 0 when the queue was large "
            "enough to be estimated from a sample.")
        for table, events, _exact, age_seconds, retrying_keys, parked in rows:
            depth.add_metric([table], events)
            if age_seconds is not None:
                age.add_metric([table], age_seconds)
            retrying.add_metric([table], retrying_keys)
            dead.add_metric([table], parked)
        exact.add_metric([], 1 if all(row[2] for row in rows) else 0)
        yield from (depth, age, retrying, dead, exact)
        dropped = GaugeMetricFamily(
            "wlsync_dropped_events", "Pending events of this driver's consumer that MDB dropped since the consumer "
            "was created, because they passed its max_pending (wlsync.consumers): its driver then rebuilds WL.")
        resync = GaugeMetricFamily(
            "wlsync_resync_pending", "1 while this driver's consumer waits for its WL to be rebuilt after "
            "dropped events (the driver does it when it runs), else 0.")
        dropped.add_metric([], overflow[0])
        resync.add_metric([], 1 if overflow[1] else 0)
        yield from (dropped, resync)
