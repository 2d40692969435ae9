"""What is specific to the NATS sink: its documented buckets and keys, compare-and-set
fencing seen by a watcher, redelivery publishing nothing, rejections, outages."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

import nats
import nats.js.errors
import pytest

from tests.driver_helpers import MOVIES, DriverProcess, free_port, wait_until, wl_titles
from tests.kv_stores import nats_connections_killed, nats_drop
from tests.test_sink_fencing import batch
from wlsync_sinks import Column, SinkError, Table, open_sink
from wlsync_sinks.nats import Publisher, decode_key, encode_key

PAIRS = Table("app", "odd pairs", (Column("a", "integer", "int4", True, 1), Column("b", "text", "text", True, 2),
                                   Column("v", "text", "text", True, None)))


def own_target(mdb) -> str:
    return f"nats://127.0.0.1:4222/wlsynctestkv2-own-{mdb.info.dbname.replace('_', '-')}"


@pytest.fixture
def nats_wl(mdb):
    url = own_target(mdb)
    nats_drop(url)
    sink = open_sink(url)
    sink.ensure_tables({("public", "movies"): MOVIES, ("app", "odd pairs"): PAIRS})
    yield url, sink
    sink.close()
    nats_drop(url)


@dataclass
class Entry:
    key: str
    operation: str | None
    value: bytes
    revision: int


async def bucket_entries(url: str, bucket: str) -> list[Entry]:
    """Every message of a bucket, oldest first (history=1 keeps the last per key), read
    from its stream message by message."""
    server, _ = url.rsplit("/", 1)
    nc = await nats.connect(server)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(f"KV_{bucket}")).state
        entries = []
        for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            try:
                msg = await js.get_msg(f"KV_{bucket}", seq)
            except nats.js.errors.NotFoundError:
                continue
            entries.append(Entry(msg.subject.split(".", 2)[2], (msg.headers or {}).get("KV-Operation"), msg.data,
                                 msg.seq))
        return entries
    finally:
        await nc.close()


def test_keys_encode_reversibly_into_the_kv_alphabet():
    for pk in ({"a": "7", "b": "x"}, {"a": "-1", "b": ""}, {"a": "0", "b": "a.b c=d/é☃_-"}):
        key = encode_key(PAIRS, pk)
        assert all(ch.isascii() and (ch.isalnum() or ch in "-_=.") for ch in key)
        assert decode_key(PAIRS, key) == pk
    assert encode_key(PAIRS, {"a": "7", "b": "a b"}) == "7.a=20b"
    assert encode_key(PAIRS, {"a": "7", "b": ""}) == "7.="


def test_rows_are_json_values_and_deletes_are_tombstones_carrying_their_version(nats_wl):
    url, sink = nats_wl
    far = time.monotonic() + 60
    row = {"table_schema": "app", "table_name": "odd pairs", "pk": {"a": "1", "b": "x y"}, "version": 3,
           "action": "upsert", "row_data": {"a": "1", "b": "x y", "v": None}}
    sink.apply([row], far)
    sink.apply([{**row, "version": 4, "action": "delete", "row_data": None}], far)
    sink.apply(batch(5, 1, "Alien"), far)
    name = url.rsplit("/", 1)[1]
    (entry,) = asyncio.run(bucket_entries(url, f"{name}_app-2Eodd-20pairs"))
    assert (entry.key, entry.operation, json.loads(entry.value)) == ("1.x=20y", "DEL", {"version": 4})
    (entry,) = asyncio.run(bucket_entries(url, f"{name}_movies"))
    assert json.loads(entry.value) == {"version": 5, "row": {"id": "1", "title": "Alien", "year": None}}
    assert sink.max_version() == 5
    assert sink.rows_by_key(PAIRS, [{"a": "1", "b": "x y"}]) == [None]
    assert not sink.atomic_batches


def test_a_batch_applied_again_publishes_nothing(nats_wl):
    url, sink = nats_wl
    rows = [r for key in range(20) for r in batch(10, key, f"t{key}")] + batch(10, 99, None)
    sink.apply(rows, time.monotonic() + 60)
    name = url.rsplit("/", 1)[1]
    first = [(e.key, e.revision) for e in asyncio.run(bucket_entries(url, f"{name}_movies"))]
    again = open_sink(url)           # a new driver after a crash knows nothing of what was written
    try:
        again.ensure_tables({("public", "movies"): MOVIES})
        again.apply(rows, time.monotonic() + 60)
    finally:
        again.close()
    assert [(e.key, e.revision) for e in asyncio.run(bucket_entries(url, f"{name}_movies"))] == first
    assert len(first) == 21


def test_a_watcher_never_sees_a_keys_version_go_down_with_two_racing_writers(nats_wl):
    url, sink = nats_wl
    server, name = url.rsplit("/", 1)
    seen: list[int] = []
    ready = threading.Event()

    async def watch():
        nc = await nats.connect(server)
        kv = await nc.jetstream().key_value(f"{name}_movies")
        watcher = await kv.watch("1")
        ready.set()
        while not seen or seen[-1] != 400:   # 400 is the last version written, whoever wins
            entry = await watcher.updates(timeout=10)
            if entry is not None:
                seen.append(json.loads(entry.value)["version"])
        await nc.close()

    watching = threading.Thread(target=asyncio.run, args=(watch(),))
    watching.start()
    ready.wait(10)
    other = open_sink(url)
    other.ensure_tables({("public", "movies"): MOVIES})

    def write(target_sink, versions):
        for version in versions:
            target_sink.apply(batch(version, 1, f"v{version}"), time.monotonic() + 60)

    # Each writer goes up, but they interleave: each often holds an outdated revision.
    writers = [threading.Thread(target=write, args=(s, range(start, 401, 2))) for s, start in ((sink, 1), (other, 2))]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    watching.join(30)
    other.close()
    assert seen == sorted(seen) and len(set(seen)) == len(seen) and seen[-1] == 400
    assert sink.rows_by_key(MOVIES, [{"id": "1"}]) == [{"id": "1", "title": "v400", "year": None}]


def test_a_row_over_the_servers_max_payload_is_rejected_before_anything_is_published(nats_wl):
    url, sink = nats_wl
    with pytest.raises(SinkError, match="more than the server's max_payload") as caught:
        sink.apply(batch(5, 1, "fine") + batch(5, 2, "x" * 2_000_000), time.monotonic() + 60)
    assert caught.value.rejected
    assert wl_titles(url) == {}


def test_the_driver_goes_on_when_its_nats_connections_are_killed_again_and_again(movies, mdb, mdb_dsn, tmp_path):
    url = own_target(mdb)
    nats_drop(url)
    driver = DriverProcess(mdb_dsn, url, tmp_path / "driver.log", "--sweep-interval", "1")
    try:
        movies.execute("INSERT INTO movies VALUES (1, 'before', 1)")
        wait_until(lambda: wl_titles(url) == {1: "before"}, message="the first row")
        for key in range(2, 6):
            nats_connections_killed(url)
            movies.execute("INSERT INTO movies VALUES (%s, 'after', 1)", [key])
            wait_until(lambda: len(wl_titles(url)) == key, message=f"row {key} after the kill")
        assert driver.alive()
        assert "MDB unavailable" not in driver.log()
    finally:
        assert driver.stop() == 0
        nats_drop(url)


@pytest.mark.skipif(shutil.which("nats-server") is None, reason="needs nats-server")
def test_the_driver_survives_a_restart_of_its_nats_server(movies, mdb_dsn, tmp_path):
    port = free_port()   # a throwaway server of this test's own, on a port no one else uses
    command = ["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "js")]

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    def start() -> subprocess.Popen:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(listening, message="the throwaway nats-server")
        return server

    server = start()
    url = f"nats://127.0.0.1:{port}/wlsynctestkv2-restart"
    driver = DriverProcess(mdb_dsn, url, tmp_path / "driver.log", "--sweep-interval", "1")
    try:
        movies.execute("INSERT INTO movies VALUES (1, 'before', 1)")
        wait_until(lambda: wl_titles(url) == {1: "before"}, message="the first row")
        server.terminate()
        server.wait(10)
        movies.execute("INSERT INTO movies VALUES (2, 'during', 1)")
        wait_until(lambda: f"WL failed (NATS 127.0.0.1:{port}/wlsynctestkv2-restart" in driver.log(),
                   timeout=20, message="the failure logged")
        movies.execute("UPDATE movies SET title = 'changed' WHERE id = 1")
        server = start()
        wait_until(lambda: wl_titles(url) == {1: "changed", 2: "during"}, timeout=30, message="the changes")
        assert driver.alive()
        assert "MDB unavailable" not in driver.log()
    finally:
        assert driver.stop() == 0
        server.terminate()
        server.wait(10)


def test_listing_keys_while_other_keys_are_rewritten_lists_every_key_that_stayed(nats_wl):
    """A KV watcher ends its initial values at the first message whose pending count
    reads 0, which concurrent writes can make it read early (nats-server#4824): keys()
    must not depend on that count, or verify misses keys WL holds."""
    url, sink = nats_wl
    far = time.monotonic() + 60
    stable = {str(key) for key in range(1, 1501)}
    sink.apply([r for key in sorted(stable, key=int) for r in batch(1, int(key), "still")], far)
    stop = threading.Event()

    def rewrite():
        writer = open_sink(url)
        writer.ensure_tables({("public", "movies"): MOVIES})
        version = 2
        while not stop.is_set():   # rewrites move hot keys behind the listing's walk
            writer.apply([r for key in range(5001, 5021) for r in batch(version, key, f"v{version}")], far)
            version += 1
            time.sleep(0.001)
        writer.close()

    rewriting = threading.Thread(target=rewrite)
    rewriting.start()
    try:
        listings = [{pk["id"] for chunk in sink.keys(MOVIES, 500) for pk in chunk} for _ in range(6)]
    finally:
        stop.set()
        rewriting.join()
    assert [len(stable - listed) for listed in listings] == [0] * 6
    assert all(listed <= stable | {str(key) for key in range(5001, 5021)} for listed in listings)


def test_tombstones_older_than_the_retention_are_pruned_and_newer_entries_stay(nats_wl):
    url, sink = nats_wl
    far = time.monotonic() + 60
    sink.apply(batch(1, 1, "gone") + batch(1, 2, "back") + batch(1, 3, "kept"), far)
    sink.apply(batch(2, 1, None) + batch(2, 2, None), far)      # two tombstones
    sink.apply(batch(3, 2, "again"), far)                       # key 2 written again after its delete
    time.sleep(1.5)
    sink.apply(batch(4, 4, None), far)                          # a fresh tombstone
    pruner = open_sink(url)
    pruner.ensure_tables({("public", "movies"): MOVIES})
    pruner.keep_deletes = 1.0   # instead of a day; its first batch prunes
    try:
        pruner.apply(batch(5, 5, "new"), far)
        name = url.rsplit("/", 1)[1]
        entries = {e.key: (e.operation, json.loads(e.value)["version"])
                   for e in asyncio.run(bucket_entries(url, f"{name}_movies"))}
        assert entries == {"2": (None, 3), "3": (None, 1), "4": ("DEL", 4), "5": (None, 5)}
        # The step stopped at the fresh tombstone (revision 7): the next one, of any driver, starts there.
        assert pruner.pruned[f"{name}_movies"] == 7 and not pruner.unpruned
        (mark,) = [e for e in asyncio.run(bucket_entries(url, f"{name}-wlsync")) if e.key.startswith("pruned.")]
        assert (mark.key, json.loads(mark.value)) == (f"pruned.{name}_movies", {"sequence": 7})
        # A stale batch within the retention still cannot bring back a deleted key.
        pruner.apply(batch(3, 4, "stale"), far)
        assert wl_titles(url) == {2: "again", 3: "kept", 5: "new"}
    finally:
        pruner.close()


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """A throwaway nats-server requiring TLS (a certificate for 127.0.0.1, trusted
    through SSL_CERT_FILE) and a user and password, pinging every 0.5 s: a client
    that does not answer is dropped after about 1.5 s."""
    if shutil.which("nats-server") is None or shutil.which("openssl") is None:
        pytest.skip("needs nats-server and openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    port = free_port()
    config = tmp_path / "nats.conf"
    config.write_text(f'listen: "127.0.0.1:{port}"\nping_interval: "500ms"\nping_max: 2\n'
                      f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
                      f'tls {{ cert_file: "{cert}", key_file: "{key}" }}\n'
                      'authorization { user: "wl", password: "s3cret" }\n')
    server = subprocess.Popen(["nats-server", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    try:
        wait_until(listening, message="the throwaway nats-server")
        yield port
    finally:
        server.terminate()
        server.wait(10)


def test_a_server_requiring_tls_and_a_password_and_pinging_an_idle_sink(tls_server):
    """The batches' writes go through a connection of the sink's own (wlsync_sinks.nats.
    Publisher): it must connect as nats-py does, and survive the server dropping it
    while the sink is idle (it answers PINGs only when it reads)."""
    url = f"nats://wl:s3cret@127.0.0.1:{tls_server}/wlsynctestkv2-tls"
    sink = open_sink(url)
    try:
        sink.ensure_tables({("public", "movies"): MOVIES})
        far = time.monotonic() + 60
        sink.apply(batch(1, 1, "first") + batch(1, 2, "second"), far)
        assert wl_titles(url) == {1: "first", 2: "second"}
        time.sleep(2.5)   # idle: the server drops the connection that did not answer its PINGs
        sink.apply(batch(2, 1, "after a pause"), far)   # no failure: nothing was sent on the dropped one
        assert wl_titles(url) == {1: "after a pause", 2: "second"}
    finally:
        sink.close()
    with pytest.raises(ConnectionError, match="^Authorization Violation$"):
        Publisher(f"nats://wl:wrong@127.0.0.1:{tls_server}", 5)
    Publisher(f"nats://wl:s3cret@127.0.0.1:{tls_server}", 5).close()
