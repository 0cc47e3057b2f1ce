"""One small typed event bus: domain events cross apps off the publisher's path.

The app that owns an event defines its type (a frozen dataclass in `<app>/events.py`,
exported by `<app>/api.py`); an app that reacts subscribes to that type from its
`ready()`. `emit()` never runs a handler on the caller's thread: each subscription has
a bounded queue and a worker thread of its own, so a slow or failing subscriber (the
alerts engine writing notifications) never delays the publisher (a price going out)
and never runs inside its locks. Inside a database transaction, `emit()` waits for the
commit (nothing is announced that could still roll back).

A subscription may give `merge(older, newer) -> event`: when its handler falls behind,
the queued events are folded into one instead of piling up (latest-value events such
as price batches). Without `merge`, a full queue drops its oldest event, counted and
logged: the queue is bounded so a stuck subscriber cannot exhaust memory.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.db import close_old_connections, connections, transaction

logger = logging.getLogger("realtime.events")

E = TypeVar("E")

#: Events queued per subscription before merging or dropping.
QUEUE_LIMIT = 10_000
#: A subscriber thread keeps its database connection between events (opening one per
#: event cost more than the alerts evaluation itself: bench/prices_streams.py, py-spy) and
#: lets Django recycle it this often, or at once after a failed event.
CONNECTION_RECYCLE = 60.0


@dataclass(eq=False)
class Subscription(Generic[E]):
    """One subscriber of one event type, with its queue and worker thread."""

    event_type: type[E]
    handler: Callable[[E], None]
    name: str
    merge: Callable[[E, E], E] | None = None
    limit: int = QUEUE_LIMIT
    handled: int = 0
    failed: int = 0
    merged: int = 0
    dropped: int = 0
    _queue: deque[E] = field(default_factory=deque, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _busy: bool = False
    _thread: threading.Thread | None = field(default=None, repr=False)
    _pid: int = 0
    _closed: bool = False

    def put(self, event: E) -> None:
        with self._cond:
            if self._closed:
                return
            queue = self._queue
            if queue and self.merge is not None:
                queue.append(self.merge(queue.pop(), event))
                self.merged += 1
            else:
                if len(queue) >= self.limit:
                    queue.popleft()
                    self.dropped += 1
                    logger.error("event subscriber %s is %d events behind: dropped the oldest", self.name, self.limit)
                queue.append(event)
            self._ensure_thread()
            self._cond.notify()

    def _ensure_thread(self) -> None:
        # A forked child (a Celery prefork worker) has no copy of the parent's threads.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._work, name=f"events:{self.name}", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        try:
            self._serve()
        finally:
            # The thread ends (the subscription was closed): its database connection
            # goes with it, closed rather than left for the garbage collector.
            _close_db_connections(everything=True)

    def _serve(self) -> None:
        recycled = time.monotonic()
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                event = self._queue.popleft()
                self._busy = True
            failed = False
            try:
                self.handler(event)
                self.handled += 1
            except Exception:
                failed = True
                self.failed += 1
                logger.exception("event subscriber %s failed on %s", self.name, type(event).__name__)
            finally:
                if failed or time.monotonic() - recycled >= CONNECTION_RECYCLE:
                    _close_db_connections()
                    recycled = time.monotonic()
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was handled (tests, shutdown). False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            backlog = len(self._queue)
        return {
            "handled": self.handled,
            "failed": self.failed,
            "merged": self.merged,
            "dropped": self.dropped,
            "backlog": backlog,
        }


def _close_db_connections(*, everything: bool = False) -> None:
    """Close this thread's database connections: those Django deems old, or all of them.

    Best effort: the subscriber's thread must outlive a failure here (checking a
    connection can itself raise, e.g. where database access is refused, as pytest-django
    does outside database tests), so it is logged, not raised."""
    try:
        if everything:
            connections.close_all()
        else:
            close_old_connections()
    except Exception:
        logger.warning("event subscriber could not close its database connections", exc_info=True)


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: dict[type[Any], list[Subscription[Any]]] = {}

    def subscribe(
        self,
        event_type: type[E],
        handler: Callable[[E], None],
        *,
        name: str,
        merge: Callable[[E, E], E] | None = None,
        limit: int = QUEUE_LIMIT,
    ) -> Subscription[E]:
        """Run `handler(event)` on a worker thread for every emitted `event_type`.

        Idempotent per `name` (an app's `ready()` may run twice in tests).
        """
        with self._lock:
            subs = self._subscriptions.setdefault(event_type, [])
            for sub in subs:
                if sub.name == name:
                    return sub
            sub = Subscription(event_type, handler, name, merge, limit)
            subs.append(sub)
            return sub

    def unsubscribe(self, subscription: Subscription[Any]) -> None:
        with self._lock:
            subs = self._subscriptions.get(subscription.event_type, [])
            if subscription in subs:
                subs.remove(subscription)
        subscription.close()

    def subscriptions(self, event_type: type[Any]) -> list[Subscription[Any]]:
        with self._lock:
            return list(self._subscriptions.get(event_type, ()))

    def emit(self, event: Any, *, after_commit: bool = True) -> None:
        """Queue `event` for its type's subscribers.

        Inside a database transaction the event waits for the commit (`after_commit`), so
        nothing is announced that could still roll back. An event that reports something
        already done outside the database (prices went out on the gateway) passes
        `after_commit=False`.
        """
        subs = self.subscriptions(type(event))
        if not subs:
            return
        if after_commit and transaction.get_connection().in_atomic_block:
            transaction.on_commit(lambda: self._deliver(subs, event))
        else:
            self._deliver(subs, event)

    @staticmethod
    def _deliver(subs: list[Subscription[Any]], event: Any) -> None:
        for sub in subs:
            sub.put(event)


#: The process's bus (a module-level instance, as Django's signals are; subscriptions
#: are made once from apps' `ready()`).
bus = EventBus()
