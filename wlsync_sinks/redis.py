"""Redis as WL: ``redis://host:port/db`` (``rediss://`` for TLS), optionally
``?prefix=...`` (default ``wlsync:``) so that several WLs can share one database.

Layout, for a WL table T (``public.movies`` is ``movies``, ``app.cast`` is
``app.cast``; in T, ``%`` is written ``%25`` and ``:`` ``%3A``, so the ``:`` after
T always ends it) and a key whose canonical text (``key_text``) is K, e.g.
``{"id":"7"}``::

    PREFIX T:K           hash: one field per column, the value as PostgreSQL text;
                         a NULL column has no field
    PREFIX T:keys        set of every K that T holds (for verify)
    PREFIX T:versions    hash K -> the version that last wrote K, live or deleted
    PREFIX T:deleted     sorted set K -> when K was deleted (unix time), for pruning
    PREFIX tables        set of the "PREFIX T:" bases, for pruning
    PREFIX max_version   the highest version ever applied

So ``HGETALL 'wlsync:movies:{"id":"7"}'`` reads a row. An upsert sets the row's
non-NULL columns and removes its NULL ones; columns that MDB no longer has stay,
no longer written (as in the SQL sinks).

A batch is one Lua script (EVALSHA), and Redis runs a script alone: no reader
sees half a batch, and the fencing check (a key is written only by a version
newer than T:versions holds) happens inside it. Redis does not undo a script
that fails half-way, so the script first checks every key it will write and
refuses the whole batch before writing anything when one holds a value of
another type (someone wrote there): that is the one kind of data this sink
rejects; the driver then isolates that key as a dead letter. Redis refuses a
script that may write while it is out of memory before the script starts.

Only a standalone Redis (or a primary) is supported: the script touches keys of
several tables, which Redis Cluster would spread over slots.

Connections: the client is made on first use and dropped after any failure that
is not Redis refusing the data (``Sink.guard``), so the next call reconnects. It
never retries a command by itself: the driver retries the batch (harmless, since
a batch applied again changes nothing), and the log says that WL failed.
"""
from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from wlsync_sinks import (PRUNE_EVERY, VERSION_RETENTION, Sink, Table, TargetError, check_deadline, key_text,
                          newest_per_key, redact)

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # the redis extra is optional
    redis = None

DEFAULT_PREFIX = "wlsync:"

# ARGV[1]: the max_version key; ARGV[2]: the batch as JSON (cjson decodes it in
# C, far cheaper than thousands of ARGV entries): [[base "PREFIX T:", [[K,
# version, "u" or "d", [column, value, ...] of the non-NULL columns, [the NULL
# columns]], ...]], ...]. Versions travel as decimal strings without leading
# zeros and are compared as such, so a bigint never loses precision in Lua.
APPLY_LUA = """#!lua
local function newer(a, b)
    if #a ~= #b then return #a > #b end
    return a > b
end
local function expect(key, kind)
    local t = redis.call('TYPE', key).ok
    if t ~= 'none' and t ~= kind then
        return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. kind)
    end
end
local err = expect(ARGV[1], 'string')
if err then return err end
local batch = cjson.decode(ARGV[2])
for _, group in ipairs(batch) do
    local base = group[1]
    for _, pair in ipairs({{'keys', 'set'}, {'versions', 'hash'}, {'deleted', 'zset'}}) do
        err = expect(base .. pair[1], pair[2])
        if err then return err end
    end
    for _, row in ipairs(group[2]) do
        err = expect(base .. row[1], 'hash')
        if err then return err end
    end
end
local now = redis.call('TIME')[1]
local written, top = 0, redis.call('GET', ARGV[1]) or '0'
for _, group in ipairs(batch) do
    local base = group[1]
    for _, row in ipairs(group[2]) do
        local k, v = row[1], row[2]
        local old = redis.call('HGET', base .. 'versions', k)
        if not old or newer(v, old) then
            redis.call('HSET', base .. 'versions', k, v)
            if row[3] == 'd' then
                redis.call('DEL', base .. k)
                redis.call('SREM', base .. 'keys', k)
                redis.call('ZADD', base .. 'deleted', now, k)
            else
                redis.call('HSET', base .. k, unpack(row[4]))
                if #row[5] > 0 then redis.call('HDEL', base .. k, unpack(row[5])) end
                redis.call('SADD', base .. 'keys', k)
                redis.call('ZREM', base .. 'deleted', k)
            end
            if newer(v, top) then top = v end
            written = written + 1
        end
    end
end
redis.call('SET', ARGV[1], top)
return written
"""

# ARGV: the tables set, the cutoff (unix time), the most keys to prune per table.
PRUNE_LUA = """#!lua
local pruned = 0
for _, base in ipairs(redis.call('SMEMBERS', ARGV[1])) do
    local gone = redis.call('ZRANGE', base .. 'deleted', '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, ARGV[3])
    if #gone > 0 then
        redis.call('HDEL', base .. 'versions', unpack(gone))
        redis.call('ZREM', base .. 'deleted', unpack(gone))
        pruned = pruned + #gone
    end
end
return pruned
"""

