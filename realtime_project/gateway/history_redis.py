"""Redis-backed publication history shared by every gateway and publisher.

Keys per channel (one hash tag, so a Redis Cluster keeps them on one shard):
`{prefix}:h:{<channel>}:e` epoch, `:s` last seq, `:l` the bounded log of `seq|payload`.
Append is one Lua script, so seq assignment, logging and trimming are atomic: two
concurrent publishers can never get the same seq or leave a hole. If the keys vanish
(flush, expiry) the next append starts a new epoch, whose first seq is 1.

`publish` is the production publication path (issue #10): one script call per batch
appends every publication to its channel's history **and** delivers it to the gateways
(a PUBLISH on the channel's Channels group over Redis pub/sub, in the message format of
`layer_messages`), in one round trip, atomically: a publication that got a seq was sent,
and one that was not sent got no seq. Each call carries an idempotency key, so a retry
after a lost reply returns the first call's result instead of publishing twice; and an
optional fencing token is checked against a lease key in the same step, so a publisher
that lost its lease cannot publish (the whole batch is refused).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from .history import AppendItem, Position, Publication, new_epoch

_APPEND = """
local epoch = redis.call('GET', KEYS[1])
if not epoch or redis.call('EXISTS', KEYS[2]) == 0 then
  -- No epoch, or the counter is gone (evicted): counting again in the same epoch
  -- would reuse seq numbers, so history is declared lost.
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
  redis.call('SET', KEYS[2], 0)
  redis.call('DEL', KEYS[3])
end
local seq = redis.call('INCR', KEYS[2])
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('RPUSH', KEYS[3], seq .. '|' .. ARGV[2])
  redis.call('LTRIM', KEYS[3], -size, -1)
else
  redis.call('DEL', KEYS[3])
end
local ttl = tonumber(ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return {epoch, seq}
"""

_POSITION = """
local epoch = redis.call('GET', KEYS[1])
local seq = redis.call('GET', KEYS[2])
if not epoch or not seq then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch, 'PX', tonumber(ARGV[2]))
  redis.call('SET', KEYS[2], 0, 'PX', tonumber(ARGV[2]))
  redis.call('DEL', KEYS[3])
  return {epoch, 0}
