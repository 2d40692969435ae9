"""Connections and error messages shared by the driver, the sinks and the migrations."""
from __future__ import annotations

import os

import psycopg
from psycopg.rows import tuple_row


class UserError(Exception):
    """A mistake the user can fix; printed as one line, no traceback."""


def source_dsn(cli_value: str | None = None) -> str:
    """MDB's libpq DSN: the option, else WLSYNC_SOURCE, else '' (libpq's PG* variables)."""
    return cli_value or os.environ.get("WLSYNC_SOURCE", "")


def describe(dsn: str) -> str:
    """The DSN for messages, without its password."""
    if not dsn:
        return "the database named by the PG* environment variables"
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the given DSN"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info) or "the default database"


def connect(dsn: str, **kwargs) -> psycopg.Connection:
    """psycopg.connect, with connection failures turned into a one-line UserError."""
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kwargs)
    except psycopg.ProgrammingError as exc:  # malformed conninfo
        raise UserError(f"invalid source DSN {dsn!r}: {one_line(exc)}; "
                        "give a libpq URL such as postgresql://user@host:5432/dbname") from None
    except psycopg.OperationalError as exc:
        raise UserError(f"cannot connect to MDB {describe(dsn)}: {one_line(exc)}") from None


def check_schema(conn: psycopg.Connection, dsn: str) -> None:
    """A one-line UserError when MDB has no wlsync schema (not migrated)."""
    cursor = conn.cursor(row_factory=tuple_row)
    if not cursor.execute("SELECT to_regnamespace('wlsync') IS NOT NULL").fetchone()[0]:
        raise UserError(f"{describe(dsn)} has no wlsync schema: run `make migrate` "
                        "(or python wlsync_driver.py migrate --source URL) and wlsync.track() its tables")


def one_line(exc: BaseException) -> str:
    """A database error's message on one line (libpq spreads some over several)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines) or exc.__class__.__name__
