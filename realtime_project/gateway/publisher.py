"""The publish path under the gateway API: validated, encoded publications into history
and onto the channel layer, and the bridge that runs it for sync callers.

`api.py` is the door apps use; this module is what it and the durable outbox
(`outbox.py`) both send through, so the outbox depends on the path, not on the API
that writes into it. See `api.py` for the contract (encoding once, exactly-once with
idempotency keys, fencing) and the reasons for one publisher loop per process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from channels.layers import get_channel_layer

from ..runtime import Slot
from .conf import gateway_settings
from .errors import GatewayError
from .history import Publication
from .layer_messages import (
    BATCH_GROUP,
    batch_message,
    channel_group,
    encode,
    layer_prefix,
    publication_message,
    pubsub_channel,
    user_group,
    user_message,
)
from .namespaces import namespaces
from .protocol import ChannelName, encode_payload, parse_channel
from .runtime import PUBLISHER, get_history, server_loop, uses_memory_layer

#: A sync publish waits at most this long for Redis before raising TimeoutError.
PUBLISH_TIMEOUT = 10.0

T = TypeVar("T")


def validate_channel(channel: str) -> ChannelName:
    """Parse a publisher's channel name; raises ValueError for a bad or unknown one."""
    try:
        name = parse_channel(channel)
    except GatewayError as exc:
        raise ValueError(f"invalid channel {channel!r}: {exc.message}") from None
    if namespaces.get(name.namespace) is None:
        raise ValueError(f"unknown channel namespace {name.namespace!r} (registered: {namespaces.names()})")
    return name


def _history_limits(namespace: str) -> tuple[int, float]:
    ns = namespaces.get(namespace)
    size, ttl = (ns.history_size, ns.history_ttl) if ns is not None else (100, 3600.0)
    override = gateway_settings().history.get(namespace, {})
    return int(override.get("size", size)), float(override.get("ttl", ttl))


#: Embedded mode: one lock per channel (per event loop) around its history append and send.
_CHANNEL_LOCKS: Slot[dict[str, asyncio.Lock]] = Slot("gateway.channel_locks", dict, per_loop=True)


def _channel_lock(channel: str) -> asyncio.Lock:
    locks = _CHANNEL_LOCKS.get()
    lock = locks.get(channel)
    if lock is None:
        if len(locks) > 10_000:  # bounded: drop idle locks
            for key in [k for k, v in locks.items() if not v.locked()]:
                del locks[key]
        lock = locks[channel] = asyncio.Lock()
    return lock


#: How long Redis remembers an idempotency key given by the caller (a retry within this
#: window returns the first result), and one made up for a single call (which only its
#: own retries reuse).
IDEMPOTENCY_TTL = 24 * 3600.0
AUTO_IDEMPOTENCY_TTL = 600.0
#: A publish whose connection fails is retried this many times, with the same key.
PUBLISH_RETRIES = 2
RETRY_DELAYS = (0.05, 0.25)

#: (lease key, fencing token): the publication is refused unless the lease key holds
#: exactly this token (a leased singleton that lost its lease cannot publish).
Fence = tuple[str, str]

#: The fence of publications that give none: a leased process (the feed runner) sets it
#: before it starts its tasks, which inherit it (asyncio copies the context into every
#: task), so every publication they make is refused once the lease is lost.
_context_fence: ContextVar[Fence | None] = ContextVar("publication_fence", default=None)


@contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    """Publications made in this context (and tasks created in it) carry `fence`."""
    token = _context_fence.set(fence)
    try:
        yield
    finally:
        _context_fence.reset(token)


def current_fence() -> Fence | None:
    return _context_fence.get()


def _layer_prefix() -> str:
    from django.conf import settings

    return layer_prefix(getattr(settings, "CHANNEL_LAYERS", {}))