# Replies that mean the server's state, not our data: retry the batch later.
TRANSIENT_REPLIES = ("OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "CLUSTERDOWN", "TRYAGAIN",
                     "NOSCRIPT")


def table_base(prefix: str, table: Table) -> str:
    return prefix + table.wl_name.replace("%", "%25").replace(":", "%3A") + ":"


class RedisSink(Sink):
    """Redis as WL; see the module's docstring for the layout."""

    def __init__(self, url: str):
        super().__init__(url)
        if redis is None:
            raise TargetError("a redis:// target needs the redis client: pip install 'wlsync[redis]'")
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        self.prefix = dict(query).get("prefix", DEFAULT_PREFIX)
        self.plain_url = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "prefix"])))
        if not re.fullmatch(r"/?[0-9]*", parts.path):   # redis-py would quietly use db 0
            raise TargetError(f"invalid Redis target {redact(url)!r}: the database is a number, "
                              "e.g. redis://127.0.0.1:6379/0")
        try:
            # Parses the URL (host, port, db, options) and builds a connection, without connecting.
            pool = redis.connection.ConnectionPool.from_url(self.plain_url)
            pool.make_connection()
            pool.disconnect()
        except ValueError as exc:
            raise TargetError(f"invalid Redis target {redact(url)!r}: {exc}") from None
        except TypeError as exc:   # an option the client does not know
            raise TargetError(f"invalid Redis target {redact(url)!r}: {exc}; wlsync's own option is "
                              "?prefix=P") from None
        self.tables: dict[tuple[str, str], Table] = {}
        self.batches = 0

    @property
    def name(self) -> str:
        parts = urlsplit(self.url)
        where = f"Redis {parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"
        return where if self.prefix == DEFAULT_PREFIX else f"{where} (prefix {self.prefix})"

    def open(self):
        client = redis.Redis.from_url(self.plain_url, decode_responses=True, socket_timeout=10,
                                      socket_connect_timeout=5, retry=Retry(NoBackoff(), 0), client_name="wlsync")
        client.ping()
        client.wlsync_apply = client.register_script(APPLY_LUA)
        client.wlsync_prune = client.register_script(PRUNE_LUA)
        return client

    def is_rejection(self, exc):
        return isinstance(exc, redis.ResponseError) and not str(exc).startswith(TRANSIENT_REPLIES)

    def ensure_tables(self, tables):
        with self.guard("preparing tables"):
            self.connection.sadd(self.prefix + "tables", *(table_base(self.prefix, t) for t in tables.values()))
        self.tables.update(tables)

    def apply(self, rows, deadline):
        with self.guard("writing a batch"):
            batch = []
            for key, group in newest_per_key(rows).items():
                encoded = []
                for k, row in group.items():
                    if row["action"] == "delete":
                        encoded.append([k, str(row["version"]), "d", [], []])
                    else:
                        data = row["row_data"]
                        encoded.append([k, str(row["version"]), "u",
                                        [x for name, value in data.items() if value is not None
                                         for x in (name, value)],
                                        [name for name, value in data.items() if value is None]])
                batch.append([table_base(self.prefix, self.tables[key]), encoded])
            args = [self.prefix + "max_version", json.dumps(batch, ensure_ascii=False, separators=(",", ":"))]
            client = self.connection
            check_deadline(deadline)  # the script commits as it runs: the last moment to give up
            client.wlsync_apply(args=args)
            self.batches += 1
            if self.batches % PRUNE_EVERY == 1:
                client.wlsync_prune(args=[self.prefix + "tables", time.time() - VERSION_RETENTION, 10000])

    def max_version(self):
        with self.guard("reading the highest version"):
            return int(self.connection.get(self.prefix + "max_version") or 0)

    def rows_by_key(self, table, pks):
        base = table_base(self.prefix, table)
        with self.guard("reading rows"):
            pipe = self.connection.pipeline(transaction=False)
            for pk in pks:
                pipe.hgetall(base + key_text(pk))
            found = pipe.execute()
        return [{c.name: fields.get(c.name) for c in table.columns} if fields else None for fields in found]

    def keys(self, table, chunk):
        # SSCAN walks the set a cursor step at a time, so memory stays bounded by the
        # chunk; it returns a member twice only when the set is resized during the
        # walk, and verify copes with that (remembering every member to drop repeats
        # would hold the whole table's keys in memory).
        batch: dict[str, dict] = {}
        with self.guard("listing keys"):
            for member in self.connection.sscan_iter(table_base(self.prefix, table) + "keys", count=chunk):
                batch[member] = json.loads(member)
                if len(batch) == chunk:
                    yield list(batch.values())
                    batch = {}
        if batch:
            yield list(batch.values())
