"""MariaDB (or MySQL) as WL: ``mysql://user:password@host:3306/dbname`` (or ``mariadb://``).

Layout: the tables, column names and ``_wlsync_versions`` registry of the other
sinks. Values are stored natively where MariaDB has a type that holds every value
of the PostgreSQL type exactly, and as PostgreSQL's text otherwise:

- smallint, integer, bigint, oid: SMALLINT, INT, BIGINT, INT UNSIGNED;
  boolean: BOOLEAN (0/1); bytea: LONGBLOB;
- everything else as LONGTEXT holding PostgreSQL's output text: numeric (no
  DECIMAL holds NaN, Infinity or numeric's full precision), floats (DOUBLE holds
  no NaN or Infinity), dates and times (infinity, BC and years past 9999 fit no
  DATETIME; timestamptz is in UTC), json and jsonb (MySQL's JSON type rewrites
  the text and MariaDB's refuses nesting 32 levels deep), arrays, uuid,
  enums and other types.

Text uses utf8mb4 with the binary, NO PAD collation, so keys compare like
PostgreSQL's: 'a', 'A' and 'a ' stay three keys. InnoDB indexes at most 3072
bytes a key, so key columns stored as text are VARCHAR sharing what the
fixed-width key columns leave, at 4 bytes a character: a lone text key holds up
to 768 characters (767 beside an int, 766 beside a bigint), two hold 384 each.
WL rejects a longer key value and the driver parks it as a dead letter.

A batch is one transaction: per table, one locking SELECT of the registry rows
of the batch's keys (locking the rows WL has and reading, as one GROUP_CONCAT,
which are stale: recorded at the batch's version or newer, usually none), one
multi-row INSERT recording the versions of the keys WL does not have yet, one
UPDATE of the others' versions, then one ``INSERT ... ON DUPLICATE KEY UPDATE``
of the rows and one DELETE; statements are cut to fit max_allowed_packet. Two
drivers holding one key at once serialize on its registry row: the second waits
for the first to commit, then writes only if its version is strictly newer.
When both find a key new, the second's INSERT waits for the first and then
fails as a duplicate; that batch then decides again for all its keys of the
table under their locks (``_fence_locking``: an insert of every key's row, a
read of the stale ones, a write of the others' versions). After a batch of
only new keys (a backfill), a table's next batch tries the INSERT of every key
first: with none in the registry it is the whole fence.

Consistent mode (``begin``, ``write``, ``commit``, ``rollback``): the same writes,
several in one transaction; each ``write`` behind a savepoint, so a rejected one
leaves the transaction as it was. MariaDB has no deferred foreign keys: the
transaction runs with foreign_key_checks off (see the comment at ``begin``).
"""
from __future__ import annotations

import hashlib
import math
from contextlib import contextmanager
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit

from wlsync_sinks import (PRUNE_EVERY, VERSION_RETENTION, VERSIONS, Column, Sink, SinkError, Table, TargetError,
                          check_deadline, group_by_table, key_text, redact, seconds_left)

try:
    import pymysql
    from pymysql.converters import escape_string
except ImportError:
    raise TargetError("mysql:// targets need PyMySQL: pip install 'wlsync[mysql]'") from None

MAX_IDENTIFIER = 64        # characters, for table and column names
MAX_KEY_BYTES = 3072       # InnoDB's limit on one index entry (16 KiB pages, DYNAMIC rows)
WL_TIMEOUT = 60            # seconds WL may stay silent before its connection is given up
LOCK_TIMEOUT = 10          # seconds a WL statement waits for a row or table lock (less near the deadline)
NO_VERSION = -2 ** 63      # a new key's registry row until its batch records a version
LOOPBACK = ("127.0.0.1", "::1", "localhost")
UNKNOWN_DATABASE = 1049    # ER_BAD_DB_ERROR
DUPLICATE_ENTRY = 1062     # ER_DUP_ENTRY

# Server errors meaning "WL refuses this data" (SQLSTATE 22 and 23, a row or
# statement too large, an error SIGNALled by a trigger): retrying the same rows
# fails the same way, so the driver isolates them. Any other error is WL's state
# (connection, locks, deadlocks, a full disk): the batch is retried.
REJECTING_ERRORS = {
    1048,  # column cannot be null
    1062, 1169, 1557, 1586,  # duplicate entry
    1216, 1217, 1451, 1452,  # foreign key
    4025,  # CHECK constraint failed
    1264, 1690,  # value out of range
    1265, 1292, 1366, 1367, 1411,  # value truncated or invalid for its column
    1300,  # invalid utf8mb4 string
    1406,  # data too long for its column
    1118,  # row size too large
    1153,  # statement larger than max_allowed_packet
    1644,  # SIGNAL SQLSTATE '45000' in a trigger
}

