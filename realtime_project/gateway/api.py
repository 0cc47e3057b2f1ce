"""Server API: `publish(channel, data)`, `send_to_user(user_id, data)` and
`end_sessions(user_id, ...)`, sync and async.

Apps push to clients only through these. The payload is encoded once, here, at the
call site: a payload that is not JSON-serialisable raises `TypeError` and nothing is
sent. With Redis, one script call per batch gives each publication its channel's next
`seq`, stores it in history and delivers it to every gateway process (a PUBLISH on the
channel's Channels group over Redis pub/sub), atomically and in one round trip
(`history_redis.RedisHistory.publish`); a retry never publishes twice (idempotency
keys). In embedded mode the in-memory history and layer do the same in-process.

Sync callers (Celery tasks, views, admin actions) publish through one long-lived
event loop per process in a background thread, never `async_to_sync` per call: that
costs 2-9 ms of CPU per call and, with channels-redis, opens connections per loop and
breaks on closed loops (django/channels_redis#125, #332).
The loop lives in the process's runtime object (`runtime.PUBLISHER`), made afresh after
a fork (Celery prefork workers).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from django.db import transaction

from ..runtime import Slot
from .conf import gateway_settings
from .errors import GatewayError
from .history import Publication
from .history_redis import FencedOut
from .layer_messages import (
    BATCH_GROUP,
    batch_message,
    channel_group,
    encode,
    layer_prefix,
    publication_message,
    pubsub_channel,
    revoke_message,
    user_group,
    user_message,
)
from .namespaces import namespaces
from .protocol import ChannelName, encode_payload, parse_channel
from .runtime import PUBLISHER, get_history, server_loop, uses_memory_layer

__all__ = [
    "FencedOut",
    "aend_sessions",
    "apublish",
    "apublish_many",
    "asend_to_user",
    "current_fence",
    "end_sessions",
    "end_sessions_on_commit",
    "fenced",
    "publish",
    "publish_many",
    "publish_many_on_commit",
    "publish_on_commit",
    "send_to_user",
    "validate_channel",
]

logger = logging.getLogger("realtime.publish")

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


async def _publish_encoded(
    items: list[tuple[ChannelName, str]], key: str | None = None, fence: Fence | None = None
) -> list[Publication]:
    if not items:
        return []
    store = get_history()
    if hasattr(store, "publish"):  # Redis: the atomic, pipelined path
        return await _publish_redis(store, items, key, fence)
    return await _publish_memory(items, key, fence)


async def _send_user_encoded(user_id: int, payload: str) -> None:
    await _send_user_message(user_id, user_message(user_id, payload, time.time()))


async def _send_user_message(user_id: int, message: dict[str, Any]) -> None:
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


async def _on_target(coro: Coroutine[Any, Any, T]) -> T:
    target = _embedded_target()
    if target is not None and target is not asyncio.get_running_loop():
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, target))
    return await coro


def _encode_items(items: list[tuple[str, Any]]) -> list[tuple[ChannelName, str]]:
    return [(validate_channel(channel), encode_payload(data)) for channel, data in items]


# --- async API ----------------------------------------------------------------------


async def apublish(
    channel: str, data: Any, *, idempotency_key: str | None = None, fence: Fence | None = None
) -> Publication:
    """Publish `data` to `channel` from async code; returns its seq and epoch.

    Exactly-once from the caller's view: if it returns, the publication was stored and
    sent once; if it raises, retrying with the same `idempotency_key` never yields a
    second seq. `fence=(lease_key, token)` refuses the publication (`FencedOut`) unless
    the lease key in Redis holds exactly `token`; without it, the context's (`fenced()`).
    """
    fence = fence if fence is not None else _context_fence.get()
    (pub,) = await _on_target(_publish_encoded(_encode_items([(channel, data)]), idempotency_key, fence))
    return pub


async def apublish_many(
    items: list[tuple[str, Any]], *, idempotency_key: str | None = None, fence: Fence | None = None
) -> list[Publication]:
    """Publish many (channel, data) pairs at once: one Redis round trip for the whole
    batch (a price tick of 500 symbols), atomically. Each channel keeps the order of its
    items. Everything is validated and encoded before anything is sent."""
    fence = fence if fence is not None else _context_fence.get()
    return await _on_target(_publish_encoded(_encode_items(items), idempotency_key, fence))


async def asend_to_user(user_id: int, data: Any) -> None:
    """Send `data` to every connection of `user_id` on every gateway (channel `user`)."""
    payload = encode_payload(data)
    await _on_target(_send_user_encoded(user_id, payload))


async def aend_sessions(
    user_id: int, *, reason: str, session_key: str | None = None, token_key: str | None = None
) -> None:
    """End the user's sockets on every gateway: those opened with `session_key` (a Django
    session, and the tickets bought with it) or `token_key` (the tickets an API token
    bought), or every one when neither is given. Each gets `error` `unauthenticated`
    (`details.reason`) and closes with 4401 (docs/protocol.md "Sessions end")."""
    await _on_target(_send_user_message(user_id, _revoke(user_id, reason, session_key, token_key)))


def _revoke(user_id: int, reason: str, session_key: str | None, token_key: str | None) -> dict[str, Any]:
    from .credentials import SESSION, TOKEN, credential_id

    if session_key is not None and token_key is not None:
        raise ValueError("one credential at a time")
    credential = (
        credential_id(SESSION, session_key)
        if session_key is not None
        else credential_id(TOKEN, token_key)
        if token_key is not None
        else None
    )
    return revoke_message(user_id, credential, reason, time.time())


# --- sync API -----------------------------------------------------------------------


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError("publish()/send_to_user() called from async code: use await apublish()/asend_to_user()")
    loop = _embedded_target() or PUBLISHER.get().loop()
    return asyncio.run_coroutine_threadsafe(coro, loop).result(PUBLISH_TIMEOUT)


def publish(channel: str, data: Any, *, idempotency_key: str | None = None, fence: Fence | None = None) -> Publication:
    """Publish from sync code (Celery tasks, views, admin actions, shell); see `apublish`."""
    (pub,) = _run_sync(_publish_encoded(_encode_items([(channel, data)]), idempotency_key, fence))
    return pub


def publish_many(
    items: list[tuple[str, Any]], *, idempotency_key: str | None = None, fence: Fence | None = None
) -> list[Publication]:
    """`apublish_many` for sync code."""
    return _run_sync(_publish_encoded(_encode_items(items), idempotency_key, fence))


def publish_many_on_commit(
    items: list[tuple[str, Any]],
    *,
    using: str | None = None,
    idempotency_key: str | None = None,
    durable: bool = False,
) -> None:
    """`publish_many` after the current transaction commits (validated and encoded now);
    `durable`: through the outbox, as `publish_on_commit`."""
    _on_commit(_encode_items(items), idempotency_key, using, durable)


def send_to_user(user_id: int, data: Any) -> None:
    payload = encode_payload(data)
    _run_sync(_send_user_encoded(user_id, payload))


def publish_on_commit(
    channel: str, data: Any, *, using: str | None = None, idempotency_key: str | None = None, durable: bool = False
) -> None:
    """Publish after the current transaction commits (nothing if it rolls back).

    Validation and encoding happen now, so errors surface at the call site. The
    publication gets an idempotency key now, so its retries never publish it twice.
    `durable=True` (what a user must be told: notifications, wallet events) also writes
    it into the outbox in this transaction: if Redis is down at commit, or the process
    dies before publishing, the active feed process sends it later with the same key
    (`outbox.py`), exactly once.
    """
    _on_commit(_encode_items([(channel, data)]), idempotency_key, using, durable)


def _on_commit(encoded: list[tuple[ChannelName, str]], key: str | None, using: str | None, durable: bool) -> None:
    key = key or f"commit:{uuid.uuid4().hex}"
    if not durable:
        transaction.on_commit(lambda: _safe(lambda: _run_sync(_publish_encoded(encoded, key))), using=using)
        return
    from . import outbox

    outbox.add(encoded, key, using=using)

    def send() -> None:
        try:
            _run_sync(_publish_encoded(encoded, key))
        except Exception as exc:
            logger.warning(
                "durable publication %s failed (%s: %s); the outbox sends it later", key, type(exc).__name__, exc
            )
            return
        try:
            outbox.confirm(key, using=using)
        except Exception:  # the outbox sends it again with the same key: no duplicate
            logger.exception("durable publication %s sent but not confirmed in the outbox", key)

    transaction.on_commit(send, using=using)


def end_sessions(user_id: int, *, reason: str, session_key: str | None = None, token_key: str | None = None) -> None:
    """`aend_sessions` for sync code (views, signal receivers, admin actions)."""
    _run_sync(_send_user_message(user_id, _revoke(user_id, reason, session_key, token_key)))


def end_sessions_on_commit(
    user_id: int, *, reason: str, session_key: str | None = None, token_key: str | None = None
) -> None:
    """`end_sessions` once the current transaction commits (at once outside one)."""
    message = _revoke(user_id, reason, session_key, token_key)
    transaction.on_commit(lambda: _safe(lambda: _run_sync(_send_user_message(user_id, message))))


def _safe(fn: Any) -> None:
    # After commit the data is safe in the database; a failed push is logged, and
    # clients recover it from the database (durable channels) on resubscribe.
    try:
        fn()
    except Exception:
        logger.exception("publish after commit failed")
