"""NATS JetStream key-value buckets as WL: ``nats://host:port/NAME``.

NAME (letters, digits and ``-``) starts the name of every bucket this WL
creates, so several WLs can share one server:

- each WL table T (``public.movies`` is ``movies``, ``app.cast`` is ``app.cast``)
  is the bucket ``NAME_`` + T, where every character of T other than a letter,
  a digit or ``_`` is written ``-`` plus the two hex digits of each of its UTF-8
  bytes (``app.cast`` -> ``NAME_app-2Ecast``);
- the bucket ``NAME-wlsync`` holds ``max_version``, the highest batch version
  applied, and ``pruned.<bucket>``, where the pruning of a bucket's tombstones
  goes on (a bucket of no table: table buckets always have a ``_`` after NAME).

Keys: a row's key is its primary key values in key column order, joined by
``.`` (so ``kv.watch("7.>")`` watches every row whose first key column is 7).
In each value, letters, digits, ``_`` and ``-`` stand as they are, every other
character is written ``=`` plus the two hex digits of each of its UTF-8 bytes
(as in quoted-printable), and the empty string is ``=``: id 7 is ``7``, the key
(7, 'a b') is ``7.a=20b``.

Values: the row as JSON, ``{"version": 1234, "row": {"id": "7", "title":
"Alien", ...}}``, every column as PostgreSQL text or null, as MDB has it at the
write (a column dropped in MDB is gone from the row at its next write). A
delete is a KV delete (a tombstone, ``KV-Operation: DEL``) whose payload is
``{"version": 1235}``, so a watcher sees deletes in order with the rest.

Fencing and redelivery. Each write is a compare-and-set on the key's last
revision (``Nats-Expected-Last-Subject-Sequence``, what ``kv.update(key, value,
last=revision)`` sends), made only when the batch's version is newer than the
version stored at that revision. Two drivers cannot interleave a stale write:
the one whose revision is outdated fails, re-reads the key, and finds the
newer version. So a watcher of a key never sees its version go down, and a
batch applied again publishes nothing (its versions are not newer): the KV
revision does not move.

What "atomic per batch" means here: NATS KV has no multi-key transactions.
Each key's write is atomic; a batch is not. A crash (or a lost connection) in
the middle of a batch leaves part of it in the buckets and the whole batch in
MDB's queue, and redelivery completes it without publishing the done part
twice. Readers can see a batch half applied, never a key go back. Hence
``atomic_batches = False``.

Limits: a value must fit in the server's max_payload (1 MB by default, up to
64 MB in the server's configuration) and a key in 3,000 bytes once encoded;
rows beyond are rejected (dead letters).

Tombstones: watchers learn deletes from them, and they carry the deleted key's
version for fencing, so they stay TOMBSTONE_RETENTION (a day); then the sink
purges them (``_prune``), a bounded step every PRUNE_EVERY batches, and the
bucket holds about as many entries as keys live or deleted within a day.

The client, nats-py, is asyncio-only: the sink runs one event loop in a
background thread for buckets, reads, walks and pruning. A batch's writes go
through a second connection of the sink's own (``Publisher``), which speaks the
client protocol directly from the driver's thread: every compare-and-set of a
round in one write, then the acks (nats-py's per-message publish and ack
dispatch cost several times more CPU; see ``Publisher``). Both connect on first
use, never reconnect by themselves (the Publisher reopens a connection the
server closed while it was idle, before sending anything), and are dropped
after any failure that is not the server refusing the data (``Sink.guard``):
the next call opens new ones, and the driver retries the batch.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import itertools
import json
import re
import secrets
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

from wlsync_sinks import (PRUNE_EVERY, Sink, SinkError, Table, TargetError, check_deadline, error_text,
                          group_by_table)

try:
    import nats
    import nats.errors
    import nats.js.api
    import nats.js.errors
except ImportError:  # the nats extra is optional
    nats = None

NAME_RE = re.compile(r"[A-Za-z0-9-]+")
MAX_KEY_BYTES = 3000         # the subject must fit the server's protocol line (4 KB by default)
CONNECT_TIMEOUT = 5.0        # seconds to open a connection
REQUEST_TIMEOUT = 10.0       # seconds for one round of pipelined requests
CAS_ROUNDS = 10              # compare-and-set retries of one key before the batch is retried
WALK_CONSUMER_IDLE = 60.0    # seconds before the server drops a walk's consumer left behind
TOMBSTONE_RETENTION = 86400.0  # seconds a delete stays visible to watchers (at least VERSION_RETENTION)
PRUNE_STEP = 10_000          # bucket entries examined per pruning step
KNOWN_KEYS_LIMIT = 200_000   # remembered (revision, version) pairs per bucket before the memory is reset
WRONG_LAST_SEQUENCE = 10071  # JetStream's error code for a failed compare-and-set
# A write's headers: a compare-and-set on the key's last revision (what kv.update(key,
# value, last=revision) sends), and a KV delete (a tombstone) for a delete; % revision.
CAS_HEADERS = b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: %d\r\n\r\n"
DELETE_HEADERS = b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: %d\r\nKV-Operation: DEL\r\n\r\n"


def bucket_name(name: str, table: Table) -> str:
    """The bucket of a WL table, for the WL called NAME."""
    encoded = re.sub(r"[^A-Za-z0-9_]", lambda m: "".join(f"-{b:02X}" for b in m.group().encode()), table.wl_name)
    return f"{name}_{encoded}"


_KEY_CHAR = re.compile(r"[^A-Za-z0-9_-]")


def _encode_char(m: re.Match) -> str:
    return "".join(f"={b:02X}" for b in m.group().encode())


def encode_key(table: Table, pk: dict) -> str:
    return key_encoder(table)(pk)


def key_encoder(table: Table):
    """encode_key for one table, its key columns looked up once."""
    names = [c.name for c in table.pk]
    sub = _KEY_CHAR.sub
    if len(names) == 1:
        (name,) = names
        return lambda pk: sub(_encode_char, pk[name]) or "="
    return lambda pk: ".".join([sub(_encode_char, pk[name]) or "=" for name in names])


def decode_key(table: Table, key: str) -> dict:
    tokens = key.split(".")
    if len(tokens) != len(table.pk):
        raise ValueError(f"key {key!r} does not have the {len(table.pk)} column(s) of {table.wl_name}'s key")
    return {c.name: "" if token == "=" else re.sub(
        rb"(?:=[0-9A-F]{2})+", lambda m: bytes.fromhex(m.group().replace(b"=", b"").decode()),
        token.encode()).decode() for c, token in zip(table.pk, tokens, strict=True)}


@dataclass
class Write:
    bucket: str
    key: str
    version: int
    payload: bytes
    delete: bool


@dataclass
class Walk:
    """A pull consumer over a bucket's entries, and the stream's last sequence read
    before it was made (entries past it came during the walk)."""
    stream: str
    consumer: str
    subscription: object
    last: int


@dataclass
class Connection:
    """One connection to the server and what is known through it."""
    nc: object
    js: object
    inbox: str
    loop: asyncio.AbstractEventLoop
    waiting: dict = field(default_factory=dict)   # reply token -> (callback, index in its round)
    buckets: dict = field(default_factory=dict)   # bucket -> its KeyValue, for buckets known to exist

    def close(self) -> None:
        """From the driver's thread (Sink.reset)."""
        if not self.nc.is_closed:
            asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(CONNECT_TIMEOUT)


