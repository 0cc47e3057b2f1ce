"""Presence across gateways, in Redis with TTLs so a dead gateway's entries expire.

Every gateway process refreshes, each `PRESENCE_TTL / 3` seconds:
- `{prefix}:presence:gateways`  ZSET gateway id -> expiry (unix seconds);
- `{prefix}:presence:gw:{id}`   JSON stats (connections, users, channels), with TTL;
- `{prefix}:presence:gw:{id}:u` HASH user id -> connection count, with TTL.
A killed gateway stops refreshing: its keys expire and readers prune its ZSET entry.
In embedded mode (no Redis) presence is this process's own registry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..runtime import Slot
from .conf import gateway_settings

if TYPE_CHECKING:
    from .hub import Hub

logger = logging.getLogger("realtime.presence")

#: After a connection change, wait this long before refreshing (a reconnect storm
#: becomes one write per second, not one per connection).
PRESENCE_DEBOUNCE = 1.0


def _new_client() -> Any:
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(gateway_settings().history_redis_url, decode_responses=True)


#: One Redis client per event loop (redis-py's asyncio connections belong to their loop),
#: kept in the runtime object: a new loop never gets a closed loop's client.
CLIENT: Slot[Any] = Slot("gateway.presence_client", _new_client, per_loop=True)


def _client() -> Any:
    return CLIENT.get()


def _keys(gateway_id: str) -> tuple[str, str, str]:
    prefix = gateway_settings().key_prefix
    return f"{prefix}:presence:gateways", f"{prefix}:presence:gw:{gateway_id}", f"{prefix}:presence:gw:{gateway_id}:u"


async def publish_presence(hub: Hub) -> None:
    settings = gateway_settings()
    ttl = settings.presence_ttl
    zkey, stats_key, users_key = _keys(settings.gateway_id)
    users = {str(uid): len(hub.connections.connections_of(uid)) for uid in hub.connections.users()}
    pipe = _client().pipeline(transaction=True)
    pipe.zadd(zkey, {settings.gateway_id: time.time() + ttl})
    pipe.set(stats_key, json.dumps({**hub.stats(), "ts": time.time()}), ex=max(1, int(ttl)))
    pipe.delete(users_key)
    if users:
        pipe.hset(users_key, mapping=users)
        pipe.expire(users_key, max(1, int(ttl)))
    await pipe.execute()


async def withdraw(gateway_id: str | None = None) -> None:
    """Remove this gateway's entries at once (clean shutdown)."""
    settings = gateway_settings()
    if not settings.history_redis_url:
        return
    zkey, stats_key, users_key = _keys(gateway_id or settings.gateway_id)
    pipe = _client().pipeline(transaction=True)
    pipe.zrem(zkey, gateway_id or settings.gateway_id)
    pipe.delete(stats_key, users_key)
    await pipe.execute()


async def presence_loop(hub: Hub) -> None:
    """Refresh presence every TTL/3, and within PRESENCE_DEBOUNCE of a connection change."""
    interval = max(0.5, gateway_settings().presence_ttl / 3)
    failing = False
    while True:
        try:
            await publish_presence(hub)
            if failing:
                logger.info("presence updates resumed")
            failing = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not failing:  # the hub logs the outage as an error; this is a consequence
                logger.info("presence update failed: %s", exc)
            failing = True
        hub.presence_changed.clear()
        try:
            async with asyncio.timeout(interval):
                await hub.presence_changed.wait()
            await asyncio.sleep(PRESENCE_DEBOUNCE)  # coalesce a burst of (dis)connections
        except TimeoutError:
            pass


async def live_gateways() -> list[str]:
    zkey = f"{gateway_settings().key_prefix}:presence:gateways"
    client = _client()
    await client.zremrangebyscore(zkey, "-inf", time.time())
    return list(await client.zrange(zkey, 0, -1))


async def cluster_totals() -> dict[str, Any]:
    """Connections and users across live gateways (this process only when embedded)."""
    settings = gateway_settings()
    if not settings.history_redis_url:
        from .runtime import all_hubs

        hubs = all_hubs()
        return {
            "gateways": 1,
            "connections": sum(len(h.connections) for h in hubs),
            "users": len({u for h in hubs for u in h.connections.users()}),
        }
    gateways = await live_gateways()
    total = 0
    users: set[str] = set()
    client = _client()
    for gid in gateways:
        _, stats_key, users_key = _keys(gid)
        raw = await client.get(stats_key)
        if raw:
            total += int(json.loads(raw).get("connections", 0))
        users.update(await client.hkeys(users_key))
    return {"gateways": len(gateways), "connections": total, "users": len(users)}


async def user_connections(user_id: int) -> int:
    """How many connections `user_id` has on all live gateways."""
    settings = gateway_settings()
    if not settings.history_redis_url:
        from .runtime import all_hubs

        return sum(len(h.connections.connections_of(user_id)) for h in all_hubs())
    client = _client()
    total = 0
    for gid in await live_gateways():
        count = await client.hget(_keys(gid)[2], str(user_id))
        total += int(count or 0)
    return total


def online_user_ids(user_ids: Iterable[int] | None = None) -> set[int]:
    """Users with at least one open connection on a live gateway, from sync code (Celery
    tasks deciding whether a notification needs Web Push or email). `user_ids` narrows
    the answer (one HMGET per gateway); None asks for everyone (one HKEYS per gateway).

    Embedded mode: this process's hubs (eager tasks run in the server process).
    """
    wanted = None if user_ids is None else [int(u) for u in user_ids]
    settings = gateway_settings()
    if not settings.history_redis_url:
        from .runtime import all_hubs

        local = {u for h in all_hubs() for u in h.connections.users()}
        return local if wanted is None else local & set(wanted)
    if wanted is not None and not wanted:
        return set()
    import redis

    client = redis.Redis.from_url(settings.history_redis_url, decode_responses=True, socket_timeout=5)
    try:
        zkey = f"{settings.key_prefix}:presence:gateways"
        client.zremrangebyscore(zkey, "-inf", time.time())
        online: set[int] = set()
        for gid in client.zrange(zkey, 0, -1):
            users_key = _keys(str(gid))[2]
            if wanted is None:
                online.update(int(u) for u in client.hkeys(users_key))
            else:
                counts = client.hmget(users_key, [str(u) for u in wanted])
                online.update(u for u, c in zip(wanted, counts, strict=True) if c and int(c) > 0)
        return online
    finally:
        client.close()
