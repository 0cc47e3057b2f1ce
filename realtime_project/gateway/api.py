"""Server API: `publish(channel, data)`, `send_to_user(user_id, data)` and
`end_sessions(user_id, ...)`, sync and async; and `online_user_ids(...)`, who has a
socket open (from `presence.py`).

Apps push to clients only through these, and ask about presence only here. The payload
is encoded once, here, at the call site: a payload that is not JSON-serialisable raises
`TypeError` and nothing is sent. With Redis, one script call per batch gives each
publication its channel's next `seq`, stores it in history and delivers it to every
gateway process (a PUBLISH on the channel's Channels group over Redis pub/sub),
atomically and in one round trip (`history_redis.RedisHistory.publish`); a retry never
publishes twice (idempotency keys). In embedded mode the in-memory history and layer do
the same in-process.

Sync callers (Celery tasks, views, admin actions) publish through one long-lived
event loop per process in a background thread, never `async_to_sync` per call: that
costs 2-9 ms of CPU per call and, with channels-redis, opens connections per loop and
breaks on closed loops (django/channels_redis#125, #332).
The loop lives in the process's runtime object (`runtime.PUBLISHER`), made afresh after
a fork (Celery prefork workers).

The path under these functions (history, layer, the sync bridge) is `publisher.py`,
which the durable outbox (`outbox.py`) sends through too.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from django.db import transaction

from . import outbox
from .history import Publication
from .history_redis import FencedOut
from .layer_messages import revoke_message
from .presence import online_user_ids
from .protocol import ChannelName, encode_payload
from .publisher import (
    Fence,
    current_fence,
    encode_items,
    fenced,
    on_target,
    publish_encoded,
    run_sync,
    send_user_encoded,
    send_user_message,
    validate_channel,
)

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
    "online_user_ids",
    "publish",
    "publish_many",
    "publish_many_on_commit",
    "publish_on_commit",
    "send_to_user",
    "validate_channel",
]

logger = logging.getLogger("realtime.api")


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
    fence = fence if fence is not None else current_fence()
    (pub,) = await on_target(publish_encoded(encode_items([(channel, data)]), idempotency_key, fence))
    return pub


async def apublish_many(
    items: list[tuple[str, Any]], *, idempotency_key: str | None = None, fence: Fence | None = None
) -> list[Publication]:
    """Publish many (channel, data) pairs at once: one Redis round trip for the whole
    batch (a price tick of 500 symbols), atomically. Each channel keeps the order of its
    items. Everything is validated and encoded before anything is sent."""
    fence = fence if fence is not None else current_fence()
    return await on_target(publish_encoded(encode_items(items), idempotency_key, fence))


async def asend_to_user(user_id: int, data: Any) -> None:
    """Send `data` to every connection of `user_id` on every gateway (channel `user`)."""
    payload = encode_payload(data)
    await on_target(send_user_encoded(user_id, payload))


async def aend_sessions(
    user_id: int, *, reason: str, session_key: str | None = None, token_key: str | None = None
) -> None:
    """End the user's sockets on every gateway: those opened with `session_key` (a Django
    session, and the tickets bought with it) or `token_key` (the tickets an API token
    bought), or every one when neither is given. Each gets `error` `unauthenticated`
    (`details.reason`) and closes with 4401 (docs/protocol.md "Sessions end")."""
    await on_target(send_user_message(user_id, _revoke(user_id, reason, session_key, token_key)))


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


def publish(channel: str, data: Any, *, idempotency_key: str | None = None, fence: Fence | None = None) -> Publication:
    """Publish from sync code (Celery tasks, views, admin actions, shell); see `apublish`."""
    (pub,) = run_sync(publish_encoded(encode_items([(channel, data)]), idempotency_key, fence))
    return pub


def publish_many(
    items: list[tuple[str, Any]], *, idempotency_key: str | None = None, fence: Fence | None = None
) -> list[Publication]:
    """`apublish_many` for sync code."""
    return run_sync(publish_encoded(encode_items(items), idempotency_key, fence))


def publish_many_on_commit(
    items: list[tuple[str, Any]],
    *,
    using: str | None = None,
    idempotency_key: str | None = None,
    durable: bool = False,
) -> None:
    """`publish_many` after the current transaction commits (validated and encoded now);
    `durable`: through the outbox, as `publish_on_commit`."""
    _on_commit(encode_items(items), idempotency_key, using, durable)


def send_to_user(user_id: int, data: Any) -> None:
    payload = encode_payload(data)
    run_sync(send_user_encoded(user_id, payload))


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
    _on_commit(encode_items([(channel, data)]), idempotency_key, using, durable)


def _on_commit(encoded: list[tuple[ChannelName, str]], key: str | None, using: str | None, durable: bool) -> None:
    key = key or f"commit:{uuid.uuid4().hex}"
    if not durable:
        transaction.on_commit(lambda: _safe(lambda: run_sync(publish_encoded(encoded, key))), using=using)
        return
    outbox.add(encoded, key, using=using)

    def send() -> None:
        try:
            run_sync(publish_encoded(encoded, key))
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
    run_sync(send_user_message(user_id, _revoke(user_id, reason, session_key, token_key)))


def end_sessions_on_commit(
    user_id: int, *, reason: str, session_key: str | None = None, token_key: str | None = None
) -> None:
    """`end_sessions` once the current transaction commits (at once outside one)."""
    message = _revoke(user_id, reason, session_key, token_key)
    transaction.on_commit(lambda: _safe(lambda: run_sync(send_user_message(user_id, message))))


def _safe(fn: Any) -> None:
    # After commit the data is safe in the database; a failed push is logged, and
    # clients recover it from the database (durable channels) on resubscribe.
    try:
        fn()
    except Exception:
        logger.exception("publish after commit failed")
