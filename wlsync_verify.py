"""verify: compare MDB and WL table by table and name every key that differs.

Both sides compute checksums in their own engine, so rows cross the network only
where the two differ. A row's hash is the 64-bit hash of its record text
(``ROW(c1, c2, ...)::text``, values as PostgreSQL prints them); its bucket at b
bits is the top b bits of its key's hash. A bucket's checksum is its row count
and the exact sum of its rows' hashes: MDB computes it with
``wlsync.range_checksums``, WL with the sink's ``range_checksums`` (SQL of its
own, or Python in the Sink base class). Hash buckets, not key ranges: which keys
fall in a bucket does not depend on any collation or on the type a WL stores a
key in (README, "Verify by hash buckets").

For each table:

1. the whole table (bucket 0 at 0 bits), on both sides at once; equal: done;
2. a bucket whose checksums differ is split into finer buckets (sized for about
   BUCKET_ROWS rows each), again and again, until a differing bucket holds at
   most LEAF_ROWS rows on each side; every split is a scan of the table on each
   side, so when the differing buckets are too many for one query (dense
   differences, e.g. a WL far behind) they are listed whole instead;
3. those buckets are listed key by key (key, row hash) on both sides
   (``wlsync.range_rows``, ``Sink.range_rows``); a key that one side lacks or
   whose hashes differ is read from both (``wlsync.current_rows``,
   ``Sink.rows_by_key``) and compared value by value: that comparison, not a
   hash, decides what is printed (and re-enqueued with --repair).

Memory stays bounded: at most MAX_BUCKETS checksums per query, one bucket's keys
per side, CONFIRM_CHUNK keys being compared.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Iterator

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from wlsync_db import check_schema, connect
from wlsync_progress import Progress, echo
from wlsync_sinks import Sink, Table, key_text, same_value, tables_from_rows

log = logging.getLogger("wlsync")

BUCKET_ROWS = 64          # rows a bucket holds on average once a differing bucket is split
LEAF_ROWS = 1024          # a differing bucket with at most this many rows on each side is compared key by key
LIST_ROWS = 1 << 16       # differing buckets too many to split in one query are listed whole, up to this size
MAX_BUCKETS = 1 << 16     # checksums one query returns, at most
MAX_BITS = 48             # the finest buckets
CONFIRM_CHUNK = 1000      # keys read from both sides at a time to name the differences
FETCH = 1000              # rows per fetch when listing keys
# Hashed by MDB and WL before verify relies on a scheme: they agree, or the scheme is not used.
PROBE = 'wlsync verify probe: \u00fcn\u00efc\u00f8d\u00e9 "(),\\ 7'

EMPTY = (0, 0)  # the checksum of a bucket with no rows

#: Called as rows are found equal or compared: (table as schema.name, rows
#: checked so far, rows MDB's table had when its verify began).
ProgressCallback = Callable[[str, int, int], None]  # (table, rows checked so far, rows in all)


def verify(dsn: str, sink: Sink, repair: bool = False, progress: ProgressCallback | None = None,
           show_progress: bool = False, consumer: str = "default") -> int:
    """Compare every tracked table; print each differing key. With repair, every
    differing key is re-enqueued, so the next drain rewrites it in WL. Returns
    the exit code: 0 when WL equals MDB, 1 otherwise. ``progress`` is called after
    each bucket comparison; ``show_progress`` (the CLI) also shows a bar on a
    terminal or periodic lines otherwise, and a per-table summary before the result.
    ``consumer``: whose tables, compared with its WL (``sink``)."""
    with connect(dsn, autocommit=True) as conn, connect(dsn, autocommit=True) as scan:
        check_schema(conn, dsn)
        bar = None
        if show_progress:
            estimate = conn.execute("SELECT sum(table_rows_estimate)::bigint FROM wlsync.metrics(1024, %s)",
                                    [consumer]).fetchone()[0]
            bar = Progress("verify", unit="rows", verb="compared", total=estimate)
        reported: dict[str, int] = {}

        def on_progress(table: str, checked: int, total: int) -> None:
            if bar is not None:
                bar.advance(table, checked - reported.get(table, 0))
                reported[table] = checked
            if progress is not None:
                progress(table, checked, total)

        verifier = Verifier(conn, scan, sink, repair, on_progress, consumer)
        try:
            verifier.run()
        finally:
            verifier.close()
            if bar is not None:
                bar.close()
    differences = verifier.differences
    print(f"verify: {differences} difference(s)" if differences else "verify: WL == MDB")
    if repair and differences:
        print(f"verify: {verifier.repaired} key(s) re-enqueued; the next drain rewrites them in WL")
    return 1 if differences else 0


class Verifier:
    """One verify run. ``conn`` reads rows and re-enqueues keys; ``scan`` runs the
    checksum and listing queries, in a thread of their own while WL computes its
    side, so that the two engines work at the same time."""

    def __init__(self, conn: psycopg.Connection, scan: psycopg.Connection, sink: Sink, repair: bool,
                 progress: ProgressCallback | None, consumer: str = "default"):
        self.conn, self.scan, self.sink, self.consumer = conn, scan, sink, consumer
        self.repair, self.progress = repair, progress
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wlsync-verify-mdb")
        self.differences = self.repaired = 0
        self.scheme = "md5"
        self.agreed = True  # whether WL's hashes are MDB's (else every key is compared)

    def close(self) -> None:
        self.pool.shutdown()

    def run(self) -> None:
        tables = tables_from_rows(self.conn.execute("SELECT * FROM wlsync.tracked_columns(%s)",
                                                    [self.consumer]).fetchall())
        self.sink.ensure_tables(tables)
        self.choose_scheme()
        for table in tables.values():
            TableVerify(self, table).run()

    def choose_scheme(self) -> None:
        """The first of the sink's hash schemes that MDB computes the same way."""
        for scheme in self.sink.checksum_schemes:
            try:
                mdb = self.conn.execute("SELECT wlsync.verify_hash(%s, %s)", [scheme, PROBE]).fetchone()[0]
            except psycopg.errors.InvalidParameterValue:  # a scheme this MDB does not know
                continue
            if self.sink.verify_hash(scheme, PROBE) == mdb:
                self.scheme = scheme
                log.debug("verify hashes with %s", scheme)
                return
        self.agreed = False
        log.warning("verify: WL hashes no text as MDB does (schemes tried: %s; a database encoding other than "
                    "UTF8?); comparing every key instead", ", ".join(self.sink.checksum_schemes))

    def both(self, in_mdb: Callable, in_wl: Callable):
        """Run ``in_mdb`` (on ``scan``) and ``in_wl`` at the same time; both results."""
        future = self.pool.submit(in_mdb)
        try:
            wl = in_wl()
        finally:
            wait([future])  # scan is free again whatever happened
        return future.result(), wl