class Publisher:
    """A connection of the sink's own, speaking the NATS client protocol directly,
    for the one hot path: a round of pipelined publishes (a batch's
    compare-and-set writes) and their JetStream acks.

    Why not nats-py here: its publish() builds each message's headers and
    command in Python and hands it to the event loop's thread, and each ack is
    parsed, wrapped in a Msg, queued to the subscription's task and passed to a
    callback; for a batch of 1,000 keys that was ~12 ms of the driver's CPU and
    ~20 ms of wall time, where a blocking socket in the driver's own thread,
    the commands joined into one write and the acks split from one buffer,
    takes ~3 ms and ~9 ms. Everything else (buckets, reads, walks, pruning)
    stays on nats-py.

    The connection is the one nats-py would open: TCP (TLS when the server
    requires it, with the default context, as nats-py does), the URL's user and
    password (or token, a user without a password). It never reconnects by
    itself; the sink drops it after any failure. It answers the server's PINGs
    when it reads (each round first reads what arrived while it was idle), and
    one closed by the server while idle is opened again before anything is sent."""

    def __init__(self, server: str, timeout: float):
        parts = urlsplit(server)
        self.host, self.port, self.timeout = parts.hostname or "localhost", parts.port or 4222, timeout
        self.user = unquote(parts.username) if parts.username is not None else None
        self.password = unquote(parts.password) if parts.password is not None else None
        self.inbox = f"_INBOX.{secrets.token_hex(11)}."
        self.tokens = itertools.count()
        self.buffer = bytearray()
        self.sock: socket.socket | None = None
        self.max_payload = 0
        self.connect()

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self.buffer = sock, bytearray()
            line = self._line()
            if not line.startswith(b"INFO "):
                raise ConnectionError(f"expected INFO from the server, got {line[:80]!r}")
            info = orjson.loads(line[5:])
            if info.get("tls_required"):
                sock = self.sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            options = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True, "protocol": 1,
                       "lang": "python", "version": "wlsync", "name": "wlsync"}
            if self.user is not None and self.password is not None:
                options.update(user=self.user, **{"pass": self.password})
            elif self.user is not None:
                options["auth_token"] = self.user
            sock.sendall(b"CONNECT " + orjson.dumps(options) + b"\r\nSUB " + self.inbox.encode() + b"* 1\r\nPING\r\n")
            while (line := self._line()) != b"PONG":   # the server answers PING once it accepted CONNECT
                if line.startswith(b"-ERR"):
                    raise ConnectionError(line[5:].decode(errors="replace").strip(" '"))
            self.max_payload = int(info.get("max_payload", 1024 * 1024))
            sock.settimeout(self.timeout)
        except BaseException:
            sock.close()
            self.sock = None
            raise

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 2]
        return line

    def _idle_input(self) -> bool:
        """Take in what arrived since the last round (PINGs, INFO); False when the
        server closed the connection meanwhile, or sent what no round awaits."""
        while True:
            while (end := self.buffer.find(b"\r\n")) >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 2]
                if line.startswith((b"MSG ", b"HMSG ")):
                    return False
                try:
                    self._control(line)
                except OSError:   # a PONG the closed connection cannot take; -ERR (ConnectionError)
                    return False
            if not ((isinstance(self.sock, ssl.SSLSocket) and self.sock.pending())
                    or select.select([self.sock], [], [], 0)[0]):
                return True
            try:
                self._fill()
            except OSError:   # ConnectionError too
                return False

    def _control(self, line: bytes) -> None:
        """A protocol line that is not an answer."""
        if line == b"PING":
            self.sock.sendall(b"PONG\r\n")
        elif line.startswith(b"-ERR"):
            raise ConnectionError(f"the server says {line[5:].decode(errors='replace').strip()}")
        # INFO (cluster changes), PONG, +OK: nothing to do

    def round(self, requests: list[tuple[str, bytes | None, bytes]]) -> list[tuple[str | None, bytes]]:
        """Publish every (subject, headers, payload) with a reply subject, in one
        write, then read the answers: (status, data) per request, status None for
        a plain answer (a JetStream ack) or a header status such as '503' (no
        stream for the subject)."""
        if not requests:
            return []
        if not self._idle_input():   # closed while idle: nothing is sent yet, so open it again
            self.close()
            self.connect()
        first = next(self.tokens)
        commands = []
        for index, (subject, headers, payload) in enumerate(requests, first):
            reply = f"{self.inbox}{index}"
            if headers is None:
                commands.append(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(), len(payload), payload))
            else:
                commands.append(b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
                    subject.encode(), reply.encode(), len(headers), len(headers) + len(payload), headers, payload))
        # Tokens of this round only: an answer left over from an earlier round that failed is skipped.
        self.tokens = itertools.count(first + len(requests))
        self.sock.sendall(b"".join(commands))
        answers: list = [None] * len(requests)
        missing = len(requests)
        buffer = self.buffer
        position = 0
        while missing:
            end = buffer.find(b"\r\n", position)
            if end < 0:
                del buffer[:position]
                position = 0
                self._fill()
                continue
            line = bytes(buffer[position:end])
            if line.startswith((b"MSG ", b"HMSG ")):
                fields = line.split(b" ")   # MSG subject sid [reply] size, HMSG subject sid [reply] hsize size
                size = int(fields[-1])
                start, stop = end + 2, end + 2 + size
                if stop + 2 > len(buffer):
                    del buffer[:position]
                    position = 0
                    self._fill()
                    continue
                status = None
                body = bytes(buffer[start:stop])
                if line.startswith(b"HMSG "):
                    header_size = int(fields[-2])
                    head, body = body[:header_size], body[header_size:]
                    status = head.split(b"\r\n", 1)[0][9:].split(b" ", 1)[0].decode() or None   # NATS/1.0 503
                index = int(fields[1].rsplit(b".", 1)[1]) - first
                if 0 <= index < len(answers) and answers[index] is None:
                    answers[index] = (status, body)
                    missing -= 1
                position = stop + 2
            else:
                position = end + 2
                self._control(line)
        del buffer[:position]
        return answers


