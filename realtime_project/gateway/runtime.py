"""Per-process wiring: the hub of the server's event loop and the history store.

Publishers (`api.py`, Celery workers) import this module too, so it imports the hub
only when a gateway asks for one: a worker never loads the hub or the ASGI server.

One hub per event loop (the server has one; tests may create several). The history
store is Redis when `REALTIME["HISTORY_REDIS_URL"]` is set (one client per loop, since
redis-py's asyncio connections belong to the loop that made them), otherwise one
in-memory store for the whole process (embedded mode).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import TYPE_CHECKING

from channels.layers import get_channel_layer

from .conf import gateway_settings
from .history import HistoryStore, MemoryHistory

if TYPE_CHECKING:  # the hub (and the servers it writes to) are imported by gateways only
    from .hub import Hub

_lock = threading.Lock()
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_histories: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HistoryStore] = weakref.WeakKeyDictionary()
_memory_history: MemoryHistory | None = None
#: The loop of the server's hub in this process (embedded mode publishes through it).
_server_loop: asyncio.AbstractEventLoop | None = None


def memory_history() -> MemoryHistory:
    global _memory_history
    with _lock:
        if _memory_history is None:
            _memory_history = MemoryHistory(time.monotonic)
        return _memory_history


def get_history() -> HistoryStore:
    """The history store for the running loop."""
    settings = gateway_settings()
    if not settings.history_redis_url:
        return memory_history()
    loop = asyncio.get_running_loop()
    store = _histories.get(loop)
    if store is None:
        from .history_redis import RedisHistory

        store = RedisHistory(settings.history_redis_url, prefix=settings.key_prefix)
        _histories[loop] = store
    return store


def uses_memory_layer() -> bool:
    from channels.layers import InMemoryChannelLayer

    return isinstance(get_channel_layer(), InMemoryChannelLayer)


async def get_hub() -> Hub:
    """The started hub of the running loop (created on first use)."""
    global _server_loop
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        from .hub import Hub

        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("CHANNEL_LAYERS is not configured")
        from django.conf import settings as django_settings

        from .layer_messages import layer_prefix

        gateway = gateway_settings()
        hub = Hub(
            layer=layer,
            history=get_history(),
            settings=gateway,
            # Production: publications arrive on Redis pub/sub, read in batches.
            intake_url=gateway.history_redis_url,
            layer_prefix=layer_prefix(django_settings.CHANNEL_LAYERS),
        )
        _hubs[loop] = hub
        _server_loop = loop
    if not hub.started:
        await hub.start()
        from .auth import revalidate
        from .revalidation import revalidation_loop

        hub.spawn(revalidation_loop(hub, revalidate), "hub-revalidate")
        if gateway_settings().history_redis_url:
            from .presence import presence_loop

            hub.spawn(presence_loop(hub), "hub-presence")
    return hub


def current_hub() -> Hub | None:
    """The hub of the running loop, if one exists (no creation)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return _hubs.get(loop)


def server_loop() -> asyncio.AbstractEventLoop | None:
    loop = _server_loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def all_hubs() -> list[Hub]:
    return list(_hubs.values())


def reset_for_tests() -> None:
    """Forget hubs and stores (between tests that use different loops/settings)."""
    global _memory_history, _server_loop
    from . import presence

    presence._clients.clear()
    _hubs.clear()
    _histories.clear()
    _memory_history = None
    _server_loop = None
