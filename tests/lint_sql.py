"""make lint: plpgsql_check over every PL/pgSQL function in schema wlsync.

Builds a scratch database with the real migrations and tracks tables of several
column types and key shapes, so that the generated capture triggers and readers
exist too; checks every function (a trigger function against each table it fires
on) with all of plpgsql_check's warnings on. Fails on any error and on any
warning not silenced in SILENCED, where each silence says why.

    python -m tests.lint_sql [--server postgresql://postgres@127.0.0.1:5432/postgres]
"""
from __future__ import annotations

import argparse
import os
import sys

import psycopg

import wlsync_migrate

SCRATCH = os.environ.get("WLSYNC_TEST_DB", "wlsync_test") + "_lint"

TABLES = """
CREATE TABLE public."Lint ""Odd"" Table" (id int, "Key 2" text, payload jsonb, amount numeric, tags text[],
                                          at timestamptz, data bytea, PRIMARY KEY (id, "Key 2"));
CREATE TABLE public.plain (id bigint PRIMARY KEY, title text);
CREATE TABLE public.parted (id int, day date, note text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE public.parted_2026 PARTITION OF public.parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT wlsync.track('public."Lint ""Odd"" Table"'), wlsync.track('public.plain'), wlsync.track('public.parted');
"""

# Every finding of every PL/pgSQL function of schema wlsync; a trigger function once
# per table it fires on, others once with no relation.
CHECK = """
SELECT p.oid::regprocedure::text, r.relid::regclass::text, c.level, c.lineno, c.message, c.detail
FROM pg_proc AS p
JOIN pg_language AS l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
CROSS JOIN LATERAL unnest(coalesce(
    (SELECT array_agg(DISTINCT t.tgrelid) FROM pg_trigger AS t WHERE t.tgfoid = p.oid), '{0}')) AS r(relid)
LEFT JOIN LATERAL plpgsql_check_function_tb(p.oid, r.relid, fatal_errors => false, all_warnings => true) AS c ON true
WHERE p.pronamespace = 'wlsync'::regnamespace
ORDER BY 1, 2, c.lineno
"""

DYNAMIC_OUT = ("RETURN QUERY EXECUTE fills the OUT columns, which plpgsql_check cannot see into "
               "(\"cannot to determine result of dynamic SQL\").")
SANITIZED = ("the %s parts of the EXECUTEd query are built by wlsync's own builders (_text_object_sql, "
             "_key_json_sql, _key_values_sql, _current_queue) and by format('t.%I') over catalog names, "
             "which plpgsql_check cannot follow through string_agg and function results.")

# (function, message) -> why this warning is accepted. An entry that no longer
# matches any finding fails the lint too, so that it gets removed.
SILENCED = {
    ("wlsync.current_rows(regclass,jsonb[])", 'OUT variable "pk" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.current_rows(regclass,jsonb[])", 'OUT variable "requested_pk" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.current_rows(regclass,jsonb[])", 'OUT variable "row_data" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.read_rows(regclass,jsonb,integer)", 'OUT variable "pk" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.read_rows(regclass,jsonb,integer)", 'OUT variable "row_data" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.read_rows(regclass,jsonb,integer)", "text type variable is not sanitized"): SANITIZED,
    ("wlsync.backfill(regclass,bigint,text)", "text type variable is not sanitized"): SANITIZED,
    ("wlsync._rebuild_ring_views()", "text type variable is not sanitized"): SANITIZED,
    # Deletes through EXECUTE, which plpgsql_check cannot see.
    ("wlsync._discard_table_events(integer)", "routine is marked as VOLATILE, should be STABLE"):
        "it DELETEs through EXECUTE (format with %I)",
    # verify's checksums and listings (RETURN QUERY EXECUTE of wlsync's own builders).
    ("wlsync.range_checksums(regclass,text,integer,integer,bigint[])", 'OUT variable "bucket" is maybe unmodified'):
        DYNAMIC_OUT,
    ("wlsync.range_checksums(regclass,text,integer,integer,bigint[])",
     'OUT variable "row_count" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.range_checksums(regclass,text,integer,integer,bigint[])",
     'OUT variable "checksum" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.range_checksums(regclass,text,integer,integer,bigint[])", "text type variable is not sanitized"):
        SANITIZED,
    ("wlsync.range_rows(regclass,text,integer,bigint[])", 'OUT variable "bucket" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.range_rows(regclass,text,integer,bigint[])", 'OUT variable "pk" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.range_rows(regclass,text,integer,bigint[])", 'OUT variable "row_hash" is maybe unmodified'): DYNAMIC_OUT,
    ("wlsync.range_rows(regclass,text,integer,bigint[])", "text type variable is not sanitized"): SANITIZED,
    ("wlsync.verify_hash(text,text)", "text type variable is not sanitized"): SANITIZED,
}


def check(dsn: str) -> tuple[list[str], int, int]:
    """(unaccepted findings as lines, functions checked, findings silenced) in the database ``dsn``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(CHECK).fetchall()
    functions = {row[0] for row in rows}
    problems, used, silenced = [], set(), 0
    for function, relation, level, lineno, message, detail in rows:
        if level is None:
            continue
        if level != "error" and (function, message) in SILENCED:
            used.add((function, message))
            silenced += 1
            continue
        where = function + (f" on {relation}" if relation != "-" else "") + (f", line {lineno}" if lineno else "")
        problems.append(f"{where}: {level}: {message}" + (f" ({detail})" if detail else ""))
    problems += [f"{function}: silenced warning no longer found, remove it from SILENCED: {message}"
                 for function, message in SILENCED.keys() - used]
    return problems, len(functions), silenced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a database of the server to make the scratch database %(default)s on")
    server = parser.parse_args(argv).server
    scratch = psycopg.conninfo.make_conninfo(server, dbname=SCRATCH)
    try:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{SCRATCH}"')
        try:
            with psycopg.connect(scratch, autocommit=True) as conn:
                if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check'").fetchone():
                    print("lint_sql: error: the server has no plpgsql_check extension: install it "
                          "(apt-get install postgresql-15-plpgsql-check)", file=sys.stderr)
                    return 2
                conn.execute("CREATE EXTENSION plpgsql_check")
            wlsync_migrate.migrate(scratch)
            with psycopg.connect(scratch, autocommit=True) as conn:
                conn.execute(TABLES)
            problems, functions, silenced = check(scratch)
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
    except psycopg.Error as exc:
        print(f"lint_sql: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    print(f"plpgsql_check: {functions} functions of schema wlsync checked, {len(problems)} problem(s), "
          f"{silenced} warning(s) silenced (tests/lint_sql.py SILENCED)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