class TableVerify:
    """Verify of one table (see the module's docstring)."""

    def __init__(self, verifier: Verifier, table: Table):
        self.verifier, self.table = verifier, table
        self.name = f"{table.schema}.{table.name}"
        self.relation = sql.Identifier(table.schema, table.name).as_string(verifier.conn)
        self.checked = self.total = 0
        self.candidates: list[dict] = []  # keys to compare value by value

    def run(self) -> None:
        mdb, wl = self.checksums(0)
        self.total = mdb.get(0, EMPTY)[0]
        if self.verifier.agreed:
            self.split(0, self.differing(mdb, wl))
        else:
            self.compare_keys(0, [0])
        self.confirm()
        self.advance()

    # -- the steps -----------------------------------------------------------------------

    def checksums(self, bits: int, parent_bits: int = 0, parents: list[int] | None = None
                  ) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
        """{bucket: (rows, sum of row hashes)} of MDB and of WL."""
        scheme = self.verifier.scheme

        def in_mdb() -> dict[int, tuple[int, int]]:
            rows = self.verifier.scan.execute("SELECT * FROM wlsync.range_checksums(%s, %s, %s, %s, %s)",
                                          [self.relation, scheme, bits, parent_bits, parents])
            return {bucket: (count, int(total)) for bucket, count, total in rows}

        def in_wl() -> dict[int, tuple[int, int]]:
            return self.verifier.sink.range_checksums(self.table, scheme, bits, parent_bits, parents)

        return self.verifier.both(in_mdb, in_wl)

    def differing(self, mdb: dict, wl: dict) -> dict[int, tuple[tuple[int, int], tuple[int, int]]]:
        """The buckets whose checksums differ, with both; the rows of the others are checked."""
        differing = {}
        for bucket in mdb.keys() | wl.keys():
            ours, theirs = mdb.get(bucket, EMPTY), wl.get(bucket, EMPTY)
            if ours == theirs:
                self.checked += ours[0]
            else:
                differing[bucket] = (ours, theirs)
        self.advance()
        return differing

    def split(self, bits: int, differing: dict[int, tuple[tuple[int, int], tuple[int, int]]]) -> None:
        """Compare small differing buckets key by key; split the others into finer
        buckets (a query per MAX_BUCKETS of them) and go on with those that differ."""
        size = {bucket: max(ours[0], theirs[0]) for bucket, (ours, theirs) in differing.items()}
        small = sorted(b for b in differing if size[b] <= LEAF_ROWS or bits >= MAX_BITS)
        if small:
            self.compare_keys(bits, small)
        large = sorted(b for b in differing if size[b] > LEAF_ROWS and bits < MAX_BITS)
        if not large:
            return
        largest = max(size[b] for b in large)
        step = min(16, MAX_BITS - bits, max(1, math.ceil(math.log2(largest / BUCKET_ROWS))))
        per_query = max(1, MAX_BUCKETS >> step)
        if len(large) > per_query and largest <= LIST_ROWS:
            # Dense differences: splitting would take a scan per query, listing takes one.
            self.compare_keys(bits, large)
            return
        for start in range(0, len(large), per_query):
            mdb, wl = self.checksums(bits + step, bits, large[start:start + per_query])
            self.split(bits + step, self.differing(mdb, wl))

    def compare_keys(self, bits: int, buckets: list[int]) -> None:
        """List the buckets' keys and row hashes on both sides; keys with different
        hashes or on one side only become candidates. (Bucket 0 of 0 bits is both
        buckets of 1 bit.)"""
        if bits == 0:
            bits, buckets = 1, [0, 1]
        scheme = self.verifier.scheme
        wl_rows = self.verifier.sink.range_rows(self.table, scheme, bits, buckets)
        for _bucket, ours, theirs in merge_buckets(self.mdb_rows(bits, buckets), wl_rows):
            for key in ours.keys() | theirs.keys():
                if not self.verifier.agreed or ours.get(key, (None, None))[1] != theirs.get(key, (None, None))[1]:
                    self.candidates.append((ours.get(key) or theirs.get(key))[0])
            self.checked += len(ours)
            if len(self.candidates) >= CONFIRM_CHUNK:
                self.confirm()
            self.advance()

    def mdb_rows(self, bits: int, buckets: list[int]) -> Iterator[tuple[int, dict, int]]:
        scan = self.verifier.scan
        with scan.transaction(), scan.cursor(name="wlsync_verify_rows") as cursor:
            cursor.execute("SELECT bucket, pk, row_hash FROM wlsync.range_rows(%s, %s, %s, %s)",
                           [self.relation, self.verifier.scheme, bits, buckets])
            while batch := cursor.fetchmany(FETCH):
                yield from batch

    def confirm(self) -> None:
        """Read the candidates from both sides and print those that differ (as the
        rows are now: a key changed meanwhile may have become equal)."""
        verifier, table = self.verifier, self.table
        for start in range(0, len(self.candidates), CONFIRM_CHUNK):
            pks = self.candidates[start:start + CONFIRM_CHUNK]
            mdb_rows = verifier.conn.execute("SELECT row_data FROM wlsync.current_rows(%s, %s)",
                                             [self.relation, [Jsonb(pk) for pk in pks]]).fetchall()
            wl_rows = verifier.sink.rows_by_key(table, pks)
            wrong = []
            for pk, (mdb_row,), wl_row in zip(pks, mdb_rows, wl_rows, strict=True):
                if mdb_row is None and wl_row is None:
                    continue
                if wl_row is None:
                    wrong.append(report(self.name, "missing in WL", pk))
                elif mdb_row is None:
                    wrong.append(report(self.name, "extra in WL", pk))
                else:
                    changed = [c.name for c in table.columns
                               if not same_value(c, mdb_row.get(c.name), wl_row.get(c.name))]
                    if changed:
                        wrong.append(report(self.name, "different", pk, changed))
            verifier.differences += len(wrong)
            if verifier.repair and wrong:
                verifier.repaired += verifier.conn.execute(
                    "SELECT wlsync.enqueue_keys(%s, %s, %s)",
                    [self.relation, [Jsonb(pk) for pk in wrong], verifier.consumer]).fetchone()[0]
        self.candidates = []

    def advance(self) -> None:
        """Report progress (rows checked so far) to the caller's callback."""
        if self.verifier.progress is not None:
            self.verifier.progress(self.name, self.checked, self.total)