async def _publish_redis(
    store: Any, items: list[tuple[ChannelName, str]], key: str | None, fence: Fence | None
) -> list[Publication]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    prefix = _layer_prefix()
    batch = []
    for name, payload in items:
        size, ttl = _history_limits(name.namespace)
        batch.append((name.name, payload, size, ttl, pubsub_channel(prefix, channel_group(name.name))))
    idem_key, idem_ttl = (f"k:{key}", IDEMPOTENCY_TTL) if key else (f"a:{uuid.uuid4().hex}", AUTO_IDEMPOTENCY_TTL)
    attempt = 0
    while True:
        try:
            return list(
                await store.publish(
                    batch, idempotency_key=idem_key, idempotency_ttl=idem_ttl, fence=fence, ts=time.time()
                )
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # The script runs whole or not at all, but its reply may be lost with the
            # connection: the retry carries the same key, so it returns the first result
            # instead of publishing again (issue #10, fault B).
            if attempt >= PUBLISH_RETRIES:
                exc.add_note(f"publication idempotency key: {key or '(none given)'}; retry with it to be sure")
                raise
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1


#: Embedded mode: idempotency keys remembered by this process (bounded, oldest first out).
_MEMORY_RESULTS: Slot[OrderedDict[str, list[Publication]]] = Slot("gateway.memory_results", OrderedDict)
_MEMORY_KEYS = 10_000


async def _publish_memory(
    items: list[tuple[ChannelName, str]], key: str | None, fence: Fence | None
) -> list[Publication]:
    """Embedded mode: in-memory history and layer, one process (no leases to fence)."""
    if fence is not None:
        raise ValueError("fencing tokens need the Redis store (REALTIME['HISTORY_REDIS_URL'])")
    memory_results = _MEMORY_RESULTS.get()
    if key is not None and key in memory_results:
        return list(memory_results[key])
    appends = []
    for name, payload in items:
        size, ttl = _history_limits(name.namespace)
        appends.append((name.name, payload, size, ttl))
    async with AsyncExitStack() as stack:
        for channel in sorted({name.name for name, _ in items}):  # a fixed order: no deadlock
            await stack.enter_async_context(_channel_lock(channel))
        pubs = await get_history().append_many(appends)
        batch = [(name.name, pub) for (name, _), pub in zip(items, pubs, strict=True)]
        if len(batch) == 1:
            channel, pub = batch[0]
            await get_channel_layer().group_send(channel_group(channel), publication_message(channel, pub, time.time()))
        else:
            await get_channel_layer().group_send(BATCH_GROUP, batch_message(batch, time.time()))
    if key is not None:
        memory_results[key] = pubs
        while len(memory_results) > _MEMORY_KEYS:
            memory_results.popitem(last=False)
    return pubs


async def publish_encoded(
    items: list[tuple[ChannelName, str]], key: str | None = None, fence: Fence | None = None
) -> list[Publication]:
    """Publish validated, encoded items as one batch (Redis script or in-memory)."""
    if not items:
        return []
    store = get_history()
    if hasattr(store, "publish"):  # Redis: the atomic, pipelined path
        return await _publish_redis(store, items, key, fence)
    return await _publish_memory(items, key, fence)


async def send_user_encoded(user_id: int, payload: str) -> None:
    """Send an encoded payload to every connection of `user_id` (channel `user`)."""
    await send_user_message(user_id, user_message(user_id, payload, time.time()))


async def send_user_message(user_id: int, message: dict[str, Any]) -> None:
    """Put a layer message on the user's group (Redis pub/sub, or the in-memory layer)."""
    store = get_history()
    if hasattr(store, "publish_raw"):
        await store.publish_raw(pubsub_channel(_layer_prefix(), user_group(user_id)), encode(message))
        return
    await get_channel_layer().group_send(user_group(user_id), message)


def _embedded_target() -> asyncio.AbstractEventLoop | None:
    """In embedded mode the in-memory layer lives on the server's loop: publish there."""
    if uses_memory_layer():
        return server_loop()
    return None


async def on_target(coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` on the loop that must run it (embedded mode: the server's)."""
    target = _embedded_target()
    if target is not None and target is not asyncio.get_running_loop():
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, target))
    return await coro


def encode_items(items: list[tuple[str, Any]]) -> list[tuple[ChannelName, str]]:
    """Validate and encode (channel, data) pairs; raises before anything is sent."""
    return [(validate_channel(channel), encode_payload(data)) for channel, data in items]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` for sync code, on the process's publisher loop (or the server's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError("publish()/send_to_user() called from async code: use await apublish()/asend_to_user()")
    loop = _embedded_target() or PUBLISHER.get().loop()
    return asyncio.run_coroutine_threadsafe(coro, loop).result(PUBLISH_TIMEOUT)
