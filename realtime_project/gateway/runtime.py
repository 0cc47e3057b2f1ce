"""The gateway's per-process wiring: the hub of each event loop, the history store and the
sync publisher's loop, kept in the process's runtime object (`realtime_project.runtime`).

Publishers (`api.py`, Celery workers) import this module too, so it imports the hub
only when a gateway asks for one: a worker never loads the hub or the ASGI server.

One hub per event loop (the server has one; tests may create several). The history
store is Redis when `REALTIME["HISTORY_REDIS_URL"]` is set (one client per loop, since
redis-py's asyncio connections belong to the loop that made them), otherwise one
in-memory store for the whole process (embedded mode).
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING

from channels.layers import get_channel_layer

from ..runtime import Slot, current
from .conf import gateway_settings
from .history import HistoryStore, MemoryHistory

if TYPE_CHECKING:  # the hub (and the servers it writes to) are imported by gateways only
    from .hub import Hub


class PublisherLoop:
    """A daemon thread running one event loop for all sync publishes of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
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

                self._thread = threading.Thread(target=run, name="realtime-publisher", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def stop(self) -> None:
        """Stop the thread and close its loop (a runtime torn down; tests)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None or self._pid != os.getpid() or loop.is_closed():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()


def _new_hub() -> Hub:
    from django.conf import settings as django_settings

    from .hub import Hub
    from .layer_messages import layer_prefix

    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS is not configured")
    gateway = gateway_settings()
    hub = Hub(
        layer=layer,
        history=get_history(),
        settings=gateway,
        # Production: publications arrive on Redis pub/sub, read in batches.
        intake_url=gateway.history_redis_url,
        layer_prefix=layer_prefix(django_settings.CHANNEL_LAYERS),
    )
    SERVER_LOOP.set(asyncio.get_running_loop())
    return hub


def _new_redis_history() -> HistoryStore:
    from .history_redis import RedisHistory

    settings = gateway_settings()
    return RedisHistory(settings.history_redis_url, prefix=settings.key_prefix)


#: The hub of each event loop (made, not started, on first use: `serving.get_hub` starts it).
HUB: Slot[Hub] = Slot("gateway.hub", _new_hub, per_loop=True)
#: The Redis history store of each event loop (production).
REDIS_HISTORY: Slot[HistoryStore] = Slot("gateway.redis_history", _new_redis_history, per_loop=True)
#: The in-memory history of the process (embedded mode).
MEMORY_HISTORY: Slot[MemoryHistory] = Slot("gateway.memory_history", MemoryHistory)
#: The loop of the server's hub in this process (embedded mode publishes through it).
SERVER_LOOP: Slot[asyncio.AbstractEventLoop | None] = Slot("gateway.server_loop", lambda: None)
#: The loop of sync publishes (`api.publish` from Celery tasks, views, the shell).
PUBLISHER: Slot[PublisherLoop] = Slot("gateway.publisher", PublisherLoop, close=PublisherLoop.stop)


def memory_history() -> MemoryHistory:
    return MEMORY_HISTORY.get()


def get_history() -> HistoryStore:
    """The history store for the running loop."""
    if not gateway_settings().history_redis_url:
        return memory_history()
    return REDIS_HISTORY.get()


def uses_memory_layer() -> bool:
    from channels.layers import InMemoryChannelLayer

    return isinstance(get_channel_layer(), InMemoryChannelLayer)


def current_hub() -> Hub | None:
    """The hub of the running loop, if one exists (no creation)."""
    return HUB.peek()


def server_loop() -> asyncio.AbstractEventLoop | None:
    loop = SERVER_LOOP.peek()
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def all_hubs() -> list[Hub]:
    return current().values(HUB)
