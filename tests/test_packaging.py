"""wlsync as a new user gets it: the built wheel, installed into a fresh virtualenv
(not an editable checkout), migrates an empty database and syncs a table."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.conftest import TEST_DB, admin_connection
from tests.driver_helpers import ROOT, WORKER

SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_top_level_module_and_package_is_declared_for_the_wheel():
    modules = {path.stem for path in ROOT.glob("wlsync_*.py")}
    packages = {path.parent.name for path in ROOT.glob("wlsync_*/__init__.py")}
    assert modules <= set(SETUPTOOLS["py-modules"]), "add the new module to py-modules in pyproject.toml"
    assert packages <= set(SETUPTOOLS["packages"]), "add the new package to packages in pyproject.toml"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the built wheel installed; its dependencies come from
    the test venv's site-packages (a .pth line), so it builds and installs offline."""
    base = tmp_path_factory.mktemp("packaging")
    # Build from a copy: setuptools' build/ directory keeps stale files between builds.
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".*", "build", "*.egg-info", "__pycache__", "tests", "bench", "demo", "*.db*"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--wheel-dir", str(base / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # Only this directory is added: the test venv's .pth files (its editable wlsync) stay inactive.
    Path(site, "test-venv-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel, = (base / "dist").glob("wlsync-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv


@pytest.fixture
def empty_db():
    name = f"{TEST_DB}{WORKER}_pkg"
    with admin_connection("127.0.0.1", 5432, "postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with admin_connection("127.0.0.1", 5432, "postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wlsync(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed console script, away from the checkout and with no PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "WLSYNC_SOURCE")}
    return subprocess.run([str(venv / "bin" / "wlsync"), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


@pytest.mark.xdist_group("packaging")   # one worker builds the wheel and its venv (installed)
def test_the_installed_wheel_migrates_an_empty_database_and_syncs(installed, empty_db, tmp_path):
    import psycopg

    where = subprocess.run([installed / "bin" / "python", "-c", "import wlsync_migrate; print(wlsync_migrate.MIGRATIONS)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.strip()
    assert where.startswith(str(installed)) and where.endswith("wlsync_schema/migrations"), where

    migrate = wlsync(installed, "migrate", "--source", empty_db, cwd=tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    migrations = len(list((ROOT / "migrations").glob("*.sql")))
    assert f"{migrations} migration(s) applied" in migrate.stdout, migrate.stdout
    again = wlsync(installed, "migrate", "--source", empty_db, cwd=tmp_path)
    assert again.returncode == 0 and "is up to date" in again.stdout, again.stdout + again.stderr

    with psycopg.connect(empty_db, autocommit=True) as mdb:
        installed_functions = {name for name, in mdb.execute(
            "SELECT 'wlsync.' || proname FROM pg_proc WHERE pronamespace = 'wlsync'::regnamespace")}
        assert {path.stem for path in (ROOT / "sql" / "functions").glob("*.sql")} <= installed_functions
        mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text, year int)")
        mdb.execute("SELECT wlsync.track('movies')")
        mdb.execute("INSERT INTO movies VALUES (1, 'Alien', 1979), (2, 'Heat', 1995), (3, 'Ran', 1985)")
        mdb.execute("UPDATE movies SET title = 'Aliens' WHERE id = 1")
        mdb.execute("DELETE FROM movies WHERE id = 2")

    target = f"sqlite:///{tmp_path}/wl.db"
    run = wlsync(installed, "run", "--once", "--source", empty_db, "--target", target, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(tmp_path / "wl.db") as wl:
        assert wl.execute("SELECT id, title, year FROM movies ORDER BY id").fetchall() == \
            [(1, "Aliens", 1979), (3, "Ran", 1985)]
    check = wlsync(installed, "verify", "--source", empty_db, "--target", target, cwd=tmp_path)
    assert check.returncode == 0 and "verify: WL == MDB" in check.stdout, check.stdout + check.stderr


@pytest.mark.xdist_group("packaging")   # one worker builds the wheel and its venv (installed)
def test_an_installation_without_its_migrations_says_so_instead_of_up_to_date(installed, empty_db, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(installed, broken, symlinks=True)
    site = next(broken.glob("lib/python*/site-packages"))
    for sql in (site / "wlsync_schema" / "migrations").glob("*.sql"):
        sql.unlink()
    # The copied console script still names the original venv's interpreter: run the copy's own.
    result = subprocess.run([broken / "bin" / "python", "-m", "wlsync_driver", "migrate", "--source", empty_db],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "no SQL files found in" in result.stderr and "wlsync_schema/migrations" in result.stderr
    assert "installation is incomplete" in result.stderr
