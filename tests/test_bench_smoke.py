"""The benchmark still runs: a tiny slice of every bench/bench.py section (< 30 s).

`make bench` itself is too long for the suite; this runs `bench/bench.py --mode smoke`
(one case of each kind, tiny sizes; no throwaway cluster, no drivers during TPC-B) in its
own wlsync_bench_smoke* databases and checks that every section produced sane figures
and that bench/RESULTS.md was left alone.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("pgbench") is None, reason="pgbench is not installed")
@pytest.mark.xdist_group("heavy")   # never beside a soak: pgbench and drivers load both cores
def test_bench_smoke_runs_every_section_and_leaves_results_md_alone(tmp_path):
    results_md = (ROOT / "bench" / "RESULTS.md").read_bytes()
    env = {**os.environ, "BENCH_DB_PREFIX": f"wlsync_bench_smoke{os.getpid()}_"}
    env.pop("BENCH_QUICK", None)
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--mode", "smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    results = json.loads((tmp_path / "results.json").read_text())
    overhead = results["overhead"]["results"]
    assert {(r["variant"], r["tps"]["median"] > 0) for r in overhead} == {("untracked", True), ("wlsync", True),
                                                                        ("floor", True), ("wlsync_c4", True)}
    assert next(r for r in overhead if r["variant"] == "wlsync_c4")["pts_vs_wlsync"]["n"] == 1
    assert next(r for r in overhead if r["variant"] == "wlsync")["pts_vs_floor"]["n"] == 1
    costs = {c["mode"]: c for c in results["overhead"]["statement_cost"]["results"]}
    assert set(costs) == {"update"} and all(costs["update"][v]["median"] > 0 for v in ("untracked", "floor", "wlsync"))
    assert costs["update"]["wlsync_above_floor"]["n"] == 1
    tpcb = {r["variant"]: r for r in results["tpcb"]["results"]}
    assert set(tpcb) == {"untracked", "floor", "capture"}
    assert tpcb["capture"]["pct_of_untracked"]["median"] > 0 and tpcb["floor"]["pct_of_untracked"]["median"] > 0
    drain = results["drain"]
    assert {(d["sink"], d["events_per_s"]["median"] > 0) for d in drain["drain"]} == {("sqlite", True),
                                                                                     ("postgresql", True)}
    assert {(d["drivers"], d["sink"]) for d in drain["drain"] if d["case"] == "headline"} == {
        (1, "sqlite"), (2, "sqlite"), (1, "postgresql"), (2, "postgresql")}
    assert drain["claim_alone"][0]["events_per_s"]["median"] > 0
    assert drain["claim_alone"][0]["in_mdb_events_per_s"]["median"] > 0
    assert drain["baseline"]["events_per_s"]["median"] > 0
    assert {(c["consumer"], c["events_per_s"]["median"] > 0) for c in drain["consumers"]} == {
        ("default", True), ("bench2", True)}
    consistent = {d["sink"]: d for d in drain["drain"] if d["case"] == "consistent"}
    assert set(consistent) == {"sqlite", "postgresql"}
    for entry in consistent.values():  # the whole queue, one snapshot: one WL commit
        assert entry["commits"]["median"] == 1 and entry["x_normal"]["median"] > 0
    notify, sweep, notify_consistent = results["latency"]["results"]
    assert notify["not_seen"] == 0 and sweep["not_seen"] == 0 and notify_consistent["not_seen"] == 0
    assert notify_consistent["consistent"] and notify_consistent["changes"] > 0
    assert sweep["max_ms"]["median"] < (sweep["sweep_interval"] + 5) * 1000
    assert [(h["server"], h["long_txn"]) for h in results["health"]["results"]] == [("main", False), ("main", True)]
    for health in results["health"]["results"]:
        assert health["complete_runs"] == 1
        assert health["peak_rss_mb"]["median"] > 1
    writer = results["health"]["results"][1]["writer"]
    assert writer["statements"]["median"] > 0 and writer["lock_samples"] > 0 and not writer["errors"]
    assert {(v["sink"], v["ratio"]["median"] > 0) for v in results["verify"]["results"]} == {("sqlite", True),
                                                                                           ("postgresql", True)}
    report = (tmp_path / "RESULTS.md").read_text()
    assert "smoke mode" in report and "## Targets (issue 10" in report and "## 5. Queue health" in report
    assert "consistent mode drain, one driver, into SQLite (issue 13)" in report
    assert "## 7. Verify" in report
    assert (ROOT / "bench" / "RESULTS.md").read_bytes() == results_md
