"""Redis-backed publication history shared by every gateway and publisher.

Keys per channel (one hash tag, so a Redis Cluster keeps them on one shard):
`{prefix}:h:{<channel>}:e` epoch, `:s` last seq, `:l` the bounded log of `seq|payload`.
Append is one Lua script, so seq assignment, logging and trimming are atomic: two
concurrent publishers can never get the same seq or leave a hole. If the keys vanish
(flush, expiry) the next append starts a new epoch.
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
