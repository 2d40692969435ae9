"""wlsync.metrics(): the queue's figures per table, exact on a small queue, sampled on a large one."""
import psycopg
import pytest

from tests.conftest import claim

FIGURES = ("SELECT table_name, queued_events, queued_exact, oldest_enqueued_at, retrying_keys, dead_letters "
           "FROM wlsync.metrics({})")


def figures(conn, sample_blocks: int = 1024) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in conn.execute(FIGURES.format(sample_blocks)).fetchall()}


def current_slot_blocks(conn) -> tuple[str, int]:
    return conn.execute("SELECT format('wlsync.queue_%s', slot), "
                        "pg_relation_size(format('wlsync.queue_%s', slot)) / 8192 "
                        "FROM wlsync.queue_slot WHERE ring = 0 AND state = 'current'").fetchone()


@pytest.fixture
def two_tables(mdb):
    mdb.execute("CREATE TABLE movies (id int PRIMARY KEY, title text)")
    mdb.execute('CREATE TABLE "Odd Name" (a int, b text, PRIMARY KEY (a, b))')
    mdb.execute("SELECT wlsync.track('movies')")
    mdb.execute("""SELECT wlsync.track('"Odd Name"')""")
    return mdb


def test_a_small_queue_is_counted_exactly_like_queue_status(two_tables):
    mdb = two_tables
    mdb.execute("INSERT INTO movies SELECT g, 'm' FROM generate_series(1, 500) g")
    mdb.execute("""INSERT INTO "Odd Name" SELECT g, 'x' FROM generate_series(1, 20) g""")
    mdb.execute("UPDATE movies SET title = 'n' WHERE id <= 10")
    status = {row[0]: row[1:] for row in mdb.execute(
        "SELECT table_name, pending_events, oldest_enqueued_at FROM wlsync.queue_status()").fetchall()}
    assert status["movies"][0] == 510
    got = figures(mdb)
    assert got == {"movies": (510, True, status["movies"][1], 0, 0),
                   "Odd Name": (20, True, status["Odd Name"][1], 0, 0)}

    with mdb.transaction():
        held = claim(mdb, 100)                           # a batch in hand still counts ...
        assert sum(r["events"] for r in held) == 100
        other = psycopg.connect(mdb.info.dsn, autocommit=True)
        assert figures(other)["movies"][0] == 510
    assert figures(other)["movies"][0] == 410             # ... until it commits
    other.close()
    with mdb.transaction():
        while claim(mdb):
            pass
    assert figures(mdb) == {"movies": (0, True, None, 0, 0), "Odd Name": (0, True, None, 0, 0)}


def test_a_large_queue_is_sampled_reads_a_fraction_and_finds_the_oldest_event(two_tables):
    mdb = two_tables
    mdb.execute("INSERT INTO movies SELECT g, 'm' FROM generate_series(1, 60000) g")
    mdb.execute("""INSERT INTO "Odd Name" SELECT g, 'x' FROM generate_series(1, 100) g""")
    slot, blocks = current_slot_blocks(mdb)
    assert blocks > 300
    oldest = dict(mdb.execute("SELECT table_name, oldest_enqueued_at FROM wlsync.queue_status()").fetchall())

    fetched = "SELECT pg_stat_get_xact_blocks_fetched(%s::regclass)"
    with mdb.transaction():
        before = mdb.execute(fetched, [slot]).fetchone()[0]  # (may include earlier transactions' counts)
        got = figures(mdb, blocks // 3)
        fetched = mdb.execute(fetched, [slot]).fetchone()[0] - before
    # About a third of the blocks sampled, plus the head (10,000 rows): far from a full scan.
    assert fetched < blocks * 2 // 3
    events, exact, movies_oldest, _, _ = got["movies"]
    assert not exact
    assert 60000 * 0.7 < events < 60000 * 1.3
    assert movies_oldest == oldest["movies"]              # the head of the slot holds the oldest event
    odd_oldest = got["Odd Name"][2]
    assert odd_oldest is None or odd_oldest >= oldest["Odd Name"]  # never older than the truth

    assert figures(mdb, blocks)["movies"][:2] == (60000, True)


def test_dead_letters_are_counted_by_state(two_tables):
    mdb = two_tables
    mdb.execute("INSERT INTO movies VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    with mdb.transaction():
        claim(mdb)
        mdb.execute("""SELECT wlsync.record_failure('movies', '{"id": "1"}', 'boom', 0, 3)""")
        mdb.execute("""SELECT wlsync.record_failure('movies', '{"id": "2"}', 'boom', 0, 3)""")
        mdb.execute("""SELECT wlsync.record_failure('movies', '{"id": "3"}', 'boom', 2, 3)""")
    assert figures(mdb)["movies"] == (0, True, None, 2, 1)


def test_a_sample_of_no_block_is_refused(two_tables):
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match="wlsync.metrics: p_sample_blocks must be at least 1, got 0"):
        two_tables.execute("SELECT * FROM wlsync.metrics(0)")


def test_pg_monitor_members_may_call_it_and_other_roles_may_not(two_tables):
    mdb = two_tables
    monitor, nobody = f"{mdb.info.dbname}_monitor", f"{mdb.info.dbname}_nobody"
    try:
        mdb.execute(f'CREATE ROLE "{monitor}" IN ROLE pg_monitor')
        mdb.execute(f'CREATE ROLE "{nobody}"')
        mdb.execute("INSERT INTO movies VALUES (1, 'a')")
        mdb.execute(f'SET ROLE "{monitor}"')
        assert figures(mdb)["movies"][0] == 1
        mdb.execute(f'SET ROLE "{nobody}"')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            mdb.execute("SELECT * FROM wlsync.metrics()")
    finally:
        mdb.execute("RESET ROLE")
        mdb.execute(f'DROP ROLE IF EXISTS "{monitor}"')
        mdb.execute(f'DROP ROLE IF EXISTS "{nobody}"')
