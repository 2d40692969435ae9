"""WL sinks: where the driver writes. SQLite (embedded default) and PostgreSQL.

A sink receives what ``wlsync.claim_sync_events`` returns: per key an action
('upsert' or 'delete'), the key and the row with every value as PostgreSQL
text. It keeps, for every tracked table, a WL table of the same column names
that holds exactly the live rows. Applying a batch is idempotent (upsert of the
current row, delete of a gone one), so redelivery after a crash is harmless.

WL table names: ``public.movies`` becomes ``movies``; other schemas keep their
schema in the name (``app.cast`` becomes the table ``"app.cast"``).
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from wlsync_db import describe, one_line


class SinkError(Exception):
    """WL refused or failed a write; the MDB transaction must roll back."""


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

    def apply(self, rows: list[dict]) -> None:
        """Write one claimed batch in one WL transaction and commit it."""
        raise NotImplementedError

    def rows_by_key(self, table: Table, pks: list[dict]) -> list[dict | None]:
        """WL's rows (as PostgreSQL text, like row_data) for the given text keys."""
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
        return 1 if text == "true" else 0  # bool::text is 'true' or 'false'
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
        return "true" if value else "false"
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
            self.db.execute("CREATE TABLE IF NOT EXISTS _wlsync_meta (key TEXT PRIMARY KEY, value TEXT)")
        except sqlite3.Error as exc:
            raise TargetError(f"cannot use SQLite file {Path(path).resolve()}: {exc}") from None
        self.tables: dict[tuple[str, str], Table] = {}

    def ensure_tables(self, tables):
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

    def apply(self, rows):
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for (schema, name), group in group_by_table(rows).items():
                table = self.tables[(schema, name)]
                upserts = [r["row_data"] for r in group if r["action"] == "upsert"]
                deletes = [r["pk"] for r in group if r["action"] == "delete"]
                if upserts:
                    self.db.executemany(self._upsert_sql(table),
                                        [[to_sqlite(c, data[c.name]) for c in table.columns] for data in upserts])
                if deletes:
                    self.db.executemany(self._delete_sql(table),
                                        [[to_sqlite(c, pk[c.name]) for c in table.pk] for pk in deletes])
            self.db.execute("COMMIT")
        except (sqlite3.Error, ValueError, KeyError) as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise SinkError(f"SQLite {self.path}: {exc}") from exc

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

    @staticmethod
    def _type(column: Column) -> sql.Composable:
        return sql.SQL(column.data_type if column.builtin else "text")

    def ensure_tables(self, tables):
        with self.conn.transaction():
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

    def _casts(self, table: Table, columns: list[Column], source: str) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("({}->>{})::{}").format(sql.SQL(source), sql.Literal(c.name), self._type(c)) for c in columns)

    def apply(self, rows):
        try:
            with self.conn.transaction():
                for (schema, name), group in group_by_table(rows).items():
                    table = self.tables[(schema, name)]
                    upserts = [r["row_data"] for r in group if r["action"] == "upsert"]
                    deletes = [r["pk"] for r in group if r["action"] == "delete"]
                    if upserts:
                        self.conn.execute(self._upsert_sql(table), [json.dumps(upserts)])
                    if deletes:
                        self.conn.execute(self._delete_sql(table), [json.dumps(deletes)])
        except psycopg.OperationalError as exc:
            raise SinkError(f"PostgreSQL target: {one_line(exc)}") from exc
        except psycopg.Error as exc:
            raise SinkError(f"PostgreSQL target refused the batch: {one_line(exc)}") from exc

    def _upsert_sql(self, table: Table) -> sql.Composable:
        non_pk = [c for c in table.columns if not c.pk_position]
        update = (sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in non_pk))
            if non_pk else sql.SQL("DO NOTHING"))
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM jsonb_array_elements(%s::jsonb) AS r "
                       "ON CONFLICT ({}) {}").format(
            sql.Identifier(table.wl_name),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns),
            self._casts(table, list(table.columns), "r"),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in table.pk),
            update)

    def _delete_sql(self, table: Table) -> sql.Composable:
        return sql.SQL("DELETE FROM {} AS t USING jsonb_array_elements(%s::jsonb) AS k WHERE {}").format(
            sql.Identifier(table.wl_name),
            sql.SQL(" AND ").join(sql.SQL("t.{} = (k->>{})::{}").format(
                sql.Identifier(c.name), sql.Literal(c.name), self._type(c)) for c in table.pk))

    def _render(self, table: Table, alias: str) -> sql.Composable:
        """A row as jsonb of text values, rendered like MDB's wlsync.current_rows."""
        return sql.SQL("jsonb_object(ARRAY[{}]::text[], ARRAY[{}]::text[])").format(
            sql.SQL(", ").join(sql.Literal(c.name) for c in table.columns),
            sql.SQL(", ").join(sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(c.name))
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
                    sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(n)) for n in names),
                    sql.Identifier(table.wl_name)))
                while batch := cursor.fetchmany(chunk):
                    yield [dict(zip(names, row)) for row in batch]

    def close(self):
        self.conn.close()


# The same output settings as MDB's wlsync.current_rows, for the verify reads.
RENDER_SETTINGS = ("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
                   "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3; "
                   "SET LOCAL bytea_output = 'hex'")


def group_by_table(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        grouped.setdefault((row["table_schema"], row["table_name"]), []).append(row)
    return grouped
