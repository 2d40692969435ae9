"""verify by hash buckets: MDB and every WL compute the same checksums, and verify
names exactly the keys that differ (missing, extra, different), wherever they are."""
from __future__ import annotations

import json
import math
import random
import struct

import psycopg
import pytest

import wlsync_verify
from tests.driver_helpers import run_cli, wl_table, wl_write
from wlsync_sinks import md5_hash, open_sink, pg_float_text, record_text, tables_from_rows
from wlsync_sinks.sqlite import SQLiteSink

# -- the pieces: Python spells and hashes as PostgreSQL does ------------------------------

HOSTILE_TEXTS = ["", " ", "a b", '"', "\\", "(", ")", ",", "x\ty", "x\ny", "\x0b", "\x0c", "\r", "NULL", "{}",
                 "'", 'a"b\\c', "ünï cødé", "\u00a0", "\u2003", "日本語", "😀", ";", "\x01"]


def test_record_text_spells_values_as_postgresql_row_text(mdb):
    for first in HOSTILE_TEXTS + [None]:
        for second in HOSTILE_TEXTS + [None]:
            expected = mdb.execute("SELECT ROW(%s::text, %s::text, 7)::text", [first, second]).fetchone()[0]
            assert record_text([first, second, "7"]) == expected, (first, second)


def test_md5_hash_is_mdbs_verify_hash(mdb):
    for text in HOSTILE_TEXTS:
        assert mdb.execute("SELECT wlsync.verify_hash('md5', %s)", [text]).fetchone()[0] == md5_hash(text)


def test_pg_float_text_prints_doubles_and_reals_as_postgresql_does(mdb):
    rng = random.Random(7)
    values = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(5000)]
    values += [float(rng.getrandbits(62)) for _ in range(5000)]            # integers past 2^53
    values += [i / 3 for i in range(1, 2000)] + [round(rng.random() * 1000, 2) for _ in range(2000)]
    values += [float(f"1e{e}") for e in range(-300, 300)] + [1e15, 1e14, 123456.5, 1e-5, 5e-324, -0.0]
    values = [v for v in values if not math.isnan(v)] + [math.inf, -math.inf, math.nan]
    mdb.execute("SET extra_float_digits = 3")
    for kind in ("float8", "float4"):
        wanted = values if kind == "float8" else [v for v in values if not 0 < abs(v) < 1e-37 and abs(v) < 3e38]
        printed = [text for (text,) in mdb.execute(
            f"SELECT x::{kind}::text FROM unnest(%s::float8[]) WITH ORDINALITY AS u(x, o) ORDER BY o", [wanted])]
        # The WL stores the double PostgreSQL's text reads as (SQLite), and prints it back.
        wrong = [text for text in printed if pg_float_text(float(text), kind == "float4") != text]
        assert wrong == [], f"{kind}: {len(wrong)} printed differently, e.g. {wrong[:5]}"


# -- every sink computes MDB's checksums ------------------------------------------------------

EVERY_KIND = '''CREATE TABLE "Every ""Kind""" (k1 text, k2 int, k3 timestamptz, i int8, s int2, n numeric(12,3),
    f8 float8, f4 float4, b bool, by bytea, arr text[], j jsonb, d date, t time, iv interval, u uuid, m mood,
    nul text, txt text, PRIMARY KEY (k1, k2, k3))'''


RELATION = '"Every ""Kind"""'


