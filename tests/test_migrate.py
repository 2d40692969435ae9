"""make migrate / make functions: re-runnable, and one clear line for a bad DSN."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_migrate(*args, env_source=None):
    env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5"}
    if env_source is not None:
        env["WLSYNC_SOURCE"] = env_source
    return subprocess.run([sys.executable, str(ROOT / "wlsync_migrate.py"), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_rerunning_migrations_is_a_no_op(mdb, mdb_dsn):
    before = mdb.execute("SELECT count(*) FROM _yoyo_migration").fetchone()[0]
    result = run_migrate("migrate", env_source=mdb_dsn)
    assert result.returncode == 0, result.stderr
    assert "is up to date" in result.stdout
    assert mdb.execute("SELECT count(*) FROM _yoyo_migration").fetchone()[0] == before


def test_functions_reinstalls_every_function_file(mdb, mdb_dsn):
    mdb.execute("DROP FUNCTION wlsync.queue_status(text)")
    result = run_migrate("functions", "--source", mdb_dsn)
    assert result.returncode == 0, result.stderr
    assert mdb.execute("SELECT to_regprocedure('wlsync.queue_status(text)') IS NOT NULL").fetchone()[0]


def test_unreachable_server_is_one_clear_line():
    result = run_migrate("migrate", env_source="postgresql://postgres@127.0.0.1:1/nodb")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("wlsync: error: cannot connect to")
    assert "Connection refused" in lines[0]


def test_malformed_dsn_is_one_clear_line():
    result = run_migrate("migrate", env_source="postgresql://[oops")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "invalid source DSN" in result.stderr and "postgresql://user@host:5432/dbname" in result.stderr


def test_missing_database_is_one_clear_line():
    result = run_migrate("migrate", env_source="postgresql://postgres@127.0.0.1/wlsync_no_such_db")
    assert result.returncode == 2
    assert 'database "wlsync_no_such_db" does not exist' in result.stderr
    assert result.stderr.count("\n") == 1
