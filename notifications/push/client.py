"""One long-lived push client per worker process: an event loop thread and one aiohttp session.

A Celery task is synchronous; the pushes it sends go to this process's client, whose
session keeps connections (and TLS sessions) to push services alive from one task to
the next, instead of opening `PUSH_CONCURRENCY` new ones per task (with TLS, a
handshake each). Its loop runs in a thread of its own: the task hands a batch over and
waits for the outcomes, also when the task itself runs inside an event loop.

The session's resolver is the SSRF guard and its limits come from the settings, so a
client belongs to the settings it was made with: other settings (tests change them)
get a new client and the old one is closed. The client is runtime state (a slot of
`realtime_project.runtime`): a forked child (prefork pool) starts with a fresh runtime
and never uses its parent's client, and a torn-down runtime closes it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp

from realtime_project.runtime import Slot

from ..conf import NotificationSettings
from .endpoint import GuardedResolver

T = TypeVar("T")
#: Idle connections to a push service are kept this long (FCM, Mozilla and Apple keep
#: theirs open for minutes; a fan-out every few minutes reuses them).
KEEPALIVE_SECONDS = 120.0


class PushClient:
    def __init__(self, conf: NotificationSettings) -> None:
        self.conf = conf
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="push-client", daemon=True)
        self._thread.start()
        self.session: aiohttp.ClientSession = self.run(self._open())

    async def _open(self) -> aiohttp.ClientSession:
        limit = max(1, self.conf.push_concurrency)
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.conf),
            limit=limit,
            limit_per_host=limit,
            keepalive_timeout=KEEPALIVE_SECONDS,
        )
        timeout = aiohttp.ClientTimeout(total=self.conf.push_timeout)
        # No cookies, no proxies from the environment, no decompression: push services
        # answer with an empty body and a status.
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the client's loop; the caller goes on and collects the result later."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def close(self) -> None:
        if self.pid != os.getpid() or self.loop.is_closed():
            return
        try:
            self.run(self.session.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()


class _ClientHolder:
    """The process's one client, remade when the settings change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: PushClient | None = None

    def client(self, conf: NotificationSettings) -> PushClient:
        with self._lock:
            current = self._client
            if current is not None and current.pid == os.getpid() and current.conf == conf:
                return current
            if current is not None:
                current.close()  # other settings; a parent's client (after fork) is left alone
            self._client = PushClient(conf)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


_CLIENT: Slot[_ClientHolder] = Slot("notifications.push_client", _ClientHolder, close=_ClientHolder.close)


def push_client(conf: NotificationSettings) -> PushClient:
    """This process's client for these settings (made on first use)."""
    return _CLIENT.get().client(conf)


@atexit.register
def _close_at_exit() -> None:
    holder = _CLIENT.peek()
    if holder is not None:
        holder.close()
