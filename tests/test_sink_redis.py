"""What is specific to the Redis sink: its documented layout, atomic batches, rejections, outages."""
from __future__ import annotations

import shutil
import subprocess
import time
import tracemalloc

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.driver_helpers import MOVIES, DriverProcess, free_port, wait_until, wl_titles
from tests.kv_stores import connections_of, redis_admin, redis_drop
from tests.test_sink_fencing import batch
from wlsync_sinks import SinkError, open_sink

TARGET = "redis://127.0.0.1:6379/11?prefix=wlsynctestkv2:{}:"   # db 11: this file's own


@pytest.fixture
def redis_wl(mdb):
    url = TARGET.format(mdb.info.dbname)
    redis_drop(url)
    sink = open_sink(url)
    sink.ensure_tables({("public", "movies"): MOVIES})
    yield url, sink
    sink.close()
    redis_drop(url)


def test_rows_are_hashes_at_the_documented_keys_and_deletes_keep_the_version(redis_wl):
    url, sink = redis_wl
    far = time.monotonic() + 60
    sink.apply(batch(7, 1, "Alien") + batch(7, 2, "Heat"), far)
    sink.apply([{**batch(8, 2, "x")[0], "row_data": {"id": "2", "title": None}}], far)   # a NULL column
    sink.apply(batch(9, 1, None), far)
    c, p = sink.connection, sink.prefix
    assert c.hgetall(p + 'movies:{"id":"2"}') == {"id": "2"}            # NULL: no field
    assert c.exists(p + 'movies:{"id":"1"}') == 0
    assert c.smembers(p + "movies:keys") == {'{"id":"2"}'}
    assert c.hgetall(p + "movies:versions") == {'{"id":"1"}': "9", '{"id":"2"}': "8"}
    assert c.zrange(p + "movies:deleted", 0, -1) == ['{"id":"1"}']
    assert sink.max_version() == 9
    assert sink.rows_by_key(MOVIES, [{"id": "1"}, {"id": "2"}]) == [None, {"id": "2", "title": None, "year": None}]


def test_listing_keys_holds_a_chunk_in_memory_not_the_whole_table(redis_wl):
    url, sink = redis_wl
    members = [f'{{"id":"{key}"}}' for key in range(60_000)]
    for start in range(0, len(members), 10_000):
        sink.connection.sadd(sink.prefix + "movies:keys", *members[start:start + 10_000])
    tracemalloc.start()
    try:
        listed = 0
        for chunk in sink.keys(MOVIES, 1000):
            assert len(chunk) <= 1000
            listed += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert listed >= 60_000            # SSCAN may repeat a member while the set is resized, never miss one
    assert peak < 3_000_000, peak      # 60,000 keys kept to drop repeats took over 8 MB


def test_a_key_holding_another_type_rejects_the_batch_before_anything_is_written(redis_wl):
    url, sink = redis_wl
    sink.connection.set(sink.prefix + 'movies:{"id":"2"}', "not a hash")          # someone wrote there
    with pytest.raises(SinkError, match='WRONGTYPE .*movies:\\{"id":"2"\\} holds a string') as caught:
        sink.apply(batch(5, 1, "fine") + batch(5, 2, "blocked"), time.monotonic() + 60)
    assert caught.value.rejected
    assert sink.connection.ping()                                               # a rejection keeps the connection
    assert wl_titles(url) == {} and sink.max_version() == 0                     # key 1 was not written either


def test_a_key_redis_rejects_becomes_a_dead_letter_and_arrives_once_fixed(movies, mdb, mdb_dsn, tmp_path):
    url = TARGET.format(mdb.info.dbname)
    redis_drop(url)
    admin = redis_admin(url)
    prefix = url.split("prefix=")[1]
    admin.set(prefix + 'movies:{"id":"2"}', "in the way")
    movies.execute("INSERT INTO movies VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)")
    driver = DriverProcess(mdb_dsn, url, tmp_path / "driver.log", "--sweep-interval", "1")
    try:
        wait_until(lambda: wl_titles(url) == {1: "a", 3: "c"}, message="the keys Redis accepts")
        wait_until(lambda: mdb.execute("SELECT pk FROM wlsync.dead_letters").fetchall() == [({"id": 2},)],
                   message="key 2 held back")
        admin.delete(prefix + 'movies:{"id":"2"}')
        mdb.execute("SELECT wlsync.retry_dead_letters()")
        wait_until(lambda: wl_titles(url) == {1: "a", 2: "b", 3: "c"}, timeout=15, message="key 2 after the fix")
    finally:
        assert driver.stop() == 0
        admin.close()
        redis_drop(url)


def test_the_driver_goes_on_when_its_redis_connections_are_killed_again_and_again(movies, mdb, mdb_dsn, tmp_path):
    url = TARGET.format(mdb.info.dbname)
    redis_drop(url)
    admin = redis_admin(url)
    driver = DriverProcess(mdb_dsn, url, tmp_path / "driver.log", "--sweep-interval", "1")
    try:
        movies.execute("INSERT INTO movies VALUES (1, 'before', 1)")
        wait_until(lambda: wl_titles(url) == {1: "before"}, message="the first row")
        for key in range(2, 6):
            # This driver's connections only: other tests (other runs, other workers) use db 11 too.
            ours = connections_of(driver.proc.pid, "127.0.0.1:6379")
            killed = [c["id"] for c in admin.client_list() if c["name"] == "wlsync" and c["addr"] in ours]
            for client_id in killed:
                admin.client_kill_filter(_id=client_id)
            assert killed
            movies.execute("INSERT INTO movies VALUES (%s, 'after', 1)", [key])
            wait_until(lambda: len(wl_titles(url)) == key, message=f"row {key} after the kill")
        assert driver.alive()
        assert "MDB unavailable" not in driver.log()
    finally:
        assert driver.stop() == 0
        admin.close()
        redis_drop(url)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_driver_survives_a_restart_of_its_redis_server(movies, mdb_dsn, tmp_path):
    port = free_port()   # a throwaway server of this test's own, on a port no one else uses

    def client() -> redis.Redis:
        # No retries: redis-py's default (3, with backoff) spends 3.5 s on every call
        # to a server that is down, SHUTDOWN included (its connection closes).
        return redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))

    def start():
        subprocess.run(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "yes",
                        "--dir", str(tmp_path), "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
                       check=True, capture_output=True)
        wait_until(ping, message="the throwaway redis-server")

    def ping():
        try:
            return client().ping()
        except redis.ConnectionError:
            return False

    start()
    url = f"redis://127.0.0.1:{port}/0"
    driver = DriverProcess(mdb_dsn, url, tmp_path / "driver.log", "--sweep-interval", "1")
    try:
        movies.execute("INSERT INTO movies VALUES (1, 'before', 1)")
        wait_until(lambda: wl_titles(url) == {1: "before"}, message="the first row")
        client().shutdown(nosave=True)
        movies.execute("INSERT INTO movies VALUES (2, 'during', 1)")
        wait_until(lambda: f"WL failed (Redis 127.0.0.1:{port}/0" in driver.log(), timeout=20,
                   message="the failure logged")
        movies.execute("UPDATE movies SET title = 'changed' WHERE id = 1")
        start()
        wait_until(lambda: wl_titles(url) == {1: "changed", 2: "during"}, timeout=30, message="the changes")
        assert driver.alive()
        assert "MDB unavailable" not in driver.log()
    finally:
        assert driver.stop() == 0
        if ping():
            client().shutdown(nosave=True)