# PostgreSQL base type -> MariaDB column type, for the types stored natively.
NATIVE_TYPES = {"int2": "SMALLINT", "int4": "INT", "int8": "BIGINT", "oid": "INT UNSIGNED",
                "bool": "BOOLEAN", "bytea": "LONGBLOB"}
# Bytes each native key column takes in an index entry.
KEY_WIDTHS = {"int2": 2, "int4": 4, "int8": 8, "oid": 4, "bool": 1}


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def identifier_problem(name: str) -> str | None:
    """Why MariaDB cannot hold this table or column name unchanged (None: it can)."""
    if len(name) > MAX_IDENTIFIER:
        return f"is {len(name)} characters long (MariaDB's limit is {MAX_IDENTIFIER})"
    wide = next((ch for ch in name if ord(ch) > 0xFFFF), None)
    if wide is not None:
        return f"contains U+{ord(wide):04X}, beyond the Basic Multilingual Plane that MariaDB names are limited to"
    if name.endswith(" "):
        return "ends with a space, which MariaDB names cannot"
    return None


def check_identifiers(table: Table) -> None:
    """A one-line TargetError for a name MariaDB would refuse or change."""
    where = f"{table.schema}.{table.name}"
    problem = identifier_problem(table.wl_name)
    if problem:
        raise TargetError(f"WL (MariaDB) cannot hold a table for {where}: its name {table.wl_name!r} {problem}; "
                          "rename it in MDB or sync it to another WL")
    seen: dict[str, str] = {}
    for column in table.columns:
        problem = identifier_problem(column.name)
        if problem:
            raise TargetError(f"WL (MariaDB) cannot hold column {column.name!r} of {where}: the name {problem}; "
                              "rename it in MDB or sync the table to another WL")
        other = seen.setdefault(column.name.lower(), column.name)
        if other != column.name:
            raise TargetError(f"WL (MariaDB) cannot hold columns {other!r} and {column.name!r} of {where}: "
                              "MariaDB column names ignore case; rename one in MDB or sync the table to another WL")


