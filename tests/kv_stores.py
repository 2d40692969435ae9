"""Redis and NATS WLs for the contract suite (tests/conftest.py, STORES): a fresh,
empty target per test, removed at teardown, and the outages the suite puts them through."""
from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

REDIS_DB = 10  # this suite's Redis db (10-13 are the tests'); each test a key prefix of its own
NATS_PREFIX = "wlsynctestkv2"


def own_name(request) -> str:
    """The test's MDB database name, in the characters a NATS NAME allows."""
    return re.sub(r"[^A-Za-z0-9-]", "-", request.getfixturevalue("mdb").info.dbname)


# -- Redis ---------------------------------------------------------------------------------

def redis_admin(target: str):
    """A client of the target's db as the default user (not the target's own)."""
    import redis
    parts = urlsplit(target)
    return redis.Redis(host=parts.hostname, port=parts.port or 6379, db=int(parts.path.strip("/") or 0),
                       decode_responses=True)


def redis_prefix(target: str) -> str:
    return dict(q.split("=", 1) for q in urlsplit(target).query.split("&"))["prefix"]


def redis_drop(target: str) -> None:
    """Every key under the target's prefix (it holds no glob characters)."""
    with redis_admin(target) as admin:
        keys = list(admin.scan_iter(match=redis_prefix(target) + "*", count=1000))
        for start in range(0, len(keys), 1000):
            admin.delete(*keys[start:start + 1000])


def redis_wl(request) -> Iterator[str]:
    """A key prefix and an ACL user of the test's own (allowed only that prefix), so that
    an outage can refuse this WL's connections without touching anyone else's."""
    name = f"{NATS_PREFIX}-{own_name(request)}"
    prefix = f"{NATS_PREFIX}:{own_name(request)}:"
    target = f"redis://{name}:secret@127.0.0.1:6379/{REDIS_DB}?prefix={prefix}"
    with redis_admin(target) as admin:
        admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">secret", f"~{prefix}*", "+@all")
    redis_drop(target)
    yield target
    redis_drop(target)
    with redis_admin(target) as admin:
        admin.execute_command("ACL", "DELUSER", name)


def redis_refusing(target: str) -> Callable[[], None]:
    """The target's ACL user is switched off and its connections killed (CLIENT KILL),
    so that WL refuses new connections until the returned function runs."""
    user = urlsplit(target).username
    with redis_admin(target) as admin:
        admin.execute_command("ACL", "SETUSER", user, "off")
        admin.execute_command("CLIENT", "KILL", "USER", user)

    def end() -> None:
        with redis_admin(target) as admin:
            admin.execute_command("ACL", "SETUSER", user, "on")
    return end


# -- NATS ----------------------------------------------------------------------------------

def nats_server_and_name(target: str) -> tuple[str, str]:
    server, name = target.rsplit("/", 1)
    return server, name


def nats_drop(target: str) -> None:
    """Every bucket (KV stream) of the WL called NAME."""
    import nats

    async def drop():
        server, name = nats_server_and_name(target)
        nc = await nats.connect(server)
        try:
            js = nc.jetstream()
            for stream in await js.streams_info():
                if stream.config.name.startswith(f"KV_{name}_") or stream.config.name == f"KV_{name}-wlsync":
                    await js.delete_stream(stream.config.name)
        finally:
            await nc.close()
    asyncio.run(drop())


def nats_wl(request) -> Iterator[str]:
    target = f"nats://127.0.0.1:4222/{NATS_PREFIX}-{own_name(request)}"
    nats_drop(target)
    yield target
    nats_drop(target)


def connections_of(pid: int, peer: str) -> set[str]:
    """The local addresses (host:port) of process pid's TCP connections to peer (host:port)."""
    listing = subprocess.run(["ss", "-tnpH", "dst", peer], capture_output=True, text=True, check=True).stdout
    return {line.split()[3] for line in listing.splitlines() if f"pid={pid}," in line}


def nats_connections_killed(target: str) -> Callable[[], None]:
    """The TCP connections to the NATS server of every process whose command line
    names this target (the drivers) are aborted (ss -K); new ones are accepted at once."""
    parts = urlsplit(target)
    peer = f"{parts.hostname}:{parts.port or 4222}"
    listing = subprocess.run(["ss", "-tnpH", "dst", peer], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        local = line.split()[3]
        for pid in re.findall(r"pid=(\d+)", line):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if target.encode() in command:
                subprocess.run(["ss", "-K", "-tn", "dst", peer, "src", local], capture_output=True, check=True)
    return lambda: None
