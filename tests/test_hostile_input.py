"""Hostile names and values round-trip to every sink; nothing reaches SQL unquoted."""
from tests.driver_helpers import run_cli, wl_rows, wl_table

SCHEMA = 'we"ird schéma'
TABLE = "Robert'); DROP TABLE students;--"
COLUMNS = ['select', 'Col "Quoted"', 'ünïcødé', 'with space', '$body$', "x'); DELETE FROM movies; --"]


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def test_injection_shaped_names_and_hostile_values_round_trip(mdb, mdb_dsn, target):
    relation = f"{ident(SCHEMA)}.{ident(TABLE)}"
    mdb.execute("CREATE TABLE students (id int PRIMARY KEY)")
    mdb.execute(f"CREATE SCHEMA {ident(SCHEMA)}")
    mdb.execute(f"""CREATE TABLE {relation} ({ident("Key's")} text, {ident('select')} int,
        {ident('Col "Quoted"')} text, {ident('ünïcødé')} numeric, {ident('with space')} float8,
        {ident('$body$')} bytea, {ident(COLUMNS[5])} jsonb, arr text[], ts timestamptz, long text,
        PRIMARY KEY ({ident("Key's")}, {ident('select')}))""")
    mdb.execute("SELECT wlsync.track(%s)", [relation])
    hostile_text = "it's \"quoted\" \\ back\\slash\nnew line; DROP TABLE students; -- ☃"
    mdb.execute(f"INSERT INTO {relation} VALUES (%s, 1, %s, 'NaN', 'Infinity', %s, %s, %s, 'infinity', %s)",
                [hostile_text, "'); DROP TABLE students; --", bytes(range(1, 256)),
                '{"a": "x\\"y", "nested": {"q": "\'"}}', ['a"b', "c,d", "{e}", None, "NULL"], "€" * 300000])
    key_column = ident("Key's")
    mdb.execute(f"INSERT INTO {relation} ({key_column}, {ident('select')}) "
                "VALUES ('all nulls', 2)")
    run = run_cli("run", "--once", "--source", mdb_dsn, "--target", target)
    assert run.returncode == 0, run.stderr
    check = run_cli("verify", "--source", mdb_dsn, "--target", target)
    assert check.returncode == 0, check.stdout + check.stderr
    assert mdb.execute("SELECT to_regclass('students') IS NOT NULL").fetchone()[0]
    table = wl_table(TABLE, [("Key's", "text"), ("select", "integer"), (COLUMNS[1], "text"), ("long", "text"),
                             ("arr", "text[]")], pk=["Key's", "select"], schema=SCHEMA)
    rows = wl_rows(target, table)
    assert rows[(hostile_text, "1")][COLUMNS[1]] == "'); DROP TABLE students; --"
    assert rows[(hostile_text, "1")]["long"] == "€" * 300000
    assert [rows[("all nulls", "2")][c] for c in (COLUMNS[1], "long", "arr")] == [None, None, None]
    # A change and a delete flow through the same names.
    mdb.execute(f"UPDATE {relation} SET long = 'short' WHERE {ident('select')} = 1")
    mdb.execute(f"DELETE FROM {relation} WHERE {ident('select')} = 2")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    assert [row["long"] for row in wl_rows(target, table).values()] == ["short"]
    assert run_cli("verify", "--source", mdb_dsn, "--target", target).returncode == 0