def synced_every_kind(mdb, mdb_dsn: str, target: str) -> None:
    mdb.execute("CREATE TYPE mood AS ENUM ('ok', 'sad')")
    mdb.execute(EVERY_KIND)
    mdb.execute("SELECT wlsync.track(%s)", [RELATION])
    rows = []
    for i, text in enumerate(HOSTILE_TEXTS + ["plain"]):
        rows.append([text, i, f"2026-03-04 05:06:{i:02d}.5+02", 9007199254740993 - i, -i, f"{i}.125",
                     [1e15, 0.1, -2.5, 3e-7, float("inf"), float("nan"), 2.0 ** 60 + 2048, i / 3][i % 8],
                     [1.5, 3.4028235e38, 1e-7, 1234567.0][i % 4], i % 2 == 0, bytes([i, 0, 255, 92, 34]),
                     [text, None, "NULL", "x,y"], f'{{"k": {i}, "t": "{i} \\" ("}}', "2026-02-28", "23:59:59.5",
                     f"{i} days 02:00:00", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "sad", None, text])
    rows.append(["all nulls", 99, "2026-01-01 00:00:00+00"] + [None] * 16)
    with mdb.cursor() as cursor:
        cursor.executemany('INSERT INTO "Every ""Kind""" VALUES (' + ", ".join(["%s"] * 19) + ")", rows)
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0


def test_every_sink_computes_mdbs_checksums_and_listings(mdb, mdb_dsn, target):
    synced_every_kind(mdb, mdb_dsn, target)
    table = tables_from_rows(mdb.execute("SELECT * FROM wlsync.tracked_columns()").fetchall())[
        ("public", 'Every "Kind"')]
    sink = open_sink(target)
    try:
        for scheme in sink.checksum_schemes:
            assert sink.verify_hash(scheme, wlsync_verify.PROBE) == mdb.execute(
                "SELECT wlsync.verify_hash(%s, %s)", [scheme, wlsync_verify.PROBE]).fetchone()[0]
            for bits, parent_bits, parents in [(0, 0, None), (3, 0, None), (5, 3, [1, 6]), (40, 5, [0, 7, 30])]:
                mdb_sums = {b: (n, int(s)) for b, n, s in mdb.execute(
                    "SELECT * FROM wlsync.range_checksums(%s, %s, %s, %s, %s)",
                    [RELATION, scheme, bits, parent_bits, parents])}
                assert sink.range_checksums(table, scheme, bits, parent_bits, parents) == mdb_sums, (scheme, bits)
            assert sum(n for n, _ in mdb_sums.values()) > 0  # the last, filtered query counted rows
            buckets = [0, 2, 3, 5]
            mdb_rows = mdb.execute("SELECT bucket, pk, row_hash FROM wlsync.range_rows(%s, %s, 3, %s)",
                                   [RELATION, scheme, buckets]).fetchall()
            wl_rows = list(sink.range_rows(table, scheme, 3, buckets))
            assert [r[0] for r in wl_rows] == sorted(r[0] for r in wl_rows)  # in bucket order
            assert sorted(wl_rows, key=str) == sorted(mdb_rows, key=str) and mdb_rows
    finally:
        sink.close()


# -- verify names exactly the differences made ------------------------------------------------

KEYS = wl_table("keyed", [("id", "integer"), ("title", "text"), ("year", "integer")], pk=["id"])


