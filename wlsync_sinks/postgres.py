"""A separate PostgreSQL database as WL. Target: a libpq URL, postgresql://user@host:port/dbname."""
from __future__ import annotations

import json

import orjson
import psycopg
from psycopg import sql

from wlsync_db import describe, one_line
from wlsync_sinks import (PRUNE_EVERY, REJECTING_SQLSTATE_CLASSES, VERSION_RETENTION, VERSIONS, Column, Sink,
                          SinkError, Table, TargetError, check_deadline, newest_per_key, redact, seconds_left)


def dumps(value) -> str:
    """JSON text of a batch for a jsonb parameter (orjson: several times faster than json.dumps)."""
    return orjson.dumps(value).decode()


class PostgresSink(Sink):
    """A separate PostgreSQL database as WL: same column names and types.

    Types WL cannot know (enums, composites and other user-defined types) are
    stored as text. A batch is two statements per table (the fence, then the writes):
    rows travel as one jsonb array of PostgreSQL text values, cast back in SQL.
    """

    def __init__(self, url: str):
        super().__init__(url)
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise TargetError(f"invalid PostgreSQL target {redact(url)!r}: {one_line(exc)}") from None
        self.tables: dict[tuple[str, str], Table] = {}
        self.batches = 0

    @property
    def name(self) -> str:
        return f"PostgreSQL {describe(self.url)}"

    def open(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, connect_timeout=10)
        conn.execute("SET TimeZone = 'UTC'")
        conn.commit()
        return conn

    def is_rejection(self, exc):
        return isinstance(exc, psycopg.Error) and (exc.sqlstate or "")[:2] in REJECTING_SQLSTATE_CLASSES

    @staticmethod
    def _type(column: Column) -> sql.Composable:
        return sql.SQL(column.data_type if column.builtin else "text")

    def ensure_tables(self, tables):
        # Fails e.g. when another driver creates the same table at the same time.
        with self.guard("preparing tables"), self.connection.transaction():
            conn = self.connection
            # Keys as their canonical text (wlsync_sinks.key_text, as the other SQL
            # sinks keep them), compared bytewise: a jsonb key's comparisons made
            # the fence cost twice as much.
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (table_name text COLLATE \"C\" NOT NULL, "
                                 "pk text COLLATE \"C\" NOT NULL, version bigint NOT NULL, deleted_at timestamptz, "
                                 "PRIMARY KEY (table_name, pk))").format(sql.Identifier(VERSIONS)))
            self._upgrade_registry()
            for key, table in tables.items():
                name = sql.Identifier(table.wl_name)
                conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
                    name,
                    sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c.name), self._type(c))
                                       for c in table.columns),
                    sql.SQL(", ").join(sql.Identifier(c.name) for c in table.pk)))
                for column in table.columns:
                    conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        name, sql.Identifier(column.name), self._type(column)))
                self.tables[key] = table

    def _upgrade_registry(self) -> None:
        """A registry made by an earlier release keeps keys as jsonb: rewrite it
        once, each key as its canonical text, in the transaction of ensure_tables.
        Its drivers must stop first: they would write jsonb keys into it."""
        conn = self.connection
        pk_type = ("SELECT format_type(a.atttypid, NULL) FROM pg_attribute AS a "
                   "WHERE a.attrelid = %s::regclass AND a.attname = 'pk'")
        registry = sql.Identifier(VERSIONS).as_string(conn)
        if conn.execute(pk_type, [registry]).fetchone()[0] != "jsonb":
            return
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(VERSIONS)))
        if conn.execute(pk_type, [registry]).fetchone()[0] != "jsonb":
            return  # another driver rewrote it while we waited
        # key_text in SQL: names sorted bytewise (code point order), values as
        # JSON, no spaces; to_json escapes as Python's json does (\uXXXX in
        # lower case for other control characters).
        conn.execute("""
            CREATE FUNCTION pg_temp.wlsync_key_text(p_pk jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
                SELECT '{' || string_agg(to_json(e.key)::text || ':' || e.value::text, ',' ORDER BY e.key COLLATE "C")
                       || '}'
                FROM jsonb_each(p_pk) AS e
            $$""")
        conn.execute(sql.SQL('ALTER TABLE {} ALTER COLUMN table_name TYPE text COLLATE "C", '
                             'ALTER COLUMN pk TYPE text COLLATE "C" USING pg_temp.wlsync_key_text(pk)')
                     .format(sql.Identifier(VERSIONS)))
        conn.execute("DROP FUNCTION pg_temp.wlsync_key_text(jsonb)")

    def _casts(self, columns: list[Column], source: str) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("({}->>{})::{}").format(sql.SQL(source), sql.Literal(c.name), self._type(c)) for c in columns)

    def apply(self, rows, deadline):
        with self.guard("writing a batch"):
            check_deadline(deadline)
            with self.connection.transaction():
                self._statement_timeout(deadline)
                self._write(rows)
                self._commit_prepare(deadline)

    def begin(self, deadline):
        with self.guard("starting a transaction"):
            check_deadline(deadline)
            # The first statement opens the transaction (the connection is not
            # in autocommit). Consistent mode: WL's DEFERRABLE foreign keys are checked at the
            # commit, which is a state MDB had (a NOT DEFERRABLE one is checked
            # at each statement, where a child may come before its parent).
            self.connection.execute("SET CONSTRAINTS ALL DEFERRED")

    def write(self, rows, deadline):
        with self.guard("writing a batch"):
            check_deadline(deadline)
            self._statement_timeout(deadline)
            with self.connection.transaction():  # inside begin's transaction: a savepoint
                self._write(rows)

    def commit(self, deadline):
        with self.guard("committing"):
            self._commit_prepare(deadline)
            self.connection.commit()

    def rollback(self):
        if self._connection is not None:
            try:
                self._connection.rollback()
            except psycopg.Error:
                self.reset()  # closing it rolls back

    def _statement_timeout(self, deadline: float) -> None:
        """Wait for WL's locks and statements no longer than the batch may live."""
        self.connection.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(
            sql.Literal(max(1, int(seconds_left(deadline) * 1000)))))

    def _write(self, rows: list[dict]) -> None:
        conn = self.connection
        for (schema, name), keyed in newest_per_key(rows).items():
            table = self.tables[(schema, name)]
            # Two statements: the fence, then the writes of the keys it let
            # through. Each key's registry row stays locked until commit, so
            # another batch of the key has committed before the fence went
            # on, or waits until this one commits; the writes' statement
            # starts after the fence and sees that batch's row. (In one
            # statement, a DELETE would share the fence's snapshot and miss a
            # row committed while the fence waited: the row would stay.)
            # (The fence locks the registry rows in key order: its ORDER BY.)
            fence = [{"k": key, "v": r["version"], "d": r["row_data"] is None} for key, r in keyed.items()]
            fresh = [{"pk": keyed[key]["pk"], "row": keyed[key]["row_data"]}
                     for (key,) in conn.execute(self._fence_sql(), [table.wl_name, dumps(fence)]).fetchall()]
            if fresh:
                conn.execute(self._write_sql(table), [dumps(fresh)])

    def _commit_prepare(self, deadline: float) -> None:
        """What comes right before a commit: the occasional pruning of deleted
        keys' versions, and the last check of the deadline."""
        self.batches += 1
        if self.batches % PRUNE_EVERY == 1:
            self.connection.execute(sql.SQL("DELETE FROM {} WHERE deleted_at < now() - %s * interval '1 second'")
                                    .format(sql.Identifier(VERSIONS)), [VERSION_RETENTION])
        check_deadline(deadline)

    def max_version(self):
        with self.guard("reading the highest version"), self.connection.transaction():
            if not self._exists(VERSIONS):
                return 0
            return self.connection.execute(sql.SQL("SELECT coalesce(max(version), 0) FROM {}")
                                           .format(sql.Identifier(VERSIONS))).fetchone()[0]

    def _exists(self, name: str) -> bool:
        return self.connection.execute("SELECT to_regclass(%s) IS NOT NULL",
                                       [sql.Identifier(name).as_string(self.connection)]).fetchone()[0]

    @staticmethod
    def _fence_sql() -> sql.Composable:
        """Advance the keys' versions where the batch's is newer (locking each key's
        registry row, in key order); returns the keys it advanced."""
        return sql.SQL("""
            INSERT INTO {versions} AS v (table_name, pk, version, deleted_at)
            SELECT %s, b.k, b.v, CASE WHEN b.d THEN now() END
            FROM jsonb_to_recordset(%s::jsonb) AS b(k text, v bigint, d boolean) ORDER BY b.k COLLATE "C"
            ON CONFLICT (table_name, pk) DO UPDATE
            SET version = EXCLUDED.version, deleted_at = EXCLUDED.deleted_at
            WHERE v.version < EXCLUDED.version
            RETURNING v.pk""").format(versions=sql.Identifier(VERSIONS))

    def _write_sql(self, table: Table) -> sql.Composable:
        """Upsert or delete the batch's rows (the fence let all of them through)."""
        return sql.SQL("""
            WITH batch AS MATERIALIZED (SELECT e FROM jsonb_array_elements(%s::jsonb) AS e),
            upserted AS (
                {upsert}
            ), deleted AS (
                {delete}
            )
            SELECT (SELECT count(*) FROM upserted), (SELECT count(*) FROM deleted)""").format(
            upsert=self._upsert_sql(table), delete=self._delete_sql(table))

    def _upsert_sql(self, table: Table) -> sql.Composable:
        non_pk = [c for c in table.columns if not c.pk_position]
        update = (sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in non_pk))
            if non_pk else sql.SQL("DO NOTHING"))
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM batch AS b "
                       "WHERE jsonb_typeof(b.e->'row') = 'object' ON CONFLICT ({}) {} RETURNING 1").format(
            sql.Identifier(table.wl_name),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns),
            self._casts(list(table.columns), "b.e->'row'"),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in table.pk),
            update)

    def _delete_sql(self, table: Table) -> sql.Composable:
        return sql.SQL("DELETE FROM {} AS t USING batch AS b "
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
        with self.guard("reading rows"), self.connection.transaction():
            if not self._exists(table.wl_name):
                return [None] * len(pks)
            self.connection.execute(RENDER_SETTINGS)
            return [row[0] for row in self.connection.execute(query, [json.dumps(pks)])]

    # -- verify: the same SQL as MDB's wlsync.range_checksums and range_rows, over WL

    checksum_schemes = ("hashtextextended", "md5")

    def verify_hash(self, scheme, text):
        with self.guard("hashing"), self.connection.transaction():
            return self.connection.execute(sql.SQL("SELECT {}").format(hash_sql(scheme, sql.Literal(text)))
                                           ).fetchone()[0]

    def range_checksums(self, table, scheme, bits, parent_bits=0, parents=None):
        query = sql.SQL("SELECT {}, count(*), sum({}) FROM {} AS t WHERE %(parents)s::int8[] IS NULL "
                        "OR {} = ANY(%(parents)s) GROUP BY 1").format(
            bucket_sql(table, scheme, bits), hash_sql(scheme, row_text(list(table.columns))),
            sql.Identifier(table.wl_name), bucket_sql(table, scheme, parent_bits))
        with self.guard("computing checksums"), self.connection.transaction():
            if not self._exists(table.wl_name):
                return {}
            self.connection.execute(RENDER_SETTINGS)
            return {bucket: (count, int(total)) for bucket, count, total in
                    self.connection.execute(query, {"parents": parents})}

    def range_rows(self, table, scheme, bits, buckets):
        names = [c.name for c in table.pk]
        query = sql.SQL("SELECT {0}, {1}, {2} FROM {3} AS t WHERE {0} = ANY(%s) ORDER BY 1").format(
            bucket_sql(table, scheme, bits), hash_sql(scheme, row_text(list(table.columns))),
            sql.SQL(", ").join(output_text(sql.SQL("t.{}").format(sql.Identifier(n))) for n in names),
            sql.Identifier(table.wl_name))
        with self.guard("listing rows by bucket"), self.connection.transaction():
            if not self._exists(table.wl_name):
                return
            self.connection.execute(RENDER_SETTINGS)
            with self.connection.cursor(name="wlsync_verify_rows") as cursor:
                cursor.execute(query, [list(buckets)])
                while batch := cursor.fetchmany(1000):
                    for bucket, hashed, *values in batch:
                        yield bucket, dict(zip(names, values, strict=True)), hashed

    def keys(self, table, chunk):
        names = [c.name for c in table.pk]
        with self.guard("listing keys"), self.connection.transaction():
            if not self._exists(table.wl_name):
                return
            self.connection.execute(RENDER_SETTINGS)
            with self.connection.cursor(name="wlsync_verify_keys") as cursor:
                cursor.execute(sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(output_text(sql.Identifier(n)) for n in names),
                    sql.Identifier(table.wl_name)))
                while batch := cursor.fetchmany(chunk):
                    yield [dict(zip(names, row, strict=True)) for row in batch]


