"""Bad input gets one clear line and a non-zero exit, never a traceback."""
import pytest

from tests.driver_helpers import run_cli


def assert_one_line_error(result, *fragments: str, code: int = 2):
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", ["run", "status", "verify"])
def test_unreachable_source_is_one_line(command, tmp_path):
    args = [command, "--source", "postgresql://postgres@127.0.0.1:1/mdb"]
    if command != "status":
        args += ["--target", f"sqlite:///{tmp_path}/wl.db"]
    assert_one_line_error(run_cli(*args), "wlsync: error: cannot connect to", "Connection refused")


def test_malformed_source_is_one_line(tmp_path):
    assert_one_line_error(run_cli("run", "--source", "host=127.0.0.1 port", "--target", f"sqlite:///{tmp_path}/w.db"),
                          "invalid source DSN")


def test_source_without_wlsync_schema_says_to_migrate(mdb, tmp_path):
    mdb.execute("DROP SCHEMA wlsync CASCADE")
    dsn = f"postgresql://{mdb.info.user}@{mdb.info.host}:{mdb.info.port}/{mdb.info.dbname}"
    assert_one_line_error(run_cli("run", "--once", "--source", dsn, "--target", f"sqlite:///{tmp_path}/wl.db"),
                          "has no wlsync schema", "make migrate")


def test_unknown_target_scheme_is_one_line_naming_the_installed_sinks(mdb_dsn):
    assert_one_line_error(run_cli("run", "--source", mdb_dsn, "--target", "nosuchstore://localhost/0"),
                          "unknown target scheme 'nosuchstore'", "installed sinks: ", "postgresql", "sqlite",
                          "--sink-class")


def test_a_target_that_is_not_a_url_is_one_line(mdb_dsn):
    assert_one_line_error(run_cli("run", "--source", mdb_dsn, "--target", "wl.db"),
                          "target 'wl.db' is not a URL", "sqlite:///wl.db")


@pytest.mark.parametrize("sink_class, message", [
    ("wlsync_sinks.sqlite", "expected module:Class"),
    ("no_such_module:Sink", "cannot load sink class 'no_such_module:Sink': ModuleNotFoundError"),
    ("wlsync_sinks.sqlite:NoSuchSink", "cannot load sink class 'wlsync_sinks.sqlite:NoSuchSink': AttributeError"),
    ("wlsync_driver:Driver", "is not a subclass of wlsync_sinks.Sink"),
])
def test_a_bad_sink_class_is_one_line(mdb_dsn, tmp_path, sink_class, message):
    assert_one_line_error(run_cli("verify", "--source", mdb_dsn, "--target", f"sqlite:///{tmp_path}/wl.db",
                                  "--sink-class", sink_class), message)


def test_unwritable_sqlite_target_is_one_line(mdb_dsn, tmp_path):
    assert_one_line_error(run_cli("run", "--source", mdb_dsn, "--target", f"sqlite:///{tmp_path}/no/such/dir/wl.db"),
                          "wlsync: error: WL failed: SQLite file", "cannot connect", "unable to open database file")


def test_unreachable_postgresql_target_is_one_line(mdb_dsn):
    assert_one_line_error(run_cli("run", "--source", mdb_dsn, "--target", "postgresql://postgres@127.0.0.1:1/wl"),
                          "wlsync: error: WL failed: PostgreSQL", "cannot connect", "Connection refused")


@pytest.mark.parametrize("option, value", [("--batch", "0"), ("--batch", "many"), ("--sweep-interval", "-1")])
def test_malformed_option_is_refused_by_the_parser(mdb_dsn, option, value):
    result = run_cli("run", "--source", mdb_dsn, option, value)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"argument {option}: expected a positive" in result.stderr


@pytest.mark.parametrize("target, fragments", [
    ("redis://127.0.0.1:6379/abc", ["invalid Redis target", "the database is a number"]),
    ("redis://127.0.0.1:6379/9?prefx=a", ["invalid Redis target", "'prefx'", "?prefix=P"]),
    ("nats://127.0.0.1:4222", ["needs a NAME", "nats://host:port/NAME"]),
])
def test_a_mistyped_redis_or_nats_target_is_one_line_saying_what_to_fix(mdb_dsn, target, fragments):
    assert_one_line_error(run_cli("verify", "--source", mdb_dsn, "--target", target), *fragments)
