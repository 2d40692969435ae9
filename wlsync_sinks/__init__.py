"""WL sinks: where the driver writes. The interface (``Sink``) and the pieces every
sink shares live here; each datastore has a module of its own (sqlite.py,
postgres.py). A sink is found by its URL's scheme in the entry-point group
``wlsync.sinks`` (see ``open_sink``), so a sink of your own is a package that
registers one class there. README.md, "Writing a sink", has a complete example.

A sink receives what ``wlsync.claim_sync_events`` returns: per key an action
('upsert' or 'delete'), the key and the row with every value as PostgreSQL
text, and the batch's fencing version. It keeps, for every tracked table, the
live rows under the same column names.

Fencing: every batch carries a version (wlsync.claim_version_seq, drawn after
its keys were locked in MDB). Beside the rows, WL records the last version
applied to each key, live or deleted; a batch writes a key only if its version
is newer, checked and recorded atomically with the write. So a batch that
arrives late, after MDB ended its claim (timeout, pg_terminate_backend, restart)
and another driver wrote a newer state, changes nothing. A sink may forget the
versions of deleted keys after VERSION_RETENTION seconds: a batch never commits
WL later than its claim timeout (60 s default).

WL table names: ``public.movies`` becomes ``movies``; other schemas keep their
schema in the name (``app.cast`` becomes the table ``"app.cast"``).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import operator
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from wlsync_db import one_line

VERSIONS = "_wlsync_versions"  # the name SQL sinks give their version registry
VERSION_RETENTION = 3600.0     # seconds a deleted key's version is kept
PRUNE_EVERY = 1000             # batches between prunings

ENTRY_POINT_GROUP = "wlsync.sinks"
# The sinks shipped with wlsync, as pyproject.toml registers them: used when no
# installed distribution registers the scheme (a plain checkout, PYTHONPATH=.).
BUILTIN_SINKS = {
    "redis": "wlsync_sinks.redis:RedisSink",
    "rediss": "wlsync_sinks.redis:RedisSink",
    "nats": "wlsync_sinks.nats:NatsSink",
    "sqlite": "wlsync_sinks.sqlite:SQLiteSink",
    "postgresql": "wlsync_sinks.postgres:PostgresSink",
    "postgres": "wlsync_sinks.postgres:PostgresSink",
    "mysql": "wlsync_sinks.mysql:MySQLSink",
    "mariadb": "wlsync_sinks.mysql:MySQLSink",
}


class SinkError(Exception):
    """A WL operation failed; for ``apply``, the batch is not in WL.

    ``rejected``: WL refused the data itself (a constraint, a value it cannot
    store, a row too large): retrying the same rows will fail the same way, so
    the driver isolates the rows at fault. Otherwise the failure is WL's state
    (unreachable, locked, timed out): the driver retries later.
    """

    def __init__(self, message: str, rejected: bool = False):
        super().__init__(message)
        self.rejected = rejected


class TargetError(Exception):
    """The --target or --sink-class is unusable (unknown scheme, malformed URL, no such class)."""


# SQLSTATE classes meaning "WL refuses this data": data exception, integrity
# constraint violation, program limit exceeded (row or index entry too large),
# and errors raised by WL's own triggers.
REJECTING_SQLSTATE_CLASSES = ("22", "23", "54", "P0")


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str      # format_type() in MDB, e.g. numeric(10,2), text[]
    base_type: str      # pg_type.typname with domains resolved, e.g. int4, _text
    builtin: bool       # base type lives in pg_catalog (else: an enum, composite, ...)
    pk_position: int | None


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]

    @property
    def wl_name(self) -> str:
        return wl_name(self.schema, self.name)

    @property
    def pk(self) -> list[Column]:
        return sorted((c for c in self.columns if c.pk_position), key=lambda c: c.pk_position)


def wl_name(schema: str, name: str) -> str:
    """A table's name in WL (see the module's docstring)."""
    return name if schema == "public" else f"{schema}.{name}"


def tables_from_rows(rows: Iterable[tuple]) -> dict[tuple[str, str], Table]:
    """Group ``wlsync.tracked_columns()`` rows into Tables keyed by (schema, name)."""
    grouped: dict[tuple[str, str], list[Column]] = {}
    for schema, name, column, _ordinal, data_type, base_type, builtin, pk_position in rows:
        grouped.setdefault((schema, name), []).append(Column(column, data_type, base_type, builtin, pk_position))
    return {key: Table(key[0], key[1], tuple(cols)) for key, cols in grouped.items()}


class Sink:
    """What the driver needs from WL. Subclass it and implement the five methods
    ``ensure_tables``, ``apply``, ``max_version``, ``rows_by_key`` and ``keys``.
    verify's checksums (``checksum_schemes``, ``verify_hash``, ``range_checksums``,
    ``range_rows``) work through ``keys`` and ``rows_by_key`` unless a sink
    computes them in its own engine.

    Construction: ``cls(url)`` with the --target URL, as given. Connect lazily
    (the ``connection`` property calls ``open`` on first use): the constructor
    only checks the URL and raises TargetError when it is malformed.

    Errors: raise SinkError, never the store's own exceptions, so that the
    driver names WL (not MDB) as the side that failed. Wrapping each method's
    body in ``with self.guard("what it does"):`` does that: it turns any
    exception into SinkError, marked ``rejected`` when ``is_rejection`` says the
    store refused the data, and otherwise drops the connection so that the next
    call reconnects. A sink that keeps a dead connection stalls the driver.

    Threads: the driver calls a sink from one thread, one call at a time.
    Several driver processes may write one WL at once, each with its own sink.
    """

    #: Whether a reader of WL sees each batch whole or not at all. False for a
    #: store without multi-key transactions (NATS KV), where ``apply`` writes key
    #: by key: a reader may see part of a batch, never a key go back.
    atomic_batches = True

    def __init__(self, url: str):
        self.url = url
        self._connection: Any = None

    # -- to implement ------------------------------------------------------------------

    def ensure_tables(self, tables: dict[tuple[str, str], Table]) -> None:
        """Make WL ready to store these tables: create what is missing, add columns
        that appeared in MDB, keep columns MDB dropped. Called before the first
        batch of a table and whenever its columns change; must be idempotent and
        safe while another driver does the same."""
        raise NotImplementedError

    def apply(self, rows: list[dict], deadline: float) -> None:
        """Write one claimed batch atomically: all of it or none of it is in WL.

        Each row has ``table_schema``, ``table_name``, ``pk`` (a dict of text),
        ``action`` ('upsert' or 'delete'), ``row_data`` (a dict of text or None
        values for an upsert, None for a delete) and ``version``. Fencing: a key
        is written only by a row whose version is newer than the one WL recorded
        for that key, and the row's version is recorded with the write (deletes
        too), in the same atomic step. ``group_by_table`` gives the newest row per
        key, in key order. Applying a batch again changes nothing, so redelivery
        is harmless. Do not commit after ``deadline`` (time.monotonic()), when MDB
        may have ended the claim: ``check_deadline`` right before the commit, and
        wait for locks no longer than ``seconds_left``. Raise SinkError(rejected=
        True) when WL refuses the data; the driver then splits the batch to find
        the rows at fault."""
        raise NotImplementedError

    # -- consistent mode (optional): several writes in one WL transaction -----------------
    # ``wlsync run --consistent`` claims every event of one MDB snapshot, in chunks,
    # and needs them in WL as one commit. A sink offers that by implementing these
    # four; ``consistent`` then says True. A sink that cannot commit a batch
    # atomically leaves them out, and the driver refuses --consistent with it.

    def begin(self, deadline: float) -> None:
        """Open a WL transaction that ``write`` adds to and ``commit`` ends. Defer
        the store's foreign-key checks to the commit where it can: each commit is
        a state MDB had, so WL's foreign keys hold there, not between two writes."""
        raise NotImplementedError

    def write(self, rows: list[dict], deadline: float) -> None:
        """Write rows as ``apply`` does (fenced), inside the transaction ``begin``
        opened, without committing. When WL refuses them (SinkError(rejected=
        True)) the transaction is as it was before the call (a savepoint), so the
        driver can split the rows, find the ones at fault and write the rest."""
        raise NotImplementedError

    def commit(self, deadline: float) -> None:
        """Commit the transaction ``begin`` opened (not after ``deadline``)."""
        raise NotImplementedError

    def rollback(self) -> None:
        """End the transaction ``begin`` opened without keeping any of it; never raises."""
        raise NotImplementedError

    @property
    def consistent(self) -> bool:
        """Whether this sink can take a consistent-mode batch (implements begin ... rollback)."""
        return type(self).begin is not Sink.begin

    def max_version(self) -> int:
        """The highest version WL has recorded (0 for a new WL). The driver lifts
        MDB's version sequence above it when it connects (MDB restored from a
        backup must not have its batches refused as stale)."""
        raise NotImplementedError

    def rows_by_key(self, table: Table, pks: list[dict]) -> list[dict | None]:
        """For verify: WL's row for each key (a dict of text, as in row_data, with
        at least ``table``'s columns), or None where WL has no row; in ``pks``'
        order. A table ensure_tables never saw reads as empty."""
        raise NotImplementedError

    def keys(self, table: Table, chunk: int) -> Iterator[list[dict]]:
        """For verify: every key WL holds for ``table`` (dicts of text, as ``pk``),
        in lists of at most ``chunk``, holding no more than a chunk in memory. A key
        may come twice (a store's scan can repeat one while the table changes); a
        key that changes during the listing may be missed. A table ensure_tables
        never saw has none."""
        raise NotImplementedError

    # -- verify's checksums: Python over keys and rows_by_key, unless overridden -----------
    # A row's hash is the 64-bit hash (a scheme of checksum_schemes) of its record
    # text: ``record_text`` of its values in ``table.columns`` order, as PostgreSQL
    # text. Its bucket at b bits is the top b bits of the hash of its key's record
    # text (``bucket_of``). See wlsync_verify and MDB's wlsync.range_checksums.

    #: Hash schemes this sink computes verify's checksums in, preferred first:
    #: ``md5`` (any store) or ``hashtextextended`` (PostgreSQL's own, cheaper).
    checksum_schemes: tuple[str, ...] = ("md5",)

    def verify_hash(self, scheme: str, text: str) -> int:
        """The scheme's 64-bit hash of ``text`` as this sink computes it: verify
        uses a scheme only when MDB's ``wlsync.verify_hash`` agrees."""
        return md5_hash(text)

    def range_checksums(self, table: Table, scheme: str, bits: int, parent_bits: int = 0,
                        parents: list[int] | None = None) -> dict[int, tuple[int, int]]:
        """For verify: {bucket: (rows, sum of row hashes)} of every non-empty bucket
        at ``bits`` bits (0: the whole table is bucket 0), counting only the rows
        whose bucket at ``parent_bits`` is in ``parents`` when given. As MDB's
        ``wlsync.range_checksums``; a table ensure_tables never saw has none."""
        wanted = None if parents is None else set(parents)
        sums: dict[int, tuple[int, int]] = {}
        for key_hash, _pk, row in self._verify_scan(table, bits or wanted is not None):
            if wanted is not None and bucket_of(key_hash, parent_bits) not in wanted:
                continue
            bucket = bucket_of(key_hash, bits)
            count, total = sums.get(bucket, (0, 0))
            sums[bucket] = (count + 1, total + row_hash(table, row))
        return sums

    def range_rows(self, table: Table, scheme: str, bits: int, buckets: list[int]
                   ) -> Iterator[tuple[int, dict, int]]:
        """For verify: (bucket, pk, row hash) of every row in ``buckets`` (at
        ``bits`` bits), in bucket order. This version reads WL once per
        VERIFY_PASS_ROWS rows listed, holding no more than that."""
        remaining = sorted(set(buckets))
        while remaining:
            wanted = set(remaining)
            held: dict[int, list[tuple[dict, int]]] = {}
            count, cutoff = 0, None  # past the budget: only buckets up to cutoff are held
            for key_hash, pk, row in self._verify_scan(table, True):
                bucket = bucket_of(key_hash, bits)
                if bucket not in wanted or (cutoff is not None and bucket > cutoff):
                    continue
                held.setdefault(bucket, []).append((pk, row_hash(table, row)))
                count += 1
                while count > VERIFY_PASS_ROWS and len(held) > 1:
                    last = max(held)
                    count -= len(held.pop(last))
                    cutoff = last - 1
            for bucket in sorted(held):
                for pk, hashed in held[bucket]:
                    yield bucket, pk, hashed
            remaining = [] if cutoff is None else [b for b in remaining if b > cutoff]

    def _verify_scan(self, table: Table, with_key_hash: bool) -> Iterator[tuple[int, dict, dict]]:
        """(key hash or 0, pk, row) of every row WL holds for ``table``."""
        for keys in self.keys(table, VERIFY_READ_CHUNK):
            for pk, row in zip(keys, self.rows_by_key(table, keys), strict=True):
                if row is not None:  # deleted since it was listed
                    yield key_hash(table, pk) if with_key_hash else 0, pk, row

    # -- connection handling, shared -----------------------------------------------------

    def open(self) -> Any:
        """Open and return a connection to WL (used through ``connection``)."""
        raise NotImplementedError

    @property
    def connection(self) -> Any:
        """The open connection, opened now if there is none."""
        if self._connection is None:
            try:
                self._connection = self.open()
            except SinkError:
                raise
            except Exception as exc:
                raise SinkError(f"{self.name}: cannot connect: {error_text(exc)}") from exc
        return self._connection

    def reset(self) -> None:
        """Drop the connection (it may be dead); the next use opens a new one."""
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection may fail: it is gone either way
                pass

    def close(self) -> None:
        """Release what the sink holds; the driver calls it once, at exit."""
        self.reset()

    def is_rejection(self, exc: Exception) -> bool:
        """Whether the store's exception means it refuses the data (see SinkError)."""
        return False

    @property
    def name(self) -> str:
        """WL in messages: the URL without its password."""
        return redact(self.url)

    @contextmanager
    def guard(self, action: str):
        """Turn failures of the block into SinkError naming WL and ``action``; drop
        the connection after any failure that is not a rejection of the data."""
        try:
            yield
        except SinkError as exc:
            if not exc.rejected:
                self.reset()
            raise
        except Exception as exc:
            rejected = self.is_rejection(exc)
            if not rejected:
                self.reset()
            raise SinkError(f"{self.name}: {action}: {error_text(exc)}", rejected) from exc