class MySQLSink(Sink):
    """A MariaDB (or MySQL) database as WL, through PyMySQL.

    The connection is opened by the first call and dropped after any failure
    that is not WL refusing the data (Sink.guard), so a killed connection or a
    restarted server costs one failed batch, which the driver retries.
    """

    def __init__(self, url: str):
        super().__init__(url)
        parts = urlsplit(url)
        database = unquote(parts.path.lstrip("/"))
        if not database or "/" in database or parts.query:
            raise TargetError(f"invalid MariaDB target {redact(url)!r}: give mysql://user:password@host:3306/dbname")
        try:
            port = parts.port or 3306
        except ValueError:
            raise TargetError(f"invalid MariaDB target {redact(url)!r}: the port is not a number") from None
        self.params = {"host": parts.hostname or "127.0.0.1", "port": port,
                       "user": unquote(parts.username) if parts.username else "root",
                       "password": unquote(parts.password) if parts.password else "", "database": database}
        self.where = f"mysql://{self.params['user']}@{self.params['host']}:{port}/{database}"
        self.tables: dict[tuple[str, str], Table] = {}
        self.batches = 0
        self.only_new: dict[str, bool] = {}   # per table: its last batch's keys were all new (see _fence)
        # The connection whose transaction begin() opened (consistent mode), until it ends.
        self.consistent_connection: pymysql.connections.Connection | None = None
        # Set by open(), from the server.
        self.max_statement = 0
        self.collation = ""

    @property
    def name(self) -> str:
        return f"MariaDB {self.where}"

    # -- the connection -----------------------------------------------------------------

    def open(self) -> pymysql.connections.Connection:
        try:
            conn = pymysql.connect(**self.params, charset="utf8mb4", autocommit=True, connect_timeout=10,
                                   read_timeout=WL_TIMEOUT, write_timeout=WL_TIMEOUT,
                                   # PyMySQL tries TLS by default (unverified); on loopback it
                                   # protects nothing and costs ~70 ms a connection.
                                   ssl_disabled=self.params["host"] in LOOPBACK)
        except pymysql.Error as exc:
            if exc.args and exc.args[0] == UNKNOWN_DATABASE:
                raise SinkError(f"{self.name}: database {self.params['database']!r} does not exist; create it "
                                f"first: CREATE DATABASE `{self.params['database']}`") from exc
            raise SinkError(f"{self.name}: cannot connect: {message(exc)}") from exc
        try:
            with conn.cursor() as cursor:
                # Strict: a value that does not fit is an error, never silently cut.
                cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
                # READ COMMITTED: no gap locks, so drivers writing other keys do not block each other.
                cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                # The fence reads a batch's recorded versions as one GROUP_CONCAT (no longer than a statement).
                cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT}, "
                               f"lock_wait_timeout = {LOCK_TIMEOUT}, group_concat_max_len = @@max_allowed_packet")
                cursor.execute("SELECT @@max_allowed_packet, (SELECT max(COLLATION_NAME) FROM "
                               "information_schema.COLLATIONS WHERE COLLATION_NAME IN "
                               "('utf8mb4_nopad_bin', 'utf8mb4_0900_bin'))")
                packet, collation = cursor.fetchone()
        except BaseException:
            conn.close()
            raise
        if collation is None:
            # A PAD SPACE collation would take keys 'a' and 'a ' for one.
            conn.close()
            raise SinkError(f"{self.name} has no binary NO PAD utf8mb4 collation: "
                            "WL needs MariaDB 10.2 or later, or MySQL 8.0 or later")
        # Room for the statement around the rows.
        self.max_statement = packet - 64 * 1024
        # MariaDB's and MySQL 8's names for binary NO PAD utf8mb4.
        self.collation = collation
        return conn

    def is_rejection(self, exc):
        # ValueError, KeyError: a value the column's encoder cannot convert.
        return (isinstance(exc, (ValueError, KeyError))
                or isinstance(exc, pymysql.Error) and error_code(exc) in REJECTING_ERRORS)

    @contextmanager
    def guard(self, action: str):
        """Sink.guard, with PyMySQL's (code, text) errors spelled as one line."""
        with super().guard(action):
            try:
                yield
            except pymysql.Error as exc:
                raise SinkError(f"{self.name}: {action}: {message(exc)}", self.is_rejection(exc)) from exc

    @contextmanager
    def transaction(self) -> Iterator[pymysql.cursors.Cursor]:
        """A cursor in a transaction, committed when the block ends, else rolled back."""
        conn = self.connection
        conn.begin()
        try:
            with conn.cursor() as cursor:
                yield cursor
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except pymysql.Error:
                self.reset()  # the connection is gone, and the transaction with it
            raise

    # -- the Sink interface -------------------------------------------------------------

    def ensure_tables(self, tables):
        for table in tables.values():
            check_identifiers(table)  # a TargetError: the user's to fix, not retried
        with self.guard("preparing tables"):
            if self.consistent_connection is None:
                self._ensure_tables(self.connection, tables)
                return
            # Inside begin()'s transaction: MariaDB's DDL commits the open
            # transaction first (CREATE TABLE IF NOT EXISTS too), which would
            # publish part of the snapshot and go on without a transaction. So
            # the DDL runs on a connection of its own. It never waits for this
            # transaction: a table (or column) it adds is one no write of the
            # transaction has touched (MDB's claim holds its tables, so their
            # columns do not change within one snapshot), and CREATE TABLE IF NOT
            # EXISTS of a table this transaction holds does not wait for it. The
            # new (empty) table or column is WL's before the transaction commits.
            conn = self.open()
            try:
                self._ensure_tables(conn, tables)
            finally:
                conn.close()

    def _ensure_tables(self, conn: pymysql.connections.Connection, tables) -> None:
        with conn.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {quote(VERSIONS)} ("
                f"table_name VARCHAR({MAX_IDENTIFIER}) NOT NULL, "
                "pk_hash BINARY(32) NOT NULL COMMENT 'SHA-256 of pk: keys can outgrow an index entry', "
                "pk LONGTEXT NOT NULL, version BIGINT NOT NULL, deleted_at DATETIME(6) NULL, "
                "PRIMARY KEY (table_name, pk_hash), KEY (deleted_at)) "
                f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={self.collation}")
            for key, table in tables.items():
                types = column_types(table)
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {quote(table.wl_name)} ("
                    + ", ".join(f"{quote(c.name)} {types[c.name]}" for c in table.columns)
                    + f", PRIMARY KEY ({', '.join(quote(c.name) for c in table.pk)})) "
                    f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={self.collation}")
                cursor.execute(f"SHOW COLUMNS FROM {quote(table.wl_name)}")
                existing = {column[0].lower() for column in cursor.fetchall()}
                missing = [c for c in table.columns if c.name.lower() not in existing]
                if missing:
                    cursor.execute(f"ALTER TABLE {quote(table.wl_name)} "
                                   + ", ".join(f"ADD COLUMN {quote(c.name)} {types[c.name]}" for c in missing))
                self.tables[key] = table

    def apply(self, rows, deadline):
        with self.guard("writing a batch"):
            check_deadline(deadline)
            self._lock_wait(deadline)
            with self.transaction() as cursor:
                self._write(cursor, rows)
                self._commit_prepare(cursor, deadline)

    # -- consistent mode: one WL transaction over several writes ---------------------
    # Foreign keys. MariaDB has no deferred constraints: with checks on, a child
    # row claimed in an earlier chunk than its parent (chunks come in MDB's queue
    # order, not in foreign-key order), or a parent deleted before its children,
    # would be refused mid-snapshot although the snapshot as a whole satisfies the
    # key. begin() therefore turns foreign_key_checks off in this session for the
    # consistent transaction only, and commit()/rollback() restore the session's
    # value before the transaction ends; apply() never runs with it off (a
    # connection lost meanwhile is replaced by one with the server's default).
    # This keeps WL's foreign keys because every consistent commit is a state MDB
    # had: a WL foreign key that mirrors one MDB enforces holds at each commit.
    # With checks off MariaDB also runs no ON DELETE/UPDATE CASCADE or SET NULL,
    # which is right here: MDB's own cascaded changes are captured and reach WL in
    # the same snapshot. What it gives up: a row WL rejects (a dead letter) does
    # not hold back the rows that reference it, and a WL foreign key that MDB does
    # not enforce is not checked. Checking at commit instead (emulating DEFERRED
    # with anti-joins over the keys written) would refuse the whole snapshot, and
    # every retry of it, so one orphan would stop the drain: dead letters exist so
    # that poison does not block.

    def begin(self, deadline):
        with self.guard("starting a transaction"):
            check_deadline(deadline)
            self._lock_wait(deadline)
            conn = self.connection
            with conn.cursor() as cursor:
                cursor.execute("SET @wlsync_foreign_key_checks = @@SESSION.foreign_key_checks, "
                               "SESSION foreign_key_checks = 0")
            self.consistent_connection = conn  # before BEGIN: rollback() restores the checks whatever fails
            conn.begin()

    def write(self, rows, deadline):
        with self.guard("writing a batch"):
            conn = self._in_transaction()
            check_deadline(deadline)
            self._lock_wait(deadline)
            with conn.cursor() as cursor:
                # MariaDB undoes a failed statement, not the statements before it
                # (the registry's rows of this write): a savepoint undoes both, so
                # that a rejected write leaves the transaction as it was.
                cursor.execute("SAVEPOINT wlsync_write")
                try:
                    self._write(cursor, rows)
                except BaseException as exc:
                    try:
                        cursor.execute("ROLLBACK TO SAVEPOINT wlsync_write")
                    except pymysql.Error as lost:
                        # A deadlock rolled the whole transaction back, or the
                        # connection is gone: the transaction cannot go on.
                        raise SinkError(f"{self.name}: writing a batch: {message(exc)}; the transaction "
                                        f"is lost ({message(lost)})") from exc
                    raise
                cursor.execute("RELEASE SAVEPOINT wlsync_write")

    def commit(self, deadline):
        with self.guard("committing"):
            conn = self._in_transaction()
            with conn.cursor() as cursor:
                self._commit_prepare(cursor, deadline)
                # The session's own foreign key setting again, before the
                # transaction ends (it checks nothing written so far).
                cursor.execute("SET SESSION foreign_key_checks = @wlsync_foreign_key_checks")
            self.consistent_connection = None
            conn.commit()

    def rollback(self):
        conn, self.consistent_connection = self.consistent_connection, None
        if conn is None or conn is not self._connection:
            return  # never begun, or its connection was dropped: MariaDB rolled it back
        try:
            conn.rollback()
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION foreign_key_checks = @wlsync_foreign_key_checks")
        except Exception:
            self.reset()  # closing the connection ends the transaction and the session's setting

    def _in_transaction(self) -> pymysql.connections.Connection:
        """The connection of the transaction begin() opened; a SinkError when
        there is none any more (its connection failed): writing on a new one
        would commit each statement by itself."""
        conn = self.consistent_connection
        if conn is None or conn is not self._connection:
            raise SinkError(f"{self.name}: no transaction open (begin() was not called, or its connection "
                            "failed since)")
        return conn

    def _lock_wait(self, deadline: float) -> None:
        """Wait for another driver's row locks no longer than the batch may live."""
        with self.connection.cursor() as cursor:
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = "
                           f"{max(1, min(LOCK_TIMEOUT, math.ceil(seconds_left(deadline))))}")

    def _write(self, cursor, rows: list[dict]) -> None:
        # Tables in name order, keys in hash order: batches lock shared keys in one order.
        for (schema, name), group in sorted(group_by_table(rows).items(),
                                            key=lambda item: self.tables[item[0]].wl_name):
            self._apply_table(cursor, self.tables[(schema, name)], group)

    def _commit_prepare(self, cursor, deadline: float) -> None:
        """What comes right before a commit: the occasional pruning of deleted
        keys' versions, and the last check of the deadline."""
        self.batches += 1
        if self.batches % PRUNE_EVERY == 1:
            cursor.execute(f"DELETE FROM {quote(VERSIONS)} "
                           "WHERE deleted_at < UTC_TIMESTAMP(6) - INTERVAL %s SECOND", [VERSION_RETENTION])
        check_deadline(deadline)

    def _apply_table(self, cursor, table: Table, group: list[dict]) -> None:
        """The fence (``_fence``), then the writes of the keys it let through."""
        texts = [key_text(r["pk"]) for r in group]
        hashes = [hashlib.sha256(text.encode()).hexdigest().upper() for text in texts]
        # In the registry's index order, the same for every batch: batches lock shared keys in one order.
        ordered = sorted(zip(hashes, texts, group, strict=True), key=lambda item: item[0])
        fresh = self._fence(cursor, literal(table.wl_name), ordered)
        if not fresh:
            return
        encoders = [(c.name, encoder(c)) for c in table.columns]
        upserts = ["(" + ",".join([encode(r["row_data"][column]) for column, encode in encoders]) + ")"
                   for _, _, r in fresh if r["action"] == "upsert"]
        if upserts:
            non_pk = [quote(c.name) for c in table.columns if not c.pk_position] or [quote(table.pk[0].name)]
            self._execute_in_parts(
                cursor, f"INSERT INTO {quote(table.wl_name)} ({', '.join(quote(c.name) for c in table.columns)}) "
                        "VALUES ", upserts,
                " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in non_pk))
        deletes = [r["pk"] for _, _, r in fresh if r["action"] == "delete"]
        if deletes:
            self._execute_in_parts(cursor, f"DELETE FROM {quote(table.wl_name)} WHERE {key_columns(table)} IN (",
                                   key_literals(table, deletes), ")")

    def _fence(self, cursor, name: str, ordered: list[tuple[str, str, dict]]) -> list[tuple[str, str, dict]]:
        """Record the versions of the keys this batch is the newest for, under
        their registry row locks, and return those keys (hash, text, row).

        1: lock the registry rows of the keys WL has (a locking read: the latest
        committed version, waiting for a batch that holds one) and read which
        are stale (recorded at the batch's version or a newer one). 2: insert the
        new keys' rows with their versions, a plain INSERT: when another batch
        inserts one of them meanwhile, MariaDB makes this one wait for it to
        end, then fails it as a duplicate, and ``_fence_locking`` decides again
        for every key under all their locks. 3: record the versions of the
        other keys WL has. Every lock is held until the commit, so another batch
        holding one of these keys waits for it and then sees the version
        recorded here.

        When the table's last batch had only new keys (a backfill, a new WL),
        step 2 is tried first for every key: if none is in the registry, that
        INSERT is the whole fence (every key is new, recorded and locked); the
        first key that is there fails it as a duplicate (undone whole), and the
        steps above follow."""
        if self.only_new.get(name):
            statements = list(self._parts(
                f"INSERT INTO {quote(VERSIONS)} (table_name, pk_hash, pk, version, deleted_at) VALUES ",
                self._version_items(name, ordered), ""))
            try:
                self._execute_all(cursor, statements)
                return ordered
            except pymysql.IntegrityError as exc:
                if error_code(exc) != DUPLICATE_ENTRY:
                    raise
        existing: set[str] = set()
        stale: set[str] = set()
        by_version: dict[int, list[str]] = {}
        for h, _, r in ordered:
            by_version.setdefault(int(r["version"]), []).append(f"X'{h}'")
        for version, literals in by_version.items():
            # One row back, whatever the number of keys: "hash+" (fresh) or "hash-" (stale), comma-separated.
            for ((found,),) in self._query_in_parts(
                    cursor, f"SELECT GROUP_CONCAT(HEX(pk_hash), IF(version >= {version}, '-', '+')) "
                            f"FROM {quote(VERSIONS)} WHERE table_name = {name} AND pk_hash IN (", literals,
                    ") FOR UPDATE"):
                for item in found.split(",") if found else ():
                    existing.add(item[:-1])
                    if item[-1] == "-":
                        stale.add(item[:-1])
        new = [(h, text, r) for h, text, r in ordered if h not in existing]
        self.only_new[name] = not existing
        if new:
            statements = list(self._parts(
                f"INSERT INTO {quote(VERSIONS)} (table_name, pk_hash, pk, version, deleted_at) VALUES ",
                self._version_items(name, new), ""))
            try:
                self._execute_all(cursor, statements)
            except pymysql.IntegrityError as exc:
                if error_code(exc) != DUPLICATE_ENTRY:
                    raise
                return self._fence_locking(cursor, name, ordered)
        # The keys WL has: an UPDATE per version and action (usually one), of rows locked above.
        known: dict[tuple[int, str], list[str]] = {}
        for h, _, r in ordered:
            if h in existing and h not in stale:
                known.setdefault((int(r["version"]), r["action"]), []).append(f"X'{h}'")
        for (version, action), literals in known.items():
            self._execute_in_parts(
                cursor, f"UPDATE {quote(VERSIONS)} SET version = {version}, deleted_at = "
                        f"{'UTC_TIMESTAMP(6)' if action == 'delete' else 'NULL'} "
                        f"WHERE table_name = {name} AND pk_hash IN (", literals, ")")
        return [(h, text, r) for h, text, r in ordered if h not in stale]

    def _execute_all(self, cursor, statements: list) -> None:
        """Statements that must all apply or none: one is undone by MariaDB when
        it fails; several (a batch past max_allowed_packet) need a savepoint."""
        if len(statements) == 1:
            cursor.execute(statements[0])
            return
        cursor.execute("SAVEPOINT wlsync_fence")
        try:
            for statement in statements:
                cursor.execute(statement)
        except pymysql.Error:
            cursor.execute("ROLLBACK TO SAVEPOINT wlsync_fence")
            raise
        cursor.execute("RELEASE SAVEPOINT wlsync_fence")

    def _fence_locking(self, cursor, name: str, ordered: list[tuple[str, str, dict]]) -> list[tuple[str, str, dict]]:
        """The fence when another batch inserted some of these keys at the same
        time. 1: take every key's registry row lock (a new key gets a row with no
        version yet, NO_VERSION). 2: under those locks, read which keys WL
        recorded at the batch's version or a newer one: those are stale. 3:
        record the version of every other key."""
        self._execute_in_parts(
            cursor, f"INSERT INTO {quote(VERSIONS)} (table_name, pk_hash, pk, version) VALUES ",
            [f"({name},X'{h}',{literal(text)},{NO_VERSION})" for h, text, _ in ordered],
            # A no-op update: it takes the existing row's lock and changes nothing.
            " ON DUPLICATE KEY UPDATE version = version")
        # Stale keys (usually none), one query per version in the batch.
        by_version: dict[int, list[str]] = {}
        for h, _, r in ordered:
            by_version.setdefault(int(r["version"]), []).append(f"X'{h}'")
        stale: set[str] = set()
        for version, literals in by_version.items():
            for rows in self._query_in_parts(
                    cursor, f"SELECT HEX(pk_hash) FROM {quote(VERSIONS)} WHERE table_name = {name} "
                            f"AND version >= {version} AND pk_hash IN (", literals, ") FOR UPDATE"):
                stale.update(h for (h,) in rows)
        fresh = [(h, text, r) for h, text, r in ordered if h not in stale]
        if fresh:
            self._execute_in_parts(
                cursor, f"INSERT INTO {quote(VERSIONS)} (table_name, pk_hash, pk, version, deleted_at) VALUES ",
                self._version_items(name, fresh),
                " ON DUPLICATE KEY UPDATE version = VALUES(version), deleted_at = VALUES(deleted_at)")
        return fresh

    @staticmethod
    def _version_items(name: str, keys: list[tuple[str, str, dict]]) -> list[str]:
        return [f"({name},X'{h}',{literal(text)},{int(r['version'])},"
                f"{'UTC_TIMESTAMP(6)' if r['action'] == 'delete' else 'NULL'})" for h, text, r in keys]

    def _parts(self, head: str, items: list[str], tail: str) -> Iterator[bytes | str]:
        """``head item,item,... tail`` statements, each under max_allowed_packet."""
        room = self.max_statement - len(head.encode()) - len(tail.encode())
        # Usually all in one: a UTF-8 character takes at most 4 bytes.
        if 4 * (sum(map(len, items)) + len(items)) <= room:
            yield head + ",".join(items) + tail
            return
        chunk: list[bytes] = []
        size = 0
        for item in items:
            data = item.encode()
            if len(data) > room:
                raise SinkError(f"{self.name}: a row of {len(data)} bytes exceeds the server's "
                                "max_allowed_packet; raise it in MariaDB to store the row", rejected=True)
            if chunk and size + len(data) + 1 > room:
                yield head.encode() + b",".join(chunk) + tail.encode()
                chunk, size = [], 0
            chunk.append(data)
            size += len(data) + 1
        if chunk:
            yield head.encode() + b",".join(chunk) + tail.encode()

    def _execute_in_parts(self, cursor, head: str, items: list[str], tail: str) -> None:
        for statement in self._parts(head, items, tail):
            cursor.execute(statement)

    def _query_in_parts(self, cursor, head: str, items: list[str], tail: str) -> Iterator[tuple]:
        for statement in self._parts(head, items, tail):
            cursor.execute(statement)
            yield cursor.fetchall()

    def max_version(self):
        with self.guard("reading the highest version"), self.connection.cursor() as cursor:
            if not self._exists(cursor, VERSIONS):
                return 0
            # NO_VERSION rows exist only inside a batch's transaction, which this does not see.
            cursor.execute(f"SELECT coalesce(max(version), 0) FROM {quote(VERSIONS)}")
            return int(cursor.fetchone()[0])

    @staticmethod
    def _exists(cursor, name: str) -> bool:
        cursor.execute("SELECT count(*) FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", [name])
        return bool(cursor.fetchone()[0])

    def rows_by_key(self, table, pks):
        decoders = [(c.name, decoder(c)) for c in table.columns]
        key_names = [c.name for c in table.pk]
        found: dict[tuple, dict] = {}
        with self.guard("reading rows"), self.connection.cursor() as cursor:
            if not pks or not self._exists(cursor, table.wl_name):
                return [None] * len(pks)
            for rows in self._query_in_parts(
                    cursor, f"SELECT {', '.join(quote(c.name) for c in table.columns)} FROM {quote(table.wl_name)} "
                            f"WHERE {key_columns(table)} IN (", key_literals(table, pks), ")"):
                for values in rows:
                    row = {column: decode(value) for (column, decode), value in zip(decoders, values, strict=True)}
                    found[tuple(row[n] for n in key_names)] = row
        return [found.get(tuple(pk[n] for n in key_names)) for pk in pks]

    # -- verify: MariaDB renders each row's record text, hashes and sums

    def range_checksums(self, table, scheme, bits, parent_bits=0, parents=None):
        if parents is not None and not parents:
            return {}
        where = ("" if parents is None else
                 f" WHERE {bucket_sql(table, parent_bits)} IN ({','.join(map(str, map(int, parents)))})")
        with self.guard("computing checksums"), self.connection.cursor() as cursor:
            if not self._exists(cursor, table.wl_name):
                return {}
            # The unsigned hash read as signed (two's complement), summed exactly as DECIMAL.
            cursor.execute(f"SELECT {bucket_sql(table, bits)} AS b, COUNT(*), "
                           f"SUM(CAST({md5_sql(record_sql(list(table.columns)))} AS SIGNED)) "
                           f"FROM {quote(table.wl_name)} AS t{where} GROUP BY 1")
            return {int(bucket): (int(count), int(total)) for bucket, count, total in cursor.fetchall()}

    def range_rows(self, table, scheme, bits, buckets):
        """Streamed (unbuffered) on a connection of its own: verify reads WL's rows
        (rows_by_key) on the sink's connection meanwhile."""
        if not buckets:
            return
        decoders = [decoder(c) for c in table.pk]
        query = (f"SELECT {bucket_sql(table, bits)} AS b, CAST({md5_sql(record_sql(list(table.columns)))} AS SIGNED), "
                 f"{', '.join(f't.{quote(c.name)}' for c in table.pk)} FROM {quote(table.wl_name)} AS t "
                 f"WHERE {bucket_sql(table, bits)} IN ({','.join(map(str, map(int, buckets)))}) ORDER BY 1")
        with self.guard("listing rows by bucket"):
            with self.connection.cursor() as cursor:
                if not self._exists(cursor, table.wl_name):
                    return
            conn = self.open()
            try:
                with conn.cursor(pymysql.cursors.SSCursor) as cursor:
                    cursor.execute(query)
                    while batch := cursor.fetchmany(1000):
                        for bucket, hashed, *values in batch:
                            pk = {c.name: decode(v) for c, decode, v in zip(table.pk, decoders, values, strict=True)}
                            yield int(bucket), pk, int(hashed)
            finally:
                conn.close()

    def keys(self, table, chunk):
        """Keyset pages in key order: nothing stays open between pages."""
        columns = [quote(c.name) for c in table.pk]
        decoders = [(c.name, decoder(c)) for c in table.pk]
        select = f"SELECT {', '.join(columns)} FROM {quote(table.wl_name)}"
        order = f" ORDER BY {', '.join(columns)} LIMIT {int(chunk)}"
        after: tuple | None = None
        while True:
            with self.guard("listing keys"), self.connection.cursor() as cursor:
                if after is None:
                    if not self._exists(cursor, table.wl_name):
                        return
                    cursor.execute(select + order)
                else:
                    # (a, b) > (x, y) spelled out, which the range optimizer turns into an index range.
                    values = [self.connection.escape(v) for v in after]
                    cursor.execute(select + " WHERE " + " OR ".join(
                        "(" + " AND ".join([f"{c} = {v}" for c, v in zip(columns[:i], values[:i], strict=True)]
                                           + [f"{columns[i]} > {values[i]}"]) + ")"
                        for i in range(len(columns))) + order)
                page = cursor.fetchall()
            if not page:
                return
            yield [{column: decode(value) for (column, decode), value in zip(decoders, row, strict=True)}
                   for row in page]
            after = page[-1]


# record_out quotes a value holding any of these (wlsync_sinks.RECORD_QUOTING), as a
# PCRE class in an SQL string literal.
QUOTED_REGEXP = r"""'[\\\\"(),\\t\\n\\x0b\\f\\r ]'"""


def record_sql(columns: list[Column]) -> str:
    """SQL text of the record text (wlsync_sinks.record_text) of these columns of a
    row (alias t), rendered from what MariaDB stores as PostgreSQL prints it."""
    parts = []
    for column in columns:
        value = f"t.{quote(column.name)}"
        kind = column.base_type
        if kind == "bool":
            parts.append(f"IF({value} IS NULL, '', IF({value}, 't', 'f'))")
        elif kind in KEY_WIDTHS:
            parts.append(f"IFNULL(CAST({value} AS CHAR), '')")
        else:
            text = f"CONCAT('\\\\x', LOWER(HEX({value})))" if kind == "bytea" else value
            parts.append(f"IF({value} IS NULL, '', IF(CHAR_LENGTH({text}) = 0 OR {text} REGEXP {QUOTED_REGEXP}, "
                         f"""CONCAT('"', REPLACE(REPLACE({text}, '\\\\', '\\\\\\\\'), '"', '""'), '"'), {text}))""")
    return "CONCAT('(', " + ", ',', ".join(parts) + ", ')')"


def md5_sql(text: str) -> str:
    """The first 8 bytes of the text's MD5 as an unsigned BIGINT."""
    return f"CAST(CONV(LEFT(MD5({text}), 16), 16, 10) AS UNSIGNED)"


def bucket_sql(table: Table, bits: int) -> str:
    """A row's bucket at ``bits`` bits (wlsync_sinks.bucket_of): MariaDB shifts unsigned."""
    return f"({md5_sql(record_sql(table.pk))} >> {64 - bits})" if bits else "0"


def column_types(table: Table) -> dict[str, str]:
    """Each column's MariaDB type; key columns stored as text or bytes share what
    the native key columns leave of MAX_KEY_BYTES (text at 4 bytes a character)."""
    types = {c.name: NATIVE_TYPES.get(c.base_type, "LONGTEXT") for c in table.columns}
    variable = [c for c in table.pk if c.base_type not in KEY_WIDTHS]
    if variable:
        share = (MAX_KEY_BYTES - sum(KEY_WIDTHS[c.base_type] for c in table.pk if c.base_type in KEY_WIDTHS)) \
            // len(variable)
        for column in variable:
            types[column.name] = f"VARBINARY({share})" if column.base_type == "bytea" else f"VARCHAR({share // 4})"
    return types


def key_columns(table: Table) -> str:
    return "(" + ", ".join(quote(c.name) for c in table.pk) + ")"


def key_literals(table: Table, pks: list[dict]) -> list[str]:
    encoders = [(c.name, encoder(c)) for c in table.pk]
    return ["(" + ",".join([encode(pk[column]) for column, encode in encoders]) + ")" for pk in pks]


def literal(text: str) -> str:
    """A string literal. Backslash escaping is right: the session's sql_mode (set
    in _connect) never has NO_BACKSLASH_ESCAPES."""
    return "'" + escape_string(text) + "'"


def encoder(column: Column) -> Callable[[str | None], str]:
    """PostgreSQL text -> an SQL literal for the column's MariaDB type. Conversion
    errors (ValueError, KeyError) reject the row."""
    kind = column.base_type
    if kind in KEY_WIDTHS and kind != "bool":
        return lambda text: "NULL" if text is None else str(int(text))
    if kind == "bool":
        return lambda text: "NULL" if text is None else {"t": "1", "f": "0"}[text]
    if kind == "bytea":
        # bytea's hex output, checked to be hex, is MariaDB's hex literal.
        return lambda text: "NULL" if text is None else f"X'{bytes.fromhex(text[2:]).hex()}'"
    return lambda text: "NULL" if text is None else literal(text)


def decoder(column: Column) -> Callable[[object], str | None]:
    """A MariaDB value -> PostgreSQL's text, as MDB's wlsync.current_rows renders it."""
    kind = column.base_type
    if kind == "bool":
        return lambda value: None if value is None else ("t" if value else "f")
    if kind == "bytea":
        return lambda value: None if value is None else "\\x" + bytes(value).hex()
    if kind in KEY_WIDTHS:
        return lambda value: None if value is None else str(value)
    return lambda value: value


def error_code(exc: pymysql.Error) -> int | None:
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


def message(exc: BaseException) -> str:
    """PyMySQL's (code, text) as one line."""
    if isinstance(exc, pymysql.Error) and len(exc.args) == 2:
        code, text = exc.args
        text = " ".join(str(text).split()) or "connection closed"
        return f"{text} ({code})" if code else text
    return " ".join(str(exc).split()) or exc.__class__.__name__
