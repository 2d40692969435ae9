"""WL sinks: where the driver writes. SQLite (embedded default) and PostgreSQL.

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
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from wlsync_db import describe, one_line


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
        # As in SQLAlchemy: sqlite:///wl.db is relative, sqlite:////srv/wl.db absolute.
        return SQLiteSink(target[len("sqlite:///"):])
    if scheme in ("postgresql", "postgres"):
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


# --------------------------------------------------------------------------- SQLite

# PostgreSQL base type -> SQLite column type. Values arrive as PostgreSQL text and
# are stored natively where SQLite has a lossless type; the rest stay text (exact).
SQLITE_TYPES = {
    "int2": "INTEGER", "int4": "INTEGER", "int8": "INTEGER", "oid": "INTEGER",
    "bool": "INTEGER", "float4": "REAL", "float8": "REAL", "bytea": "BLOB",
}


def to_sqlite(column: Column, text: str | None):
    if text is None:
        return None
    kind = column.base_type
    if kind in ("int2", "int4", "int8", "oid"):
        return int(text)
    if kind == "bool":
        return 1 if text == "t" else 0
    if kind in ("float4", "float8"):
        # SQLite stores NaN as NULL: keep it as text, which its REAL column keeps as is.
        return text if text == "NaN" else float(text)
    if kind == "bytea":
        return bytes.fromhex(text[2:])
    return text


def from_sqlite(column: Column, value) -> str | None:
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
    if column.base_type in ("float4", "float8") and mdb_text is not None and wl_text is not None:
        a, b = float(mdb_text), float(wl_text)
        return a == b or (a != a and b != b)
    return mdb_text == wl_text


def quote_sqlite(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SQLiteSink(Sink):
    def __init__(self, path: str):
        self.path = path
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")  # WL commits before MDB: it must be durable
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {VERSIONS} (table_name TEXT NOT NULL, pk TEXT NOT NULL, "
                            "version INTEGER NOT NULL, deleted_at REAL, PRIMARY KEY (table_name, pk))")
        except sqlite3.Error as exc:
            raise TargetError(f"cannot use SQLite file {Path(path).resolve()}: {exc}") from None
        self.tables: dict[tuple[str, str], Table] = {}
        self.batches = 0

    def ensure_tables(self, tables):
        try:
            self._ensure_tables(tables)
        except sqlite3.Error as exc:  # e.g. another driver creating the same table
            raise SinkError(f"SQLite {self.path}: preparing tables: {exc}") from exc

    def _ensure_tables(self, tables):
        for key, table in tables.items():
            name = quote_sqlite(table.wl_name)
            existing = {row[1] for row in self.db.execute(f"PRAGMA table_info({name})")}
            if not existing:
                columns = ", ".join(f"{quote_sqlite(c.name)} {SQLITE_TYPES.get(c.base_type, 'TEXT')}"
                                    for c in table.columns)
                pk = ", ".join(quote_sqlite(c.name) for c in table.pk)
                self.db.execute(f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({pk}))")
            else:
                for column in table.columns:
                    if column.name not in existing:
                        self.db.execute(f"ALTER TABLE {name} ADD COLUMN {quote_sqlite(column.name)} "
                                        f"{SQLITE_TYPES.get(column.base_type, 'TEXT')}")
            self.tables[key] = table

    def apply(self, rows, deadline):
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for (schema, name), group in group_by_table(rows).items():
                table = self.tables[(schema, name)]
                fresh = [r for r in group if self._advance(table, r)]
                upserts = [r["row_data"] for r in fresh if r["action"] == "upsert"]
                deletes = [r["pk"] for r in fresh if r["action"] == "delete"]
                if upserts:
                    self.db.executemany(self._upsert_sql(table),
                                        [[to_sqlite(c, data[c.name]) for c in table.columns] for data in upserts])
                if deletes:
                    self.db.executemany(self._delete_sql(table),
                                        [[to_sqlite(c, pk[c.name]) for c in table.pk] for pk in deletes])
            self.batches += 1
            if self.batches % PRUNE_EVERY == 1:
                self.db.execute(f"DELETE FROM {VERSIONS} WHERE deleted_at < ?", [time.time() - VERSION_RETENTION])
            if time.monotonic() > deadline:
                raise SinkError("the batch outlived its claim timeout; rolled back")
            self.db.execute("COMMIT")
        except (sqlite3.Error, ValueError, KeyError, SinkError) as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if isinstance(exc, SinkError):
                raise
            rejected = isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, ValueError, KeyError))
            raise SinkError(f"SQLite {self.path}: {exc}", rejected) from exc

    def max_version(self):
        return self.db.execute(f"SELECT coalesce(max(version), 0) FROM {VERSIONS}").fetchone()[0]

    def _advance(self, table: Table, row: dict) -> bool:
        """Record the row's version for its key if newer; whether it was."""
        deleted_at = time.time() if row["action"] == "delete" else None
        return self.db.execute(
            f"INSERT INTO {VERSIONS} (table_name, pk, version, deleted_at) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT (table_name, pk) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at "
            f"WHERE excluded.version > {VERSIONS}.version RETURNING 1",
            [table.wl_name, key_text(row["pk"]), row["version"], deleted_at]).fetchone() is not None

    @staticmethod
    def _upsert_sql(table: Table) -> str:
        cols = [quote_sqlite(c.name) for c in table.columns]
        pk = ", ".join(quote_sqlite(c.name) for c in table.pk)
        non_pk = [quote_sqlite(c.name) for c in table.columns if not c.pk_position]
        update = (f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in non_pk)}"
                  if non_pk else "DO NOTHING")
        return (f"INSERT INTO {quote_sqlite(table.wl_name)} ({', '.join(cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)}) ON CONFLICT ({pk}) {update}")

    @staticmethod
    def _delete_sql(table: Table) -> str:
        where = " AND ".join(f"{quote_sqlite(c.name)} = ?" for c in table.pk)
        return f"DELETE FROM {quote_sqlite(table.wl_name)} WHERE {where}"

    def rows_by_key(self, table, pks):
        cols = ", ".join(quote_sqlite(c.name) for c in table.columns)
        where = " AND ".join(f"{quote_sqlite(c.name)} = ?" for c in table.pk)
        query = f"SELECT {cols} FROM {quote_sqlite(table.wl_name)} WHERE {where}"
        result = []
        for pk in pks:
            row = self.db.execute(query, [to_sqlite(c, pk[c.name]) for c in table.pk]).fetchone()
            result.append(None if row is None else
                          {c.name: from_sqlite(c, v) for c, v in zip(table.columns, row)})
        return result

    def keys(self, table, chunk):
        cols = ", ".join(quote_sqlite(c.name) for c in table.pk)
        cursor = self.db.execute(f"SELECT {cols} FROM {quote_sqlite(table.wl_name)}")
        while batch := cursor.fetchmany(chunk):
            yield [{c.name: from_sqlite(c, v) for c, v in zip(table.pk, row)} for row in batch]

    def close(self):
        self.db.close()