def spoiled_wl(mdb, mdb_dsn: str, target: str, rows: int) -> set[str]:
    """Even ids 2 .. 2*rows synced to WL, then, at the start, the middle and the end of
    the key range: a row deleted, a row changed and an odd key added in WL. Returns
    the lines verify must print."""
    mdb.execute("CREATE TABLE keyed (id int PRIMARY KEY, title text, year int)")
    mdb.execute("SELECT wlsync.track('keyed')")
    mdb.execute("INSERT INTO keyed SELECT 2 * g, 't' || g, 2000 FROM generate_series(1, %s) g", [rows])
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    top = 2 * rows
    missing, changed, extra = [2, top // 2, top], [4, top // 2 + 2, top - 2], [1, top // 2 + 1, top + 1]
    wl_write(target, KEYS, upserts=[{"id": str(i), "title": f"t{i // 2}", "year": "1999"} for i in changed]
             + [{"id": str(i), "title": "ghost", "year": "1"} for i in extra],
             deletes=[{"id": str(i)} for i in missing])
    return ({f'public.keyed {{"id": "{i}"}}: missing in WL' for i in missing}
            | {f'public.keyed {{"id": "{i}"}}: different (columns: year)' for i in changed}
            | {f'public.keyed {{"id": "{i}"}}: extra in WL' for i in extra})


def verify_lines(mdb_dsn: str, target: str, capsys, repair: bool = False, sink=None) -> tuple[int, list[str]]:
    sink = sink or open_sink(target)
    try:
        code = wlsync_verify.verify(mdb_dsn, sink, repair)
    finally:
        sink.close()
    return code, capsys.readouterr().out.splitlines()


def test_verify_names_exactly_what_differs_at_the_start_middle_and_end_of_a_key_range(mdb, mdb_dsn, target, capsys):
    expected = spoiled_wl(mdb, mdb_dsn, target, 3000)
    code, lines = verify_lines(mdb_dsn, target, capsys)
    assert code == 1
    assert set(lines[:-1]) == expected and len(lines) == len(expected) + 1
    assert lines[-1] == "verify: 9 difference(s)"


def test_verify_of_equal_tables_reports_progress_to_the_total(mdb, mdb_dsn, target, capsys):
    mdb.execute("CREATE TABLE keyed (id int PRIMARY KEY, title text, year int)")
    mdb.execute("SELECT wlsync.track('keyed')")
    mdb.execute("INSERT INTO keyed SELECT g, 't' || g, 2000 FROM generate_series(1, 500) g")
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    seen = []
    sink = open_sink(target)
    try:
        assert wlsync_verify.verify(mdb_dsn, sink, progress=lambda *args: seen.append(args)) == 0
    finally:
        sink.close()
    assert capsys.readouterr().out.splitlines() == ["verify: WL == MDB"]
    assert seen[-1] == ("public.keyed", 500, 500)


def test_verify_splits_buckets_level_after_level_until_the_keys_stand_alone(mdb, mdb_dsn, target, capsys,
                                                                            monkeypatch, request):
    """With buckets of a few rows, verify splits (and chunks) level after level; the
    SQL sinks only (the Python ones read WL once per query)."""
    if request.node.callspec.params["target"] not in ("sqlite", "postgresql", "mysql"):
        pytest.skip("one read of WL per split query: the SQL sinks only")
    monkeypatch.setattr(wlsync_verify, "LEAF_ROWS", 4)
    monkeypatch.setattr(wlsync_verify, "BUCKET_ROWS", 2)
    monkeypatch.setattr(wlsync_verify, "MAX_BUCKETS", 64)
    monkeypatch.setattr(wlsync_verify, "LIST_ROWS", 4)
    expected = spoiled_wl(mdb, mdb_dsn, target, 2000)
    progress = []
    sink = open_sink(target)
    try:
        assert wlsync_verify.verify(mdb_dsn, sink, progress=lambda *args: progress.append(args)) == 1
    finally:
        sink.close()
    lines = capsys.readouterr().out.splitlines()
    assert set(lines[:-1]) == expected and lines[-1] == "verify: 9 difference(s)"
    assert progress[-1] == ("public.keyed", 2000, 2000)
    assert all(a[1] <= b[1] for a, b in zip(progress, progress[1:], strict=False))


def test_verify_of_a_wl_far_behind_lists_its_many_differing_buckets_whole(mdb, mdb_dsn, target, capsys,
                                                                            monkeypatch, request):
    """Dense differences: buckets too many to split in one query are listed, not split."""
    if request.node.callspec.params["target"] not in ("sqlite", "postgresql", "mysql"):
        pytest.skip("the SQL sinks stand for all: the listing is the same code")
    monkeypatch.setattr(wlsync_verify, "LEAF_ROWS", 4)
    monkeypatch.setattr(wlsync_verify, "MAX_BUCKETS", 64)
    mdb.execute("CREATE TABLE keyed (id int PRIMARY KEY, title text, year int)")
    mdb.execute("SELECT wlsync.track('keyed')")
    mdb.execute("INSERT INTO keyed SELECT g, 't' || g, 2000 FROM generate_series(1, 2500) g")
    wl_write(target, KEYS, upserts=[{"id": str(i), "title": f"t{i}", "year": "2000"} for i in (7, 8, 3000)])
    code, lines = verify_lines(mdb_dsn, target, capsys)
    assert code == 1 and lines[-1] == "verify: 2499 difference(s)"
    assert sorted(lines[:-1]) == sorted([f'public.keyed {{"id": "{i}"}}: missing in WL' for i in range(1, 2501)
                                         if i not in (7, 8)] + ['public.keyed {"id": "3000"}: extra in WL'])


COMPOSITE = wl_table("placed", [("region", "text"), ("code", "integer"), ("name", "text")], pk=["region", "code"])


def test_verify_with_composite_text_keys_names_the_differences_and_repair_fixes_them(mdb, mdb_dsn, target, capsys):
    mdb.execute("CREATE TABLE placed (region text, code int, name text, PRIMARY KEY (region, code))")
    mdb.execute("SELECT wlsync.track('placed')")
    # Keys whose order differs between collations and stores: case, accents, spaces, digits as text.
    regions = ["a", "A", "a ", "ä", "b", "B", "10", "9", "日本", '"q"', "x,y", "", "Z", "z"]
    mdb.execute("INSERT INTO placed SELECT r, c, r || c FROM unnest(%s::text[]) AS r, generate_series(1, 150) AS c",
                [regions])
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    wl_write(target, COMPOSITE,
             upserts=[{"region": "a", "code": "1", "name": "changed"}, {"region": "A ", "code": "1", "name": "x"},
                      {"region": "ä", "code": "151", "name": "x"}],
             deletes=[{"region": "a ", "code": "150"}, {"region": "", "code": "75"}, {"region": "z", "code": "1"}])
    code, lines = verify_lines(mdb_dsn, target, capsys, repair=True)
    assert code == 1
    assert set(lines[:-2]) == {
        placed("a", 1, "different (columns: name)"), placed("A ", 1, "extra in WL"), placed("ä", 151, "extra in WL"),
        placed("a ", 150, "missing in WL"), placed("", 75, "missing in WL"), placed("z", 1, "missing in WL")}
    assert lines[-2:] == ["verify: 6 difference(s)", "verify: 6 key(s) re-enqueued; the next drain rewrites them in WL"]
    assert run_cli("run", "--once", "--source", mdb_dsn, "--target", target).returncode == 0
    assert verify_lines(mdb_dsn, target, capsys) == (0, ["verify: WL == MDB"])


def placed(region: str, code: int, kind: str) -> str:
    """verify's line for a key of placed (JSON as json.dumps spells it: non-ASCII escaped)."""
    return f"public.placed {json.dumps({'code': str(code), 'region': region}, sort_keys=True)}: {kind}"


class DisagreeingSQLiteSink(SQLiteSink):
    """A WL whose hashes are not MDB's (as a database in another encoding would give)."""

    def verify_hash(self, scheme, text):
        return 0


def test_verify_compares_every_key_when_wl_hashes_differently(mdb, mdb_dsn, tmp_path, capsys):
    target = f"sqlite:///{tmp_path}/wl.db"
    expected = spoiled_wl(mdb, mdb_dsn, target, 300)
    code, lines = verify_lines(mdb_dsn, target, capsys, sink=DisagreeingSQLiteSink(target))
    assert code == 1 and set(lines[:-1]) == expected and lines[-1] == "verify: 9 difference(s)"


def test_mdb_refuses_an_unknown_scheme_and_bits_out_of_range(mdb):
    mdb.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    mdb.execute("SELECT wlsync.track('keyed')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown verify hash scheme 'sha1'"):
        mdb.execute("SELECT * FROM wlsync.range_checksums('keyed', 'sha1', 0)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_bits <= 48"):
        mdb.execute("SELECT * FROM wlsync.range_checksums('keyed', 'md5', 49)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="between 1 and 48"):
        mdb.execute("SELECT * FROM wlsync.range_rows('keyed', 'md5', 0, '{0}')")