def merge_buckets(mdb: Iterator[tuple[int, dict, int]], wl: Iterator[tuple[int, dict, int]]
                  ) -> Iterator[tuple[int, dict[str, tuple[dict, int]], dict[str, tuple[dict, int]]]]:
    """Two listings in bucket order, a bucket at a time: (bucket, MDB's keys, WL's
    keys), each as {key_text: (pk, row hash)}."""
    ours, theirs = by_bucket(mdb), by_bucket(wl)
    a, b = next(ours, None), next(theirs, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            yield a[0], a[1], {}
            a = next(ours, None)
        elif a is None or b[0] < a[0]:
            yield b[0], {}, b[1]
            b = next(theirs, None)
        else:
            yield a[0], a[1], b[1]
            a, b = next(ours, None), next(theirs, None)


def by_bucket(rows: Iterator[tuple[int, dict, int]]) -> Iterator[tuple[int, dict[str, tuple[dict, int]]]]:
    for bucket, group in itertools.groupby(rows, key=lambda row: row[0]):
        yield bucket, {key_text(pk): (pk, hashed) for _, pk, hashed in group}


def report(table: str, kind: str, pk: dict, columns: list[str] | None = None) -> dict:
    detail = f" (columns: {', '.join(columns)})" if columns else ""
    echo(f"{table} {json.dumps(pk, sort_keys=True)}: {kind}{detail}")
    return pk
