"""Sinks as plug-ins: the README's example sink, installed by pip from a package of its
own, is found by its URL scheme; a class can also be named directly."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

from tests.conftest import readme_files
from tests.driver_helpers import ROOT, DriverProcess, run_cli, wait_until
from wlsync_sinks import BUILTIN_SINKS, ENTRY_POINT_GROUP


def test_the_built_in_fallback_lists_the_entry_points_pyproject_registers():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][ENTRY_POINT_GROUP] == BUILTIN_SINKS


def with_path(directory: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))}


def test_the_readme_example_installed_by_pip_syncs_and_verifies_by_its_scheme(movies, mdb_dsn, example_sink_site,
                                                                              tmp_path):
    assert (example_sink_site / "wlsync_jsonfile.py").exists()
    assert any(example_sink_site.glob("wlsync_jsonfile-*.dist-info/entry_points.txt"))
    target = f"jsonfile://{tmp_path}/wl.json"
    env = with_path(example_sink_site)
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979), (2, 'Heat', 1995)")
    process = DriverProcess(mdb_dsn, target, tmp_path / "driver.log", "--sweep-interval", "1", env=env)
    try:
        wait_until(lambda: (tmp_path / "wl.json").exists(), message="the first batch")
        movies.execute("UPDATE movies SET title = 'Aliens' WHERE id = 1")
        movies.execute("DELETE FROM movies WHERE id = 2")
        movies.execute("INSERT INTO movies VALUES (3, 'Ran', 1985)")
        wait_until(lambda: movies.execute("SELECT count(*) FROM wlsync.queue").fetchone()[0] == 0,
                   message="the queue to drain")
        check = run_cli("verify", "--source", mdb_dsn, "--target", target, env=env)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "verify: WL == MDB" in check.stdout
    finally:
        assert process.stop() == 0
    assert "synced" in process.log()
    unknown = run_cli("run", "--source", mdb_dsn, "--target", "nosuchstore://x", env=env)
    assert "installed sinks: jsonfile, " in unknown.stderr
    assert all(f" {scheme}," in unknown.stderr or f" {scheme} (" in unknown.stderr for scheme in BUILTIN_SINKS)


def test_a_sink_class_named_directly_needs_no_registration(movies, mdb_dsn, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "wlsync_jsonfile.py").write_text(readme_files()["wlsync_jsonfile.py"])
    target = f"jsonfile://{tmp_path}/wl.json"
    env = with_path(plain)
    movies.execute("INSERT INTO movies VALUES (1, 'Alien', 1979)")
    unregistered = run_cli("run", "--once", "--source", mdb_dsn, "--target", target, env=env)
    assert unregistered.returncode == 2 and "unknown target scheme 'jsonfile'" in unregistered.stderr
    run = run_cli("run", "--once", "--source", mdb_dsn, "--target", target,
                  "--sink-class", "wlsync_jsonfile:JsonFileSink", env=env)
    assert run.returncode == 0, run.stderr
    check = run_cli("verify", "--source", mdb_dsn, "--target", target,
                    "--sink-class", "wlsync_jsonfile:JsonFileSink", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
