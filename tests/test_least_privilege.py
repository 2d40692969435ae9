"""Least privilege, with real roles: writers need nothing; the driver role only calls wlsync's API."""
import psycopg
import pytest

from tests.driver_helpers import run_cli, wl_titles


@pytest.fixture
def roles(mdb):
    """Login roles for this test database: a writer, a driver and an admin."""
    prefix = mdb.info.dbname
    names = {"writer": f"{prefix}_writer", "driver": f"{prefix}_driver", "admin": f"{prefix}_admin"}
    for name in names.values():
        mdb.execute(f'DROP ROLE IF EXISTS "{name}"')
    mdb.execute(f'CREATE ROLE "{names["writer"]}" LOGIN')
    mdb.execute(f'CREATE ROLE "{names["driver"]}" LOGIN IN ROLE wlsync_driver')
    mdb.execute(f'CREATE ROLE "{names["admin"]}" LOGIN IN ROLE wlsync_admin')
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text)")
    mdb.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON movies TO "{names["writer"]}"')
    yield names
    for name in names.values():
        mdb.execute(f'DROP OWNED BY "{name}"')
        mdb.execute(f'DROP ROLE "{name}"')


def dsn_as(mdb, role: str) -> str:
    return f"postgresql://{role}@{mdb.info.host}:{mdb.info.port}/{mdb.info.dbname}"


def test_admin_tracks_writer_writes_driver_syncs_each_with_its_own_role(mdb, roles, tmp_path):
    with psycopg.connect(dsn_as(mdb, roles["admin"]), autocommit=True) as admin:
        admin.execute("SELECT wlsync.track('movies')")
    with psycopg.connect(dsn_as(mdb, roles["writer"]), autocommit=True) as writer:
        writer.execute("INSERT INTO movies VALUES (1, 'Alien'), (2, 'Heat')")
        writer.execute("DELETE FROM movies WHERE id = 2")
    target = f"sqlite:///{tmp_path}/wl.db"
    driver_dsn = dsn_as(mdb, roles["driver"])
    run = run_cli("run", "--once", "--source", driver_dsn, "--target", target)
    assert run.returncode == 0, run.stderr
    assert wl_titles(target) == {1: "Alien"}
    assert run_cli("verify", "--source", driver_dsn, "--target", target).returncode == 0
    assert run_cli("status", "--source", driver_dsn).returncode == 0


@pytest.mark.parametrize("statement", [
    "SELECT * FROM wlsync.queue",
    "SELECT * FROM wlsync.queue_0",
    "DELETE FROM wlsync.queue_0",
    "UPDATE wlsync.queue_1 SET table_id = 0",
    "TRUNCATE wlsync.queue_2",
    "SELECT * FROM wlsync.claim_sync_events(10)",
    "SELECT wlsync.maintain_queue()",
    "SELECT wlsync.track('movies')",
])
def test_a_writer_cannot_read_delete_or_claim_queue_rows(mdb, roles, statement):
    mdb.execute("SELECT wlsync.track('movies')")
    with psycopg.connect(dsn_as(mdb, roles["writer"]), autocommit=True) as writer:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute(statement)


@pytest.mark.parametrize("statement", [
    "ALTER TABLE movies ADD COLUMN x int",
    "SELECT * FROM movies",
    "DELETE FROM wlsync.queue_0",
    "SELECT wlsync.track('movies')",
    "SELECT wlsync.untrack('movies')",
    "CREATE OR REPLACE FUNCTION wlsync._capture_row_1() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'",
    "CREATE TABLE public.driver_was_here (a int)",
])
def test_the_driver_role_cannot_alter_tables_triggers_or_other_schemas(mdb, roles, statement):
    mdb.execute("SELECT wlsync.track('movies')")
    mdb.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    with psycopg.connect(dsn_as(mdb, roles["driver"]), autocommit=True) as driver:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            driver.execute(statement)


def test_the_driver_role_manages_dead_letters(mdb, roles):
    mdb.execute("SELECT wlsync.track('movies')")
    mdb.execute("INSERT INTO movies VALUES (1, 'a')")
    with psycopg.connect(dsn_as(mdb, roles["driver"])) as driver:
        driver.execute("SELECT * FROM wlsync.claim_sync_events(10)")
        driver.execute("SELECT wlsync.record_failure('public.movies', '{\"id\": \"1\"}', 'no', 0, 1)")
        driver.commit()
        assert driver.execute("SELECT state FROM wlsync.dead_letters").fetchall() == [("parked",)]
        assert driver.execute("SELECT wlsync.retry_dead_letters()").fetchone()[0] == 1
        driver.commit()
