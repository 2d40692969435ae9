"""SQLite as WL: the embedded default (a file, no server)."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from wlsync_sinks import (PRUNE_EVERY, VERSION_RETENTION, VERSIONS, Column, Sink, SinkError, Table,
                          TargetError, group_by_table, key_text)

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