end
return {epoch, tonumber(seq)}
"""

_PUBLISH = """
-- KEYS: idempotency key, lease key, then (epoch, seq, log) per item.
-- ARGV: new epoch, ts, idempotency TTL ms, fence token ('' = none), item count,
--       then (payload, history size, TTL ms, pub/sub channel, channel) per item.
if ARGV[4] ~= '' then
  -- The lease's value is `<token>|<holder's client id>` (or a bare token): see lease.py.
  local holder = redis.call('GET', KEYS[2])
  holder = holder and (string.match(holder, '^(.*)|%d+$') or holder)
  if holder ~= ARGV[4] then
    return {'fenced', holder or ''}
  end
end
local prior = redis.call('GET', KEYS[1])
if prior then
  return {'duplicate', prior}
end
local ts = tonumber(ARGV[2])
local n = tonumber(ARGV[5])
local out = {}
for i = 0, n - 1 do
  local k = 3 + i * 3
  local a = 6 + i * 5
  local epoch = redis.call('GET', KEYS[k])
  if not epoch or redis.call('EXISTS', KEYS[k + 1]) == 0 then
    -- History lost (flushed, expired, evicted): a new epoch, counting from 1 again.
    epoch = ARGV[1]
    redis.call('SET', KEYS[k], epoch)
    redis.call('SET', KEYS[k + 1], 0)
    redis.call('DEL', KEYS[k + 2])
  end
  local seq = redis.call('INCR', KEYS[k + 1])
  local payload = ARGV[a]
  local size = tonumber(ARGV[a + 1])
  if size > 0 then
    redis.call('RPUSH', KEYS[k + 2], seq .. '|' .. payload)
    redis.call('LTRIM', KEYS[k + 2], -size, -1)
  else
    redis.call('DEL', KEYS[k + 2])
  end
  local ttl = tonumber(ARGV[a + 2])
  redis.call('PEXPIRE', KEYS[k], ttl)
  redis.call('PEXPIRE', KEYS[k + 1], ttl)
  redis.call('PEXPIRE', KEYS[k + 2], ttl)
  redis.call('PUBLISH', ARGV[a + 3], cmsgpack.pack({
    type = 'hub.message', channel = ARGV[a + 4], seq = seq, epoch = epoch, payload = payload, ts = ts}))
  out[#out + 1] = epoch .. ':' .. seq
end
local result = table.concat(out, ',')
redis.call('SET', KEYS[1], result, 'PX', tonumber(ARGV[3]))
return {'ok', result}
"""

#: (channel, payload JSON, history size, TTL seconds, pub/sub channel of its group).
PublishItem = tuple[str, str, int, float, str]


class FencedOut(Exception):
    """The publisher's fencing token is not the lease's current one: nothing was published."""

    def __init__(self, lease_key: str, token: str, holder: str) -> None:
        super().__init__(f"fencing token {token!r} is stale for lease {lease_key!r} (now held with {holder!r})")
        self.lease_key, self.token, self.holder = lease_key, token, holder


#: Connections per process and event loop, and how long a caller waits for one.
POOL_SIZE = 50
POOL_TIMEOUT = 10.0
#: TTL of an epoch created by a read (no publication yet); a publication extends it.
_READ_EPOCH_TTL_MS = 3_600_000


class RedisHistory:
    def __init__(self, url: str, prefix: str = "rt", client: Any | None = None) -> None:
        # redis-py's default pool raises past 100 connections instead of waiting; a burst
        # of publishes or a reconnect storm of `since` subscribes must queue instead.
        self._client: Any = client or aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url, decode_responses=True, max_connections=POOL_SIZE, timeout=POOL_TIMEOUT
            )
        )
        self._prefix = prefix
        self._append = self._client.register_script(_APPEND)
        self._position = self._client.register_script(_POSITION)
        self._publish = self._client.register_script(_PUBLISH)

    def _keys(self, channel: str) -> list[str]:
        base = f"{self._prefix}:h:{{{channel}}}"
        return [f"{base}:e", f"{base}:s", f"{base}:l"]

    async def append(self, channel: str, payload: str, *, size: int, ttl: float) -> Publication:
        epoch, seq = await self._append(
            keys=self._keys(channel), args=[new_epoch(), payload, int(size), int(ttl * 1000)]
        )
        return Publication(int(seq), str(epoch), payload)

    async def append_many(self, items: list[AppendItem]) -> list[Publication]:
        """Append to many channels in one round trip (a pipeline of the append script;
        each append stays atomic, and a channel's appends keep their order)."""
        if not items:
            return []
        pipe = self._client.pipeline(transaction=False)
        for channel, payload, size, ttl in items:
            await self._append(
                keys=self._keys(channel), args=[new_epoch(), payload, int(size), int(ttl * 1000)], client=pipe
            )
        results = await pipe.execute()
        return [
            Publication(int(seq), str(epoch), payload)
            for (epoch, seq), (_, payload, _, _) in zip(results, items, strict=True)
        ]

    async def publish(
        self,
        items: list[PublishItem],
        *,
        idempotency_key: str,
        idempotency_ttl: float,
        fence: tuple[str, str] | None = None,
        ts: float = 0.0,
    ) -> list[Publication]:
        """Append and deliver `items` atomically, in one round trip (see the module doc).

        Returns one Publication per item, in order; the same result again for a repeated
        `idempotency_key` (nothing is published twice). Raises `FencedOut` when `fence`
        (lease key, token) does not match the lease's current value.
        """
        if not items:
            return []
        lease_key, token = fence if fence is not None else ("", "")
        keys = [f"{self._prefix}:idem:{idempotency_key}", lease_key or f"{self._prefix}:nolease"]
        args: list[Any] = [new_epoch(), repr(ts), int(idempotency_ttl * 1000), token, len(items)]
        for channel, payload, size, ttl, pubsub_channel in items:
            keys += self._keys(channel)
            args += [payload, int(size), int(ttl * 1000), pubsub_channel, channel]
        status, value = await self._publish(keys=keys, args=args)
        if status == "fenced":
            raise FencedOut(lease_key, token, str(value))
        positions = str(value).split(",")
        if len(positions) != len(items):  # a reused idempotency key with another batch
            raise ValueError(f"idempotency key {idempotency_key!r} was used for a different batch")
        out = []
        for position, (_, payload, _, _, _) in zip(positions, items, strict=True):
            epoch, _, seq = position.rpartition(":")
            out.append(Publication(int(seq), epoch, payload))
        return out

    async def publish_raw(self, pubsub_channel: str, data: bytes) -> None:
        """One PUBLISH (a `send_to_user` message: no history)."""
        await self._client.publish(pubsub_channel, data)

    async def position(self, channel: str) -> Position:
        epoch, seq = await self._position(keys=self._keys(channel), args=[new_epoch(), _READ_EPOCH_TTL_MS])
        return Position(str(epoch), int(seq))

    async def range(self, channel: str, after_seq: int, upto_seq: int | None = None) -> list[Publication]:
        keys = self._keys(channel)
        pipe = self._client.pipeline(transaction=True)
        pipe.get(keys[0])
        pipe.lrange(keys[2], 0, -1)
        epoch, entries = await pipe.execute()
        if epoch is None:
            return []
        out: list[Publication] = []
        for entry in entries:
            seq_text, _, payload = entry.partition("|")
            seq = int(seq_text)
            if seq > after_seq and (upto_seq is None or seq <= upto_seq):
                out.append(Publication(seq, epoch, payload))
        return out

    async def latest(self, channel: str) -> Publication | None:
        keys = self._keys(channel)
        pipe = self._client.pipeline(transaction=True)
        pipe.get(keys[0])
        pipe.lindex(keys[2], -1)
        epoch, entry = await pipe.execute()
        if epoch is None or entry is None:
            return None
        seq_text, _, payload = entry.partition("|")
        return Publication(int(seq_text), epoch, payload)

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def close(self) -> None:
        await self._client.aclose()
