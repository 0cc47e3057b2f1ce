"""Server API: `publish(channel, data)` and `send_to_user(user_id, data)`, sync and async.

Apps push to clients only through these. The payload is encoded once, here, at the
call site: a payload that is not JSON-serialisable raises `TypeError` and nothing is
sent. Each publication gets its channel's next `seq` from the history store, then one
`group_send` reaches one hub per gateway process.

Sync callers (Celery tasks, views, admin actions) publish through one long-lived
event loop per process in a background thread, never `async_to_sync` per call: that
costs 2-9 ms of CPU per call and, with channels-redis, opens connections per loop and
breaks on closed loops (django/channels_redis#125, #332; DESIGN.md measured facts).
The thread is recreated after fork (Celery prefork workers).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import weakref
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from django.db import transaction

from .conf import gateway_settings
from .errors import GatewayError
from .history import Publication
from .layer_messages import BATCH_GROUP, batch_message, channel_group, publication_message, user_group, user_message
from .namespaces import namespaces
from .protocol import ChannelName, encode_payload, parse_channel
from .runtime import get_history, server_loop, uses_memory_layer

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


_channel_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _channel_lock(channel: str) -> asyncio.Lock:
    locks = _channel_locks.setdefault(asyncio.get_running_loop(), {})
    lock = locks.get(channel)
    if lock is None:
        if len(locks) > 10_000:  # bounded: drop idle locks
            for key in [k for k, v in locks.items() if not v.locked()]:
                del locks[key]
        lock = locks[channel] = asyncio.Lock()
    return lock


async def _publish_encoded(name: ChannelName, payload: str) -> Publication:
    size, ttl = _history_limits(name.namespace)
    # Seq assignment and group_send are two round trips: serialise them per channel so
    # this process never sends seq n+1 before n. (Across processes, the hub's reorder
    # buffer and history repair restore the order.)
    async with _channel_lock(name.name):
        pub = await get_history().append(name.name, payload, size=size, ttl=ttl)
        await get_channel_layer().group_send(channel_group(name.name), publication_message(name.name, pub, time.time()))
    return pub


async def _publish_many_encoded(items: list[tuple[ChannelName, str]]) -> list[Publication]:
    if not items:
        return []
    appends = []
    for name, payload in items:
        size, ttl = _history_limits(name.namespace)
        appends.append((name.name, payload, size, ttl))
    async with AsyncExitStack() as stack:
        for channel in sorted({name.name for name, _ in items}):  # a fixed order: no deadlock
            await stack.enter_async_context(_channel_lock(channel))
        pubs = await get_history().append_many(appends)
        # One layer message for the whole batch, to every gateway process; each one
        # fans out the channels it has subscribers for and ignores the rest.
        batch = [(name.name, pub) for (name, _), pub in zip(items, pubs, strict=True)]
        await get_channel_layer().group_send(BATCH_GROUP, batch_message(batch, time.time()))
    return pubs


async def _send_user_encoded(user_id: int, payload: str) -> None:
    await get_channel_layer().group_send(user_group(user_id), user_message(user_id, payload, time.time()))


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


# --- async API ----------------------------------------------------------------------


async def apublish(channel: str, data: Any) -> Publication:
    """Publish `data` to `channel` from async code; returns its seq and epoch."""
    name = validate_channel(channel)
    payload = encode_payload(data)
    return await _on_target(_publish_encoded(name, payload))


async def apublish_many(items: list[tuple[str, Any]]) -> list[Publication]:
    """Publish many (channel, data) pairs at once: one history round trip and one layer
    message per gateway for the whole batch (a price tick of 500 symbols). Each channel
    keeps the order of its items. Everything is validated and encoded before anything
    is sent."""
    encoded = [(validate_channel(channel), encode_payload(data)) for channel, data in items]
    return await _on_target(_publish_many_encoded(encoded))


async def asend_to_user(user_id: int, data: Any) -> None:
    """Send `data` to every connection of `user_id` on every gateway (channel `user`)."""
    payload = encode_payload(data)
    await _on_target(_send_user_encoded(user_id, payload))


# --- sync API -----------------------------------------------------------------------


class _PublisherLoop:
    """A daemon thread running one event loop for all sync publishes of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="realtime-publisher", daemon=True).start()
                ready.wait()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._loop = None


_publisher = _PublisherLoop()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_publisher.reset_after_fork)


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError("publish()/send_to_user() called from async code: use await apublish()/asend_to_user()")
    loop = _embedded_target() or _publisher.loop()
    return asyncio.run_coroutine_threadsafe(coro, loop).result(PUBLISH_TIMEOUT)


def publish(channel: str, data: Any) -> Publication:
    """Publish from sync code (Celery tasks, views, admin actions, shell)."""
    name = validate_channel(channel)
    payload = encode_payload(data)
    return _run_sync(_publish_encoded(name, payload))


def publish_many(items: list[tuple[str, Any]]) -> list[Publication]:
    """`apublish_many` for sync code."""
    encoded = [(validate_channel(channel), encode_payload(data)) for channel, data in items]
    return _run_sync(_publish_many_encoded(encoded))


def publish_many_on_commit(items: list[tuple[str, Any]], *, using: str | None = None) -> None:
    """`publish_many` after the current transaction commits (validated and encoded now)."""
    encoded = [(validate_channel(channel), encode_payload(data)) for channel, data in items]
    transaction.on_commit(lambda: _safe(lambda: _run_sync(_publish_many_encoded(encoded))), using=using)


def send_to_user(user_id: int, data: Any) -> None:
    payload = encode_payload(data)
    _run_sync(_send_user_encoded(user_id, payload))


def publish_on_commit(channel: str, data: Any, *, using: str | None = None) -> None:
    """Publish after the current transaction commits (nothing if it rolls back).

    Validation and encoding happen now, so errors surface at the call site.
    """
    name = validate_channel(channel)
    payload = encode_payload(data)
    transaction.on_commit(lambda: _safe(lambda: _run_sync(_publish_encoded(name, payload))), using=using)


def send_to_user_on_commit(user_id: int, data: Any, *, using: str | None = None) -> None:
    payload = encode_payload(data)
    transaction.on_commit(lambda: _safe(lambda: _run_sync(_send_user_encoded(user_id, payload))), using=using)


def _safe(fn: Any) -> None:
    # After commit the data is safe in the database; a failed push is logged, and
    # clients recover it from the database (durable channels) on resubscribe.
    try:
        fn()
    except Exception:
        logger.exception("publish after commit failed")