# -- finding a sink ------------------------------------------------------------------------

def open_sink(target: str, sink_class: str | None = None) -> Sink:
    """The sink for a --target URL: the class registered for its scheme in the
    entry-point group ``wlsync.sinks``, or ``sink_class`` ("module:Class") when
    given, constructed with the URL. Raises TargetError with one line."""
    scheme = urlsplit(target).scheme if "://" in target else ""
    if sink_class is None:
        if not scheme:
            raise TargetError(f"target {target!r} is not a URL: give scheme://..., "
                              f"e.g. sqlite:///wl.db; installed sinks: {', '.join(sorted(installed_sinks()))}")
        sinks = installed_sinks()
        if scheme not in sinks:
            raise TargetError(f"unknown target scheme {scheme!r} in {redact(target)!r}; installed sinks: "
                              f"{', '.join(sorted(sinks))} (install one, or name a class with --sink-class "
                              "module:Class)")
        sink_class = sinks[scheme]
    cls = load_sink_class(sink_class)
    return cls(target)


def installed_sinks() -> dict[str, str]:
    """scheme -> "module:Class", from the entry points, else the built-in ones."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**BUILTIN_SINKS, **found}


def load_sink_class(spec: str) -> type[Sink]:
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise TargetError(f"sink class {spec!r}: expected module:Class, e.g. mypackage.mymodule:MySink")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise TargetError(f"cannot load sink class {spec!r}: {error_text(exc)}") from None
    if not (isinstance(cls, type) and issubclass(cls, Sink)):
        raise TargetError(f"sink class {spec!r} is not a subclass of wlsync_sinks.Sink")
    return cls


def redact(url: str) -> str:
    """A URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def error_text(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {one_line(exc)}"


# -- fencing and batches -------------------------------------------------------------------

def group_by_table(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows per table, one per key (the newest version wins), in key order so that
    two batches lock WL's rows in the same order."""
    return {table: [keyed[k] for k in sorted(keyed)] for table, keyed in newest_per_key(rows).items()}


def newest_per_key(rows: list[dict]) -> dict[tuple[str, str], dict[str, dict]]:
    """Per table, the canonical key text (``key_text``) -> the row of the newest
    version of that key; for a sink that needs no key order (one lock for the
    whole batch) or keeps keys by their text."""
    grouped: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        keyed = grouped.setdefault((row["table_schema"], row["table_name"]), {})
        key = key_text(row["pk"])
        if key not in keyed or keyed[key]["version"] < row["version"]:
            keyed[key] = row
    return grouped


# One encoder for every key: json.dumps(pk, sort_keys=True, ...) builds a new one per call.
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_json_string = json.encoder.encode_basestring  # what that encoder writes for a str (ensure_ascii=False)


def key_text(pk: dict) -> str:
    """The canonical text of a key (one spelling per key): how WL stores keys it
    cannot keep as columns, e.g. in a version registry. The JSON of the key with
    its names sorted, no spaces, UTF-8 kept: {"id":"42"}."""
    if len(pk) == 1:  # the common case, spelled directly: the same text, a third of the time
        ((name, value),) = pk.items()
        if type(value) is str:
            return "{" + _json_string(name) + ":" + _json_string(value) + "}"
    return _KEY_ENCODER.encode(pk)


def is_newer(version: int, recorded: int | None) -> bool:
    """The fencing rule: a row may be written when WL has no version for its key
    or an older one."""
    return recorded is None or version > recorded


def seconds_left(deadline: float) -> float:
    """Time until the batch's deadline: the longest a sink may wait for WL."""
    return deadline - time.monotonic()


def check_deadline(deadline: float) -> None:
    """Call right before committing: past the deadline, MDB may have ended the claim."""
    if seconds_left(deadline) <= 0:
        raise SinkError("the batch outlived its claim timeout; rolled back")


# -- values ----------------------------------------------------------------------------------
# Values travel as PostgreSQL text. A store with native types converts the types it
# holds losslessly and keeps every other value (numeric, dates and times, json,
# arrays, uuid, enums, ...) as that exact text, which verify compares as is.

INTEGER_TYPES = frozenset({"int2", "int4", "int8", "oid"})
FLOAT_TYPES = frozenset({"float4", "float8"})


def converter(column: Column) -> Callable[[str], Any] | None:
    """How a value of ``column`` turns from PostgreSQL's text form into a Python
    value (int, bool, float, bytes), or None when the text is kept as it is."""
    kind = column.base_type
    if kind in INTEGER_TYPES:
        return int
    if kind == "bool":
        return _bool_from_text
    if kind in FLOAT_TYPES:
        return float
    if kind == "bytea":
        return _bytea_from_text
    return None


def _bool_from_text(text: str) -> bool:
    return text == "t"


def _bytea_from_text(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def from_text(column: Column, text: str | None,
              choose: Callable[[Column], Callable[[str], Any] | None] = converter):
    """PostgreSQL's text form to a Python value: int, bool, float, bytes; else the
    text (``choose``: a store's own converters, as for ``row_reader``)."""
    convert = choose(column)
    return text if text is None or convert is None else convert(text)


def row_reader(columns: Sequence[Column], convert: Callable[[Column], Callable[[str], Any] | None] = converter
               ) -> Callable[[dict], Sequence]:
    """A function from a row_data dict to its values in ``columns``' order, each
    turned by ``convert(column)`` (None: kept as is; NULL stays None). Built once
    per table: a batch's rows then cost one dict lookup per column."""
    get = operator.itemgetter(*(c.name for c in columns))
    if len(columns) == 1:  # itemgetter of one name returns the value, not a tuple
        name = columns[0].name
        get = lambda data: (data[name],)  # noqa: E731
    converters = [convert(c) for c in columns]
    if not any(converters):
        return get
    return lambda data: [v if f is None or v is None else f(v) for f, v in zip(converters, get(data), strict=True)]


def to_text(column: Column, value) -> str | None:
    """Back to PostgreSQL's text form, for verify (floats compare by value: see same_value)."""
    if value is None:
        return None
    kind = column.base_type
    if kind == "bool":
        return "t" if value else "f"
    if kind == "bytea":
        return "\\x" + bytes(value).hex()
    return str(value)


def same_value(column: Column, mdb_text: str | None, wl_text: str | None) -> bool:
    """Whether WL holds MDB's value. Floats compare as numbers: their text forms
    differ between stores (1e+15 vs 1000000000000000.0) for the same double."""
    if column.base_type in FLOAT_TYPES and mdb_text is not None and wl_text is not None:
        a, b = float(mdb_text), float(wl_text)
        return a == b or (a != a and b != b)
    return mdb_text == wl_text


# -- verify: hashes and buckets ----------------------------------------------------------------
# What MDB's wlsync.range_checksums computes in SQL (wlsync._verify_row_hash_sql,
# wlsync._verify_bucket_sql), for sinks that compute it in Python.

VERIFY_READ_CHUNK = 5000      # keys per rows_by_key while hashing
VERIFY_PASS_ROWS = 100_000    # rows the default range_rows holds at a time

# record_out quotes a value holding any of these (isspace() of the C locale).
RECORD_QUOTING = re.compile(r'[\\"(),\t\n\v\f\r ]')


def record_text(values: Iterable[str | None]) -> str:
    """Values (PostgreSQL text or None) spelled as PostgreSQL's ROW(...)::text:
    NULL as nothing, "" for an empty string, quotes around a value holding
    \\, ", (, ), a comma or white space, with " and \\ doubled inside."""
    parts = []
    for value in values:
        if value is None:
            parts.append("")
        elif value and not RECORD_QUOTING.search(value):
            parts.append(value)
        else:
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '""') + '"')
    return "(" + ",".join(parts) + ")"


def md5_hash(text: str) -> int:
    """The 'md5' scheme: the first 8 bytes of the UTF-8 text's MD5 as a signed big-endian integer."""
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big", signed=True)


def bucket_of(hashed: int, bits: int) -> int:
    """The top ``bits`` bits of a signed 64-bit hash, as an unsigned number (0 for 0 bits)."""
    return (hashed >> (64 - bits)) & ((1 << bits) - 1) if bits else 0


def key_hash(table: Table, pk: dict) -> int:
    return md5_hash(record_text(pk[c.name] for c in table.pk))


def row_hash(table: Table, row: dict) -> int:
    return md5_hash(record_text(row.get(c.name) for c in table.columns))


EXACT_INTEGERS = 2.0 ** 53  # doubles from here on are integers, and Python's repr may differ from PostgreSQL's


def pg_float_text(value: float, single: bool = False) -> str:
    """A double as PostgreSQL prints it (float8out, or float4out with ``single``, with
    extra_float_digits > 0): the shortest digits that read back as the same value,
    fixed notation for decimal exponents from -4 up to 14 (5 for float4), else
    scientific with at least two exponent digits. PostgreSQL's Ryu excludes the
    ends of the rounding interval, which only integers past 2^53 can hit: there
    the shortest digits strictly inside are searched. (A float4 arrives here as the
    double read from its PostgreSQL text, whose digits repr gives back.)"""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    magnitude = abs(value)
    if magnitude < (1e6 if single else 1e15):
        # Python's notation, but for the ".0" it gives integers (its fixed
        # notation starts and ends later, but not below these).
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if magnitude < EXACT_INTEGERS or single:
        text = repr(magnitude)
    else:
        exact = int(magnitude)
        low = exact + int(math.nextafter(magnitude, 0.0))        # twice the lower end of the interval
        high = exact + int(math.nextafter(magnitude, math.inf))  # twice the upper end
        for length in range(1, 18):
            text = f"{magnitude:.{length - 1}e}"
            if low < 2 * int(Decimal(text)) < high:
                break
    _, digit_tuple, exponent = Decimal(text).as_tuple()
    digits = "".join(map(str, digit_tuple))
    significant = digits.rstrip("0")
    exponent += len(digits) - len(significant)
    point = exponent + len(significant) - 1  # the decimal exponent in scientific notation
    sign = "-" if value < 0 else ""
    if -4 <= point < (6 if single else 15):
        if point < 0:
            return sign + "0." + "0" * (-point - 1) + significant
        whole, fraction = significant[:point + 1].ljust(point + 1, "0"), significant[point + 1:]
        return sign + whole + ("." + fraction if fraction else "")
    mantissa = significant[0] + ("." + significant[1:] if len(significant) > 1 else "")
    return f"{sign}{mantissa}e{'+' if point >= 0 else '-'}{abs(point):02d}"