def hash_sql(scheme: str, text: sql.Composable) -> sql.Composable:
    """The 64-bit hash of a text in a verify scheme, as MDB's wlsync._verify_hash_sql."""
    if scheme == "md5":
        return sql.SQL("('x' || left(md5({}), 16))::bit(64)::int8").format(text)
    if scheme == "hashtextextended":
        return sql.SQL("hashtextextended({}, 0)").format(text)
    raise SinkError(f"unknown verify hash scheme {scheme!r}")


def row_text(columns: list[Column]) -> sql.Composable:
    """ROW(t.c1, t.c2, ...)::text: the record text of these columns (wlsync_sinks.record_text)."""
    return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c.name))
                                                            for c in columns))


def bucket_sql(table: Table, scheme: str, bits: int) -> sql.Composable:
    """A row's bucket at ``bits`` bits, as MDB's wlsync._verify_bucket_sql."""
    if bits == 0:
        return sql.SQL("0::int8")
    return sql.SQL("(({} >> {}) & {}::int8)").format(hash_sql(scheme, row_text(table.pk)), sql.Literal(64 - bits),
                                                   sql.Literal((1 << bits) - 1))


def output_text(value: sql.Composable) -> sql.Composable:
    """A value as its type's output text, NULL kept: as MDB's wlsync._text_object_sql."""
    return sql.SQL("CASE WHEN {0} IS NULL THEN NULL ELSE concat({0}) END").format(value)


# The same output settings as MDB's wlsync.current_rows, for the verify reads.
RENDER_SETTINGS = ("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
                   "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3; "
                   "SET LOCAL bytea_output = 'hex'")