class NatsSink(Sink):
    """NATS JetStream KV buckets as WL; see the module's docstring."""

    atomic_batches = False  # per key only: see the module's docstring

    def __init__(self, url: str):
        super().__init__(url)
        if nats is None:
            raise TargetError("a nats:// target needs the NATS client: pip install 'wlsync[nats]'")
        parts = urlsplit(url)
        self.wl = parts.path.strip("/")
        if not NAME_RE.fullmatch(self.wl):
            raise TargetError(f"nats target {url!r} needs a NAME of letters, digits and '-': nats://host:port/NAME")
        try:
            self.where = f"{parts.hostname or 'localhost'}:{parts.port or 4222}/{self.wl}"
        except ValueError as exc:
            raise TargetError(f"invalid nats target {url!r}: {exc}") from None
        self.server = urlunsplit(parts._replace(path="", query="", fragment=""))
        self.meta = f"{self.wl}-wlsync"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tables: dict[tuple[str, str], Table] = {}
        # (revision, version) of keys as last written or read, per bucket: safe when
        # stale (a write also needs the revision to match), so kept across connections.
        self.known: dict[str, dict[str, tuple[int, int]]] = {}
        self.tokens = itertools.count()
        self.batches = 0
        self.keep_deletes = TOMBSTONE_RETENTION
        self.pruned: dict[str, int] = {}   # bucket -> the first sequence its pruning has not examined
        self.unpruned: set[str] = set()    # buckets whose last pruning step stopped short of the cutoff
        self._publisher: Publisher | None = None   # the batches' writes (Publisher), opened with the connection

    @property
    def name(self) -> str:
        return f"NATS {self.where}"

    # -- the connection and its event loop ------------------------------------------------

    def _run(self, coro, timeout: float = 2 * REQUEST_TIMEOUT):
        """Run a coroutine on the sink's loop, from the driver's thread."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name="wlsync-nats", daemon=True).start()
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SinkError(f"{self.name}: no answer within {timeout:.0f} s") from None

    def open(self) -> Connection:
        return self._run(self._open(), 3 * CONNECT_TIMEOUT)

    async def _quiet(self, _exc) -> None:
        """nats-py reports connection errors through callbacks; the driver logs ours."""

    async def _open(self) -> Connection:
        # No background reconnecting: a lost connection closes the client, and the
        # next call opens a new one (max_reconnect_attempts also bounds the first
        # connection's attempts: 2 here).
        nc = await nats.connect(self.server, name="wlsync", connect_timeout=CONNECT_TIMEOUT, allow_reconnect=False,
                                max_reconnect_attempts=1, reconnect_time_wait=0.2, error_cb=self._quiet)
        conn = Connection(nc, nc.jetstream(timeout=REQUEST_TIMEOUT), nc.new_inbox() + ".", self.loop)
        async def reply(msg) -> None:
            waiter = conn.waiting.pop(msg.subject[len(conn.inbox):], None)
            if waiter is not None:
                answered, index = waiter
                answered(index, msg)

        try:
            await nc.subscribe(conn.inbox + "*", cb=reply)
        except BaseException:
            await nc.close()
            raise
        return conn

    @property
    def live(self) -> Connection:
        """The connection, a new one if the last one was lost."""
        if self._connection is not None and not self._connection.nc.is_connected:
            self.reset()
        return self.connection

    def close(self) -> None:
        self.reset()
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.loop = None

    async def _bucket(self, conn: Connection, bucket: str, create: bool = True):
        """The bucket's KeyValue, made first if ``create``; None if it does not exist."""
        if bucket not in conn.buckets:
            try:
                conn.buckets[bucket] = await conn.js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                if not create:
                    return None
                # Direct gets: any server of the stream answers a read, and cheaply.
                conn.buckets[bucket] = await conn.js.create_key_value(bucket=bucket, history=1, direct=True)
        return conn.buckets[bucket]

    async def _requests(self, conn: Connection, requests: list[tuple[str, bytes, dict | None]]) -> list:
        """Send every request, then await the answers: one round trip for all."""
        answers: list = [None] * len(requests)
        if not requests:
            return answers
        done = asyncio.get_running_loop().create_future()
        missing = [len(requests)]
        tokens = []

        def answered(index: int, msg) -> None:
            answers[index] = msg
            missing[0] -= 1
            if not missing[0] and not done.done():
                done.set_result(None)

        try:
            for index, (subject, payload, headers) in enumerate(requests):
                token = str(next(self.tokens))
                tokens.append(token)
                conn.waiting[token] = (answered, index)
                await conn.nc.publish(subject, payload, reply=conn.inbox + token, headers=headers)
            await asyncio.wait_for(done, REQUEST_TIMEOUT)
            return answers
        finally:
            for token in tokens:
                conn.waiting.pop(token, None)

    # -- reading and writing keys ---------------------------------------------------------

    async def _latest(self, conn: Connection, bucket: str, keys: list[str]) -> list[tuple[int, int, dict | None]]:
        """(revision, version, row) of each key: (0, 0, None) when absent, row None when deleted."""
        answers = await self._requests(conn, [(f"$JS.API.DIRECT.GET.KV_{bucket}",
                                               json.dumps({"last_by_subj": f"$KV.{bucket}.{key}"}).encode(), None)
                                              for key in keys])
        known = self.known.setdefault(bucket, {})
        result = []
        for key, msg in zip(keys, answers, strict=True):
            headers = msg.headers or {}
            status = headers.get("Status")
            if status == "404":
                known.pop(key, None)
                result.append((0, 0, None))
                continue
            if status:
                raise SinkError(f"{self.name}: reading {bucket} {key}: {status} {headers.get('Description', '')}")
            try:
                value = orjson.loads(msg.data)
                version, row = int(value["version"]), value.get("row")
            except (ValueError, TypeError, KeyError):
                version, row = 0, None   # not written by wlsync: any version may overwrite it
            if headers.get("KV-Operation") in ("DEL", "PURGE"):
                row = None
            revision = int(headers["Nats-Sequence"])
            known[key] = (revision, version)
            result.append((revision, version, row))
        return result

    @property
    def publisher(self) -> Publisher:
        """The connection the batches' writes go through, opened now if there is none."""
        if self._publisher is None:
            try:
                self._publisher = Publisher(self.server, REQUEST_TIMEOUT)
            except Exception as exc:
                raise SinkError(f"{self.name}: cannot connect: {error_text(exc)}") from exc
        return self._publisher

    def reset(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close()
        super().reset()

    def _write(self, conn: Connection, writes: list[Write]) -> None:
        """Compare-and-set each write against the key's revision; re-read and retry the conflicts."""
        for _ in range(CAS_ROUNDS):
            sending = []
            for w in writes:
                # A key never seen is assumed new (a create); if it is not, the
                # compare-and-set fails and the key is read.
                revision, version = self.known.setdefault(w.bucket, {}).get(w.key, (0, 0))
                if version < w.version:
                    headers = (DELETE_HEADERS if w.delete else CAS_HEADERS) % revision
                    sending.append((w, (f"$KV.{w.bucket}.{w.key}", headers, w.payload)))
            if not sending:
                return
            answers = self.publisher.round([request for _, request in sending])
            conflicts = []
            for (w, _), (status, data) in zip(sending, answers, strict=True):
                ack = orjson.loads(data) if data else {}
                error = ack.get("error") or ({"description": status or "no answer"} if "seq" not in ack else None)
                if error is None:
                    known = self.known[w.bucket]
                    if len(known) >= KNOWN_KEYS_LIMIT:
                        known.clear()
                    known[w.key] = (ack["seq"], w.version)
                elif error.get("err_code") == WRONG_LAST_SEQUENCE:
                    conflicts.append(w)
                else:
                    # A stream limit (size, bytes) refuses the data; anything else is the server's state.
                    raise SinkError(f"{self.name}: writing {w.bucket} {w.key}: {error.get('description')}",
                                    rejected=error.get("code") == 400)
            for bucket in {w.bucket for w in conflicts}:
                self._run(self._latest(conn, bucket, [w.key for w in conflicts if w.bucket == bucket]))
            writes = conflicts
        raise SinkError(f"{self.name}: keys kept changing during the batch (another writer?)")

    def _raise_max_version(self, conn: Connection, version: int) -> None:
        for _ in range(CAS_ROUNDS):
            revision, stored = self.known.setdefault(self.meta, {}).get("max_version", (0, 0))
            if stored >= version:
                return
            ((status, data),) = self.publisher.round([(f"$KV.{self.meta}.max_version", CAS_HEADERS % revision,
                                                        orjson.dumps({"version": version}))])
            ack = orjson.loads(data) if data else {}
            if "seq" in ack:
                self.known[self.meta]["max_version"] = (ack["seq"], version)
                return
            if (ack.get("error") or {}).get("err_code") != WRONG_LAST_SEQUENCE:
                raise SinkError(f"{self.name}: recording the highest version: {ack or status}")
            self._run(self._latest(conn, self.meta, ["max_version"]))
        raise SinkError(f"{self.name}: the highest version kept changing (other drivers?)")

    # -- walking a bucket, pruning tombstones ----------------------------------------------

    async def _walk(self, conn: Connection, bucket: str, start: int = 0) -> Walk | None:
        """A walk over the bucket's entries in sequence order, from ``start`` (0: the
        first), headers only; None when the stream holds nothing there. A pull
        consumer hands over one chunk per fetch, so memory stays bounded."""
        stream = f"KV_{bucket}"
        state = (await conn.js.stream_info(stream)).state
        if not state.messages or start > state.last_seq:
            return None
        consumer = f"wlsync-walk-{secrets.token_hex(8)}"
        api = nats.js.api
        policy = dict(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start) if start else \
            dict(deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)
        await conn.js.add_consumer(stream, config=api.ConsumerConfig(
            name=consumer, filter_subject=f"$KV.{bucket}.>", headers_only=True, ack_policy=api.AckPolicy.NONE,
            inactive_threshold=WALK_CONSUMER_IDLE, mem_storage=True, **policy))
        return Walk(stream, consumer, await conn.js.pull_subscribe_bind(consumer, stream=stream), state.last_seq)

    async def _end_walk(self, conn: Connection, walk: Walk) -> None:
        await walk.subscription.unsubscribe()
        await conn.js.delete_consumer(walk.stream, walk.consumer)

    async def _prune(self, conn: Connection, bucket: str) -> None:
        """One step of removing the tombstones older than ``keep_deletes``: at most
        PRUNE_STEP entries, from where the previous step (of any driver) stopped.

        Safe for fencing: a key's recorded version is forgotten only this long
        after its delete, and no batch writes WL that long after its claim (see
        VERSION_RETENTION). Each tombstone goes by a purge of its subject below
        the sequence after it, so a key written again meanwhile keeps its new
        entry. The stream's last entry is never purged: walks end on it."""
        mark = f"pruned.{bucket}"
        if bucket not in self.pruned:
            (msg,) = await self._requests(conn, [(f"$JS.API.DIRECT.GET.KV_{self.meta}",
                                                  json.dumps({"last_by_subj": f"$KV.{self.meta}.{mark}"}).encode(),
                                                  None)])
            self.pruned[bucket] = 0 if (msg.headers or {}).get("Status") else json.loads(msg.data)["sequence"]
        walk = await self._walk(conn, bucket, max(self.pruned[bucket], 1))
        if walk is None:
            self.unpruned.discard(bucket)
            return
        cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=self.keep_deletes)
        try:
            entries = await walk.subscription.fetch(PRUNE_STEP, timeout=REQUEST_TIMEOUT)
        except nats.errors.TimeoutError:   # nothing from there on: an operator removed the last entries
            entries = []
        finally:
            await self._end_walk(conn, walk)
        position, old, finished = self.pruned[bucket], [], not entries
        for msg in entries:
            sequence = msg.metadata.sequence.stream
            if sequence >= walk.last or msg.metadata.timestamp >= cutoff:
                finished = True
                break
            position = sequence + 1
            if (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
                old.append((msg.subject, sequence))
        answers = await self._requests(conn, [(f"$JS.API.STREAM.PURGE.{walk.stream}",
                                               json.dumps({"filter": subject, "seq": sequence + 1}).encode(), None)
                                              for subject, sequence in old])
        for msg in answers:
            if not json.loads(msg.data).get("success"):
                raise SinkError(f"{self.name}: pruning deletes of {bucket}: {msg.data.decode()}")
        (self.unpruned.discard if finished else self.unpruned.add)(bucket)
        if position > self.pruned[bucket]:
            self.pruned[bucket] = position
            await self._requests(conn, [(f"$KV.{self.meta}.{mark}", json.dumps({"sequence": position}).encode(),
                                         None)])

    # -- the Sink interface ---------------------------------------------------------------

    def ensure_tables(self, tables):
        async def ensure(conn):
            for table in tables.values():
                await self._bucket(conn, bucket_name(self.wl, table))
        with self.guard("preparing buckets"):
            self._run(ensure(self.live))
        self.tables.update(tables)

    def apply(self, rows, deadline):
        with self.guard("writing a batch"):
            writes = []
            for key, group in group_by_table(rows).items():
                table = self.tables[key]
                bucket = bucket_name(self.wl, table)
                encode = key_encoder(table)
                for row in group:
                    pk = encode(row["pk"])
                    if len(pk.encode()) > MAX_KEY_BYTES:
                        raise SinkError(f"{self.name}: the key of {table.wl_name} {row['pk']} is longer than "
                                        f"{MAX_KEY_BYTES} bytes once encoded", rejected=True)
                    if row["action"] == "delete":
                        value = {"version": row["version"]}
                    else:
                        value = {"version": row["version"], "row": row["row_data"]}
                    writes.append(Write(bucket, pk, row["version"], orjson.dumps(value),
                                        row["action"] == "delete"))
            conn = self.live
            publisher = self.publisher
            limit = publisher.max_payload - 4096   # headers and subject travel in the same message
            for w in writes:
                if len(w.payload) > limit:
                    raise SinkError(f"{self.name}: a row of {w.bucket} (key {w.key}) takes {len(w.payload)} "
                                    f"bytes, more than the server's max_payload ({publisher.max_payload}) allows",
                                    rejected=True)

            self.batches += 1
            pruning = ({w.bucket for w in writes} if self.batches % PRUNE_EVERY == 1 else set()) | self.unpruned
            buckets = {self.meta} | {w.bucket for w in writes}

            async def prepare():
                for bucket in buckets:
                    await self._bucket(conn, bucket)
                for bucket in sorted(pruning):
                    await self._prune(conn, bucket)
            if pruning or not buckets <= conn.buckets.keys():
                self._run(prepare(), max(1.0, deadline - time.monotonic()) + REQUEST_TIMEOUT)
            # max_version first: it must cover every version that a reader may see.
            self._raise_max_version(conn, max(r["version"] for r in rows))
            # Publishing is committing, key by key: this is the last moment to give up.
            check_deadline(deadline)
            self._write(conn, writes)

    def max_version(self):
        async def read(conn):
            if await self._bucket(conn, self.meta, create=False) is None:
                return 0
            ((_, version, _),) = await self._latest(conn, self.meta, ["max_version"])
            return version
        with self.guard("reading the highest version"):
            return self._run(read(self.live))

    def rows_by_key(self, table, pks):
        async def read(conn):
            bucket = bucket_name(self.wl, table)
            if await self._bucket(conn, bucket, create=False) is None:
                return [(0, 0, None)] * len(pks)
            return await self._latest(conn, bucket, [encode_key(table, pk) for pk in pks])
        with self.guard("reading rows"):
            found = self._run(read(self.live))
        return [None if row is None else {c.name: row.get(c.name) for c in table.columns} for _, _, row in found]

    def keys(self, table, chunk):
        # Not kv.keys() or a watcher: those end the listing at the first message whose
        # num_pending reads 0, and under concurrent writes the server's count can read
        # 0 early (nats-server#4824, nats.py#995), cutting the list short of keys that
        # never changed. The end here is the stream's last sequence, read before the
        # walk: a key live then and left alone until the walk ends sits at or below it,
        # and the consumer delivers in sequence order. (A key rewritten during the walk
        # moves past that end and may be missed, as in any listing of a live store.)
        bucket = bucket_name(self.wl, table)
        prefix = f"$KV.{bucket}."

        async def start(conn):
            if await self._bucket(conn, bucket, create=False) is None:
                return None   # a table this WL never had
            return await self._walk(conn, bucket)

        async def next_chunk(walk):
            """The next keys (tombstones left out), and whether the walk reached its end."""
            keys = []
            for msg in await walk.subscription.fetch(chunk, timeout=REQUEST_TIMEOUT):
                sequence = msg.metadata.sequence.stream
                if sequence <= walk.last and (msg.headers or {}).get("KV-Operation") not in ("DEL", "PURGE"):
                    keys.append(msg.subject[len(prefix):])
                if sequence >= walk.last:
                    return keys, True
            return keys, False

        with self.guard("listing keys"):
            conn = self.live
            walk = self._run(start(conn))
            if walk is None:
                return
            try:
                done = False
                while not done:
                    keys, done = self._run(next_chunk(walk))
                    if keys:
                        yield [decode_key(table, key) for key in keys]
            finally:
                if self._connection is conn and not conn.nc.is_closed:
                    self._run(self._end_walk(conn, walk))