# --------------------------------------------------------------------------- PostgreSQL

class PostgresSink(Sink):
    """A separate PostgreSQL database as WL: same column names and types.

    Types WL cannot know (enums, composites and other user-defined types) are
    stored as text. A whole batch is one statement per table and action:
    rows travel as one jsonb array of PostgreSQL text values, cast back in SQL.
    """

    def __init__(self, dsn: str):
        try:
            self.conn = psycopg.connect(dsn, connect_timeout=10)
            self.conn.execute("SET TimeZone = 'UTC'")
            self.conn.commit()
        except psycopg.Error as exc:
            raise TargetError(f"cannot connect to target {describe(dsn)}: {one_line(exc)}") from None
        self.tables: dict[tuple[str, str], Table] = {}
        self.batches = 0

    @staticmethod
    def _type(column: Column) -> sql.Composable:
        return sql.SQL(column.data_type if column.builtin else "text")

    def ensure_tables(self, tables):
        try:
            self._ensure_tables(tables)
        except psycopg.Error as exc:  # e.g. another driver creating the same table
            raise SinkError(f"PostgreSQL target: preparing tables: {one_line(exc)}") from exc

    def _ensure_tables(self, tables):
        with self.conn.transaction():
            self.conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (table_name text NOT NULL, pk jsonb NOT NULL, "
                                      "version bigint NOT NULL, deleted_at timestamptz, "
                                      "PRIMARY KEY (table_name, pk))").format(sql.Identifier(VERSIONS)))
            for key, table in tables.items():
                name = sql.Identifier(table.wl_name)
                self.conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
                    name,
                    sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c.name), self._type(c))
                                       for c in table.columns),
                    sql.SQL(", ").join(sql.Identifier(c.name) for c in table.pk)))
                for column in table.columns:
                    self.conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        name, sql.Identifier(column.name), self._type(column)))
                self.tables[key] = table

    def _casts(self, columns: list[Column], source: str) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("({}->>{})::{}").format(sql.SQL(source), sql.Literal(c.name), self._type(c)) for c in columns)

    def apply(self, rows, deadline):
        try:
            with self.conn.transaction():
                for (schema, name), group in group_by_table(rows).items():
                    table = self.tables[(schema, name)]
                    batch = [{"pk": r["pk"], "v": r["version"], "row": r["row_data"]} for r in group]
                    self.conn.execute(self._apply_sql(table), [json.dumps(batch), table.wl_name])
                self.batches += 1
                if self.batches % PRUNE_EVERY == 1:
                    self.conn.execute(sql.SQL("DELETE FROM {} WHERE deleted_at < now() - %s * interval '1 second'")
                                      .format(sql.Identifier(VERSIONS)), [VERSION_RETENTION])
                if time.monotonic() > deadline:
                    raise SinkError("the batch outlived its claim timeout; rolled back")
        except psycopg.Error as exc:
            state = exc.sqlstate or ""
            raise SinkError(f"PostgreSQL target: {one_line(exc)}", state[:2] in REJECTING_SQLSTATE_CLASSES) from exc

    def max_version(self):
        with self.conn.transaction():
            if self.conn.execute("SELECT to_regclass(%s) IS NULL", [VERSIONS]).fetchone()[0]:
                return 0
            return self.conn.execute(sql.SQL("SELECT coalesce(max(version), 0) FROM {}")
                                     .format(sql.Identifier(VERSIONS))).fetchone()[0]

    def _apply_sql(self, table: Table) -> sql.Composable:
        """One statement per table and batch: advance the keys' versions, then
        upsert or delete the keys whose version advanced."""
        return sql.SQL("""
            WITH batch AS MATERIALIZED (SELECT e FROM jsonb_array_elements(%s::jsonb) AS e),
            fresh AS (
                INSERT INTO {versions} AS v (table_name, pk, version, deleted_at)
                SELECT %s, b.e->'pk', (b.e->>'v')::bigint,
                       CASE WHEN jsonb_typeof(b.e->'row') = 'null' THEN now() END
                FROM batch AS b ORDER BY b.e->'pk'
                ON CONFLICT (table_name, pk) DO UPDATE
                SET version = EXCLUDED.version, deleted_at = EXCLUDED.deleted_at
                WHERE v.version < EXCLUDED.version
                RETURNING v.pk
            ), upserted AS (
                {upsert}
            ), deleted AS (
                {delete}
            )
            SELECT (SELECT count(*) FROM upserted), (SELECT count(*) FROM deleted)""").format(
            versions=sql.Identifier(VERSIONS), upsert=self._upsert_sql(table), delete=self._delete_sql(table))

    def _upsert_sql(self, table: Table) -> sql.Composable:
        non_pk = [c for c in table.columns if not c.pk_position]
        update = (sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in non_pk))
            if non_pk else sql.SQL("DO NOTHING"))
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM batch AS b JOIN fresh AS f ON f.pk = b.e->'pk' "
                       "WHERE jsonb_typeof(b.e->'row') = 'object' ON CONFLICT ({}) {} RETURNING 1").format(
            sql.Identifier(table.wl_name),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns),
            self._casts(list(table.columns), "b.e->'row'"),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in table.pk),
            update)

    def _delete_sql(self, table: Table) -> sql.Composable:
        return sql.SQL("DELETE FROM {} AS t USING batch AS b JOIN fresh AS f ON f.pk = b.e->'pk' "
                       "WHERE jsonb_typeof(b.e->'row') = 'null' AND ({}) = ({}) RETURNING 1").format(
            sql.Identifier(table.wl_name),
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c.name)) for c in table.pk),
            self._casts(table.pk, "b.e->'pk'"))

    def _render(self, table: Table, alias: str) -> sql.Composable:
        """A row as jsonb of text values, rendered like MDB's wlsync.current_rows."""
        return sql.SQL("jsonb_object(ARRAY[{}]::text[], ARRAY[{}]::text[])").format(
            sql.SQL(", ").join(sql.Literal(c.name) for c in table.columns),
            sql.SQL(", ").join(output_text(sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(c.name)))
                               for c in table.columns))

    def rows_by_key(self, table, pks):
        query = sql.SQL(
            "SELECT {} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS k(pk, ord) "
            "LEFT JOIN {} AS t ON {} ORDER BY k.ord").format(
            sql.SQL("CASE WHEN t.{} IS NULL THEN NULL ELSE {} END").format(
                sql.Identifier(table.pk[0].name), self._render(table, "t")),
            sql.Identifier(table.wl_name),
            sql.SQL(" AND ").join(sql.SQL("t.{} = (k.pk->>{})::{}").format(
                sql.Identifier(c.name), sql.Literal(c.name), self._type(c)) for c in table.pk))
        with self.conn.transaction():
            self.conn.execute(RENDER_SETTINGS)
            return [row[0] for row in self.conn.execute(query, [json.dumps(pks)])]

    def keys(self, table, chunk):
        names = [c.name for c in table.pk]
        with self.conn.transaction():
            self.conn.execute(RENDER_SETTINGS)
            with self.conn.cursor(name="wlsync_verify_keys") as cursor:
                cursor.execute(sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(output_text(sql.Identifier(n)) for n in names),
                    sql.Identifier(table.wl_name)))
                while batch := cursor.fetchmany(chunk):
                    yield [dict(zip(names, row)) for row in batch]

    def close(self):
        self.conn.close()


def output_text(value: sql.Composable) -> sql.Composable:
    """A value as its type's output text, NULL kept: as MDB's wlsync._text_object_sql."""
    return sql.SQL("CASE WHEN {0} IS NULL THEN NULL ELSE concat({0}) END").format(value)


# The same output settings as MDB's wlsync.current_rows, for the verify reads.
RENDER_SETTINGS = ("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
                   "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3; "
                   "SET LOCAL bytea_output = 'hex'")


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
