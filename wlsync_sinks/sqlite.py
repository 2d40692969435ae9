"""SQLite as WL: the embedded default (a file, no server).

Target URL, as in SQLAlchemy: sqlite:///wl.db is relative, sqlite:////srv/wl.db absolute.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from wlsync_sinks import (FLOAT_TYPES, INTEGER_TYPES, PRUNE_EVERY, VERSION_RETENTION, VERSIONS, Column, Sink, Table,
                          TargetError, check_deadline, converter, from_text, is_newer, md5_hash,
                          newest_per_key, pg_float_text, row_reader, seconds_left, to_text)

PREFIX = "sqlite:///"
BUSY_PAUSE_MIN, BUSY_PAUSE_MAX = 0.0002, 0.002  # seconds between tries of a busy file's write lock

# PostgreSQL base type -> SQLite column type. Values arrive as PostgreSQL text and
# are stored natively where SQLite has a lossless type; the rest stay text (exact).
SQLITE_TYPES = {
    "int2": "INTEGER", "int4": "INTEGER", "int8": "INTEGER", "oid": "INTEGER",
    "bool": "INTEGER", "float4": "REAL", "float8": "REAL", "bytea": "BLOB",
}


def sqlite_converter(column: Column):
    """As wlsync_sinks.converter, but a NaN float stays the text 'NaN': SQLite stores
    a NaN REAL as NULL, and its REAL column keeps the text as is. An integer stays
    text: its INTEGER column stores PostgreSQL's decimal text as that integer (type
    affinity, in SQLite's C, where int() in Python was a tenth of the driver's time),
    and compares a text parameter with its integers as a number."""
    if column.base_type in FLOAT_TYPES:
        return _float_or_nan
    if column.base_type in INTEGER_TYPES:
        return None
    return converter(column)


def _float_or_nan(text: str):
    return text if text == "NaN" else float(text)


def pg_text(column: Column) -> Callable[[object], str | None]:
    """A stored value back to PostgreSQL's text, exactly: floats as PostgreSQL
    prints them (to_text leaves them to Python)."""
    if column.base_type in FLOAT_TYPES:
        single = column.base_type == "float4"
        return lambda value: value if value is None or isinstance(value, str) else pg_float_text(value, single)
    return lambda value: to_text(column, value)


# record_out quotes a value holding any of these (wlsync_sinks.RECORD_QUOTING).
QUOTED_GLOB = "'*[\\\"(),\t\n\v\f\r ]*'"
# Types whose text is never empty and never holds one of those: not checked.
NEVER_QUOTED = frozenset({"numeric", "uuid"})


def record_sql(columns: list[Column], value_of: Callable[[Column], str]) -> str:
    """SQL text of the record text of these columns (wlsync_sinks.record_text) from
    the values SQLite stores, rendered as PostgreSQL prints them: integers and
    booleans in SQL; floats through the function wlsync_float8 (or wlsync_float4),
    which _hash_functions registers; bytea and text quoted as record_out does."""
    parts = []
    for column in columns:
        value = value_of(column)
        kind = column.base_type
        if kind in FLOAT_TYPES:
            parts.append(f"coalesce(wlsync_{kind}({value}), '')")
        elif kind == "bool":
            parts.append(f"CASE WHEN {value} IS NULL THEN '' WHEN {value} THEN 't' ELSE 'f' END")
        elif SQLITE_TYPES.get(kind) == "INTEGER":
            parts.append(f"coalesce(CAST({value} AS TEXT), '')")
        elif kind in NEVER_QUOTED:
            parts.append(f"coalesce({value}, '')")
        else:
            text = f"('\\x' || lower(hex({value})))" if kind == "bytea" else value
            # Only a value holding a backslash or " needs the replace()s (the costly part).
            escaped = (f"""CASE WHEN instr({text}, '"') OR instr({text}, '\\') """
                       f"""THEN replace(replace({text}, '\\', '\\\\'), '"', '""') ELSE {text} END""")
            parts.append(f"CASE WHEN {value} IS NULL THEN '' WHEN {text} = '' OR {text} GLOB {QUOTED_GLOB} "
                         f"""THEN '"' || {escaped} || '"' ELSE {text} END""")
    return "'(' || " + " || ',' || ".join(parts) + " || ')'"


def bucket_sql(hashed: str, bits: int) -> str:
    """The top ``bits`` bits of a 64-bit hash (wlsync_sinks.bucket_of), in SQLite."""
    return f"(({hashed} >> {64 - bits}) & {(1 << bits) - 1})" if bits else "0"


def quote_sqlite(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_type(column: Column) -> str:
    return SQLITE_TYPES.get(column.base_type, "TEXT")


class Md5Sum:
    """The aggregate wlsync_md5_sum(text): the exact sum of the texts' md5 hashes
    (wlsync_sinks.md5_hash), as text: SQLite's integers stop at 2^63."""

    def __init__(self):
        self.total = 0

    def step(self, text: str) -> None:
        self.total += md5_hash(text)

    def finalize(self) -> str:
        return str(self.total)


