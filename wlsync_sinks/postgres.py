"""A separate PostgreSQL database as WL."""
from __future__ import annotations

import json
import time

import psycopg
from psycopg import sql

from wlsync_db import describe, one_line
from wlsync_sinks import (PRUNE_EVERY, REJECTING_SQLSTATE_CLASSES, VERSION_RETENTION, VERSIONS, Column, Sink,
                          SinkError, Table, TargetError, group_by_table)

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


