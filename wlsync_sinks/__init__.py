"""WL sinks: where the driver writes. The interface and the pieces every sink
shares live here; each datastore has a module of its own (sqlite.py, postgres.py).

A sink receives what ``wlsync.claim_sync_events`` returns: per key an action
('upsert' or 'delete'), the key and the row with every value as PostgreSQL
text. It keeps, for every tracked table, a WL table of the same column names
that holds exactly the live rows. Applying a batch is idempotent (upsert of the
current row, delete of a gone one), so redelivery after a crash is harmless.

Fencing: every batch carries a version (wlsync.claim_version_seq, drawn after
its keys were locked in MDB). Beside the tables, ``_wlsync_versions`` holds the
last version applied to each key, live or deleted; a batch writes a key only if
its version is newer, checked and recorded under the registry row's lock in the
same WL transaction. So a batch that arrives late, after MDB ended its claim
(timeout, pg_terminate_backend, restart) and another driver wrote a newer state,
changes nothing. Entries of deleted keys are pruned after VERSION_RETENTION
seconds: a batch never commits WL later than its claim timeout (60 s default).

WL table names: ``public.movies`` becomes ``movies``; other schemas keep their
schema in the name (``app.cast`` becomes the table ``"app.cast"``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Iterator
from urllib.parse import urlsplit


VERSIONS = "_wlsync_versions"
VERSION_RETENTION = 3600.0  # seconds a deleted key's version is kept
PRUNE_EVERY = 1000          # batches between prunings


class SinkError(Exception):
    """A WL write failed; the batch is not in WL.

    ``rejected``: WL refused the data itself (a constraint, a value it cannot
    store, a row too large): retrying the same rows will fail the same way, so
    the driver isolates the rows at fault. Otherwise the failure is WL's state
    (unreachable, locked, timed out): the whole batch is retried later.
    """

    def __init__(self, message: str, rejected: bool = False):
        super().__init__(message)
        self.rejected = rejected


# SQLSTATE classes meaning "WL refuses this data": data exception, integrity
# constraint violation, program limit exceeded (row or index entry too large),
# and errors raised by WL's own triggers.
REJECTING_SQLSTATE_CLASSES = ("22", "23", "54", "P0")


class TargetError(Exception):
    """The --target is unusable (bad URL, unwritable file, unreachable server)."""


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
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    @property
    def pk(self) -> list[Column]:
        return sorted((c for c in self.columns if c.pk_position), key=lambda c: c.pk_position)


def tables_from_rows(rows: Iterable[tuple]) -> dict[tuple[str, str], Table]:
    """Group ``wlsync.tracked_columns()`` rows into Tables keyed by (schema, name)."""
    grouped: dict[tuple[str, str], list[Column]] = {}
    for schema, name, column, _ordinal, data_type, base_type, builtin, pk_position in rows:
        grouped.setdefault((schema, name), []).append(Column(column, data_type, base_type, builtin, pk_position))
    return {key: Table(key[0], key[1], tuple(cols)) for key, cols in grouped.items()}


def open_sink(target: str) -> "Sink":
    """A sink for ``sqlite:///path`` or ``postgresql://...``."""
    scheme = urlsplit(target).scheme
    if target.startswith("sqlite:///") and len(target) > len("sqlite:///"):
        from wlsync_sinks.sqlite import SQLiteSink
        # As in SQLAlchemy: sqlite:///wl.db is relative, sqlite:////srv/wl.db absolute.
        return SQLiteSink(target[len("sqlite:///"):])
    if scheme in ("postgresql", "postgres"):
        from wlsync_sinks.postgres import PostgresSink
        return PostgresSink(target)
    raise TargetError(f"unknown target {target!r}: use sqlite:///wl.db (relative), sqlite:////abs/wl.db "
                      "or postgresql://user@host/dbname")


class Sink:
    """What the driver needs from WL."""

    def ensure_tables(self, tables: dict[tuple[str, str], Table]) -> None:
        raise NotImplementedError

    def apply(self, rows: list[dict], deadline: float) -> None:
        """Write one claimed batch in one WL transaction and commit it, keeping of
        each key only a version newer than WL's; roll back instead of committing
        after ``deadline`` (time.monotonic()), when MDB may have ended the claim."""
        raise NotImplementedError

    def rows_by_key(self, table: Table, pks: list[dict]) -> list[dict | None]:
        """WL's rows (as PostgreSQL text, like row_data) for the given text keys."""
        raise NotImplementedError

    def max_version(self) -> int:
        """The highest batch version WL has recorded (0 for a new WL)."""
        raise NotImplementedError

    def keys(self, table: Table, chunk: int) -> Iterator[list[dict]]:
        """Every key WL holds for ``table``, in chunks."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def same_value(column: Column, mdb_text: str | None, wl_text: str | None) -> bool:
    """Whether WL holds MDB's value. Floats compare as numbers: their text forms
    differ between stores (1e+15 vs 1000000000000000.0) for the same double."""
    if column.base_type in ("float4", "float8") and mdb_text is not None and wl_text is not None:
        a, b = float(mdb_text), float(wl_text)
        return a == b or (a != a and b != b)
    return mdb_text == wl_text


def group_by_table(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows per table, one per key (the newest version wins), in key order so that
    two batches lock WL's rows in the same order."""
    grouped: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        keyed = grouped.setdefault((row["table_schema"], row["table_name"]), {})
        key = key_text(row["pk"])
        if key not in keyed or keyed[key]["version"] < row["version"]:
            keyed[key] = row
    return {table: [keyed[k] for k in sorted(keyed)] for table, keyed in grouped.items()}


def key_text(pk: dict) -> str:
    """The canonical text of a key, as the version registry stores it."""
    return json.dumps(pk, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