@dataclass
class Prepared:
    """One table's part of a batch, ready to write: the keys as a JSON array (the
    fence's lookup), each key's registry row (table, key text, version, deleted
    at), and the values of its upserts and of its deletes."""
    table: Table
    keys: str
    versions: list[tuple]
    upserts: list[tuple]
    deletes: list[tuple]

    def newer_than(self, recorded: dict[str, int]) -> Prepared:
        """Only the keys whose version is newer than WL's."""
        kept = Prepared(self.table, self.keys, [], [], [])
        upserts, deletes = iter(self.upserts), iter(self.deletes)
        for version_row in self.versions:
            _table, key, version, deleted_at = version_row
            deleted = deleted_at is not None
            params = next(deletes) if deleted else next(upserts)
            if is_newer(version, recorded.get(key)):
                kept.versions.append(version_row)
                (kept.deletes if deleted else kept.upserts).append(params)
        return kept


class SQLiteSink(Sink):
    def __init__(self, url: str):
        super().__init__(url)
        if not url.startswith(PREFIX) or len(url) == len(PREFIX):
            raise TargetError(f"SQLite target {url!r}: use sqlite:///wl.db (relative) or sqlite:////abs/wl.db")
        self.path = str(Path(url[len(PREFIX):]).resolve())
        self.tables: dict[tuple[str, str], Table] = {}
        # Per WL table: row_data -> the upsert's values, pk -> the delete's values.
        self.readers: dict[str, tuple] = {}
        self.batches = 0

    @property
    def name(self) -> str:
        return f"SQLite file {self.path}"

    def open(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")  # WL commits before MDB: it must be durable
            # WITHOUT ROWID: one B-tree (the key's) to write per version, not two.
            db.execute(f"CREATE TABLE IF NOT EXISTS {VERSIONS} (table_name TEXT NOT NULL, pk TEXT NOT NULL, "
                       "version INTEGER NOT NULL, deleted_at REAL, PRIMARY KEY (table_name, pk)) WITHOUT ROWID")
        except sqlite3.Error:
            db.close()
            raise
        return db

    def is_rejection(self, exc):
        return isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, ValueError, KeyError))

    def ensure_tables(self, tables):
        with self.guard("preparing tables"):  # fails e.g. when another driver creates the same table
            db = self.connection
            for key, table in tables.items():
                name = quote_sqlite(table.wl_name)
                existing = {row[1] for row in db.execute(f"PRAGMA table_info({name})")}
                if not existing:
                    columns = ", ".join(f"{quote_sqlite(c.name)} {sqlite_type(c)}" for c in table.columns)
                    pk = ", ".join(quote_sqlite(c.name) for c in table.pk)
                    db.execute(f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({pk}))")
                else:
                    for column in table.columns:
                        if column.name not in existing:
                            db.execute(f"ALTER TABLE {name} ADD COLUMN {quote_sqlite(column.name)} "
                                       f"{sqlite_type(column)}")
                self.tables[key] = table
                self.readers[table.wl_name] = (row_reader(table.columns, sqlite_converter),
                                               row_reader(table.pk, sqlite_converter))

    def apply(self, rows, deadline):
        with self.guard("writing a batch"):
            # Everything but the writes before the write lock: SQLite has one
            # writer, and another driver's batch goes on while this one prepares.
            prepared = self._prepare(rows)
            self._begin(deadline)
            try:
                self._write(prepared)
                self._commit(deadline)
            except BaseException:
                self.rollback()
                raise

    def begin(self, deadline):
        with self.guard("starting a transaction"):
            # Consistent mode: WL's foreign keys (SQLite checks them only where
            # foreign_keys is on, which it can be only outside a transaction) are
            # checked at the commit, which is a state MDB had.
            self.connection.execute("PRAGMA foreign_keys = ON")
            self._begin(deadline)
            self.connection.execute("PRAGMA defer_foreign_keys = ON")  # until the transaction ends

    def write(self, rows, deadline):
        with self.guard("writing a batch"):
            db = self.connection
            prepared = self._prepare(rows)
            db.execute("SAVEPOINT wlsync_write")
            try:
                self._write(prepared)
            except BaseException:
                db.execute("ROLLBACK TO wlsync_write")
                raise
            finally:
                db.execute("RELEASE wlsync_write")

    def commit(self, deadline):
        with self.guard("committing"):
            self._commit(deadline)

    def rollback(self):
        db = self._connection
        if db is not None and db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                self.reset()  # closing it rolls back

    def _begin(self, deadline: float) -> None:
        """BEGIN IMMEDIATE: the write lock from the start, so the versions the
        fence reads cannot change before this transaction records its own.

        Another writer's lock (another driver, a reader's checkpoint, someone
        holding the file) is waited for no longer than the batch may live, but
        not by SQLite's busy handler: it sleeps 1, 2, 5, 10 ... 100 ms between
        tries, and two drivers sharing the file spent a quarter of their time
        asleep after the other's commit. Tries here are at most 2 ms apart."""
        db = self.connection
        db.execute("PRAGMA busy_timeout = 0")
        pause = BUSY_PAUSE_MIN
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                # SQLITE_BUSY's message (sqlite_errorcode needs Python 3.11).
                if not str(exc).startswith("database is locked") or seconds_left(deadline) <= pause:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, BUSY_PAUSE_MAX)
        # The statements inside wait in SQLite (rarely: a WAL recovery by a reader).
        db.execute(f"PRAGMA busy_timeout = {max(0, int(seconds_left(deadline) * 1000))}")

    def _prepare(self, rows: list[dict]) -> list[Prepared]:
        """Per table, the fence's keys and the writes of every row, as if the
        fence lets all of them through (it nearly always does)."""
        prepared = []
        now = time.time()
        for (schema, name), keyed in newest_per_key(rows).items():
            table = self.tables[(schema, name)]
            values, key_values = self.readers[table.wl_name]
            prepared.append(Prepared(
                table, json.dumps(list(keyed)),
                [(table.wl_name, key, row["version"], None if row["action"] == "upsert" else now)
                 for key, row in keyed.items()],
                [values(row["row_data"]) for row in keyed.values() if row["action"] == "upsert"],
                [key_values(row["pk"]) for row in keyed.values() if row["action"] == "delete"]))
        return prepared

    def _write(self, prepared: list[Prepared]) -> None:
        for batch in prepared:
            self._apply_table(batch)

    def _commit(self, deadline: float) -> None:
        db = self.connection
        self.batches += 1
        if self.batches % PRUNE_EVERY == 1:
            db.execute(f"DELETE FROM {VERSIONS} WHERE deleted_at < ?", [time.time() - VERSION_RETENTION])
        check_deadline(deadline)
        db.execute("COMMIT")

    def _apply_table(self, batch: Prepared) -> None:
        """The fence for a whole table's rows at once: read the versions WL
        recorded for these keys, keep the rows that are newer, record their
        versions and write them (all under the write lock taken by BEGIN IMMEDIATE)."""
        db = self.connection
        table = batch.table
        recorded = dict(db.execute(
            f"SELECT pk, version FROM {VERSIONS} WHERE table_name = ? AND pk IN (SELECT value FROM json_each(?))",
            [table.wl_name, batch.keys]))
        if recorded:
            batch = batch.newer_than(recorded)
        if batch.versions:
            db.executemany(
                f"INSERT INTO {VERSIONS} (table_name, pk, version, deleted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (table_name, pk) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at",
                batch.versions)
        if batch.upserts:
            db.executemany(self._upsert_sql(table), batch.upserts)
        if batch.deletes:
            db.executemany(self._delete_sql(table), batch.deletes)

    def max_version(self):
        with self.guard("reading the highest version"):
            return self.connection.execute(f"SELECT coalesce(max(version), 0) FROM {VERSIONS}").fetchone()[0]

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

    def _exists(self, table: Table) -> bool:
        return self.connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                       [table.wl_name]).fetchone() is not None

    def rows_by_key(self, table, pks):
        with self.guard("reading rows"):
            if not self._exists(table):
                return [None] * len(pks)
            cols = ", ".join(quote_sqlite(c.name) for c in table.columns)
            where = " AND ".join(f"{quote_sqlite(c.name)} = ?" for c in table.pk)
            query = f"SELECT {cols} FROM {quote_sqlite(table.wl_name)} WHERE {where}"
            result = []
            for pk in pks:
                row = self.connection.execute(query, [from_text(c, pk[c.name], sqlite_converter) for c in table.pk]).fetchone()
                result.append(None if row is None
                              else {c.name: to_text(c, v) for c, v in zip(table.columns, row, strict=True)})
            return result

    # -- verify: SQLite scans, renders each row's record text and sums; it has no hash
    # function, so the md5 of each record text is a Python function SQLite calls.

    def _hash_functions(self) -> None:
        db = self.connection
        db.create_function("wlsync_md5", 1, md5_hash, deterministic=True)
        db.create_aggregate("wlsync_md5_sum", 1, Md5Sum)
        db.create_function("wlsync_float8", 1, pg_text(Column("", "", "float8", True, None)), deterministic=True)
        db.create_function("wlsync_float4", 1, pg_text(Column("", "", "float4", True, None)), deterministic=True)

    @staticmethod
    def _hashed_rows_sql(table: Table, key_hashed: bool, filter_bits: int | None) -> str:
        """Every row as (k: its key's hash, or 0 unless ``key_hashed``; c0, c1...:
        its columns), only those whose bucket at ``filter_bits`` is in the JSON
        array parameter when that is not None. The columns get names of ours, which
        no user column can shadow; LIMIT -1 OFFSET 0 keeps SQLite from computing
        the key hash twice."""
        columns = ", ".join(f"t.{quote_sqlite(c.name)} AS c{i}" for i, c in enumerate(table.columns))
        where = (f" WHERE {bucket_sql('k', filter_bits)} IN (SELECT value FROM json_each(?))"
                 if filter_bits is not None else "")
        if not key_hashed:
            return f"SELECT 0 AS k, {columns} FROM {quote_sqlite(table.wl_name)} AS t{where}"
        key_hash = f"wlsync_md5({record_sql(table.pk, lambda c: f't.{quote_sqlite(c.name)}')})"
        return (f"SELECT * FROM (SELECT {key_hash} AS k, {columns} "
                f"FROM {quote_sqlite(table.wl_name)} AS t LIMIT -1 OFFSET 0){where}")

    @staticmethod
    def _row_text_sql(table: Table) -> str:
        """The record text of a row of _hashed_rows_sql (alias h), as wlsync_sinks.row_hash hashes it."""
        return record_sql(list(table.columns), lambda c: f"h.c{table.columns.index(c)}")

    def range_checksums(self, table, scheme, bits, parent_bits=0, parents=None):
        rows = self._hashed_rows_sql(table, bits > 0 or parents is not None,
                                     parent_bits if parents is not None else None)
        query = (f"SELECT {bucket_sql('h.k', bits)} AS b, count(*), wlsync_md5_sum({self._row_text_sql(table)}) "
                 f"FROM ({rows}) AS h GROUP BY b")
        with self.guard("computing checksums"):
            if not self._exists(table):
                return {}
            self._hash_functions()
            return {bucket: (count, int(total)) for bucket, count, total in self.connection.execute(
                query, [] if parents is None else [json.dumps(list(parents))])}

    def range_rows(self, table, scheme, bits, buckets):
        texts = [pg_text(c) for c in table.pk]
        query = (f"SELECT {bucket_sql('h.k', bits)} AS b, wlsync_md5({self._row_text_sql(table)}), "
                 f"{', '.join(f'h.c{table.columns.index(c)}' for c in table.pk)} "
                 f"FROM ({self._hashed_rows_sql(table, True, bits)}) AS h ORDER BY b")
        with self.guard("listing rows by bucket"):
            if not self._exists(table):
                return
            self._hash_functions()
            cursor = self.connection.execute(query, [json.dumps(list(buckets))])
            while batch := cursor.fetchmany(1000):
                for bucket, hashed, *values in batch:
                    yield bucket, {c.name: text(v) for c, text, v in zip(table.pk, texts, values, strict=True)}, hashed

    def keys(self, table, chunk):
        with self.guard("listing keys"):
            if not self._exists(table):
                return
            cols = ", ".join(quote_sqlite(c.name) for c in table.pk)
            cursor = self.connection.execute(f"SELECT {cols} FROM {quote_sqlite(table.wl_name)}")
            while batch := cursor.fetchmany(chunk):
                yield [{c.name: to_text(c, v) for c, v in zip(table.pk, row, strict=True)} for row in batch]
