"""The process's runtime state in one object: what it creates while it runs, not configuration.

Hubs, history stores, Redis clients, the sync publisher's loop, an app's ticker or
engine: each is a `Slot` declared by the module that owns it and kept in the one
`Runtime` of the process (`current()`), created on first use and dropped in a child
after a fork. Registries that are configuration (the router's handlers, channel
namespaces, health checks) are filled at import and are not runtime state.

A slot is per process or, with `per_loop=True`, per event loop: redis-py's asyncio
clients belong to the loop that made them, so a loop gets its own, and the entry goes
with the loop (weakly keyed: a new loop never sees a closed loop's client, even at the
same address).

Tests start each test with a fresh runtime (`reset()`, one fixture in tests/conftest.py)
instead of resetting module globals one by one; a test that simulates a restarted
process calls `reset()` too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

logger = logging.getLogger("realtime.runtime")

T = TypeVar("T")


class Slot(Generic[T]):
    """One piece of runtime state: `factory()` makes it on first use; `close(value)`, if
    given, releases it when the runtime is torn down (a thread, a pool)."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], T],
        *,
        per_loop: bool = False,
        close: Callable[[T], None] | None = None,
    ) -> None:
        self.name = name
        self.factory = factory
        self.per_loop = per_loop
        self.close = close

    def get(self) -> T:
        """The value in the current runtime (for a per-loop slot: the running loop's)."""
        return current().get(self)

    def peek(self) -> T | None:
        """The value if it was made, without making it."""
        return current().peek(self)

    def set(self, value: T) -> None:
        """Install `value` (a test's own ticker, a process's configured instance)."""
        current().set(self, value)

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


class Runtime:
    """The runtime state of one process (module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._values: dict[Slot[Any], Any] = {}
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Slot[Any], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self.closed = False

    def _table(self, slot: Slot[Any], *, create: bool) -> dict[Slot[Any], Any] | None:
        if not slot.per_loop:
            return self._values
        loop = asyncio.get_running_loop()
        table = self._per_loop.get(loop)
        if table is None and create:
            table = self._per_loop[loop] = {}
        return table

    def get(self, slot: Slot[T]) -> T:
        table = self._table(slot, create=True)
        assert table is not None
        # A slot's value is of the slot's type: only its factory or `set` store one.
        try:
            return cast(T, table[slot])
        except KeyError:
            pass
        with self._lock:
            if slot not in table:
                table[slot] = slot.factory()
            return cast(T, table[slot])

    def peek(self, slot: Slot[T]) -> T | None:
        try:
            table = self._table(slot, create=False)
        except RuntimeError:  # a per-loop slot asked outside any loop
            return None
        return None if table is None else table.get(slot)

    def set(self, slot: Slot[T], value: T) -> None:
        table = self._table(slot, create=True)
        assert table is not None
        with self._lock:
            table[slot] = value

    def values(self, slot: Slot[T]) -> list[T]:
        """Every value of `slot`: one per loop that made it (or the process's one)."""
        if not slot.per_loop:
            return [self._values[slot]] if slot in self._values else []
        return [table[slot] for table in list(self._per_loop.values()) if slot in table]

    def close(self) -> None:
        """Release what the slots hold (those with a `close`); the runtime is then dropped."""
        with self._lock:
            self.closed = True
            tables = [self._values, *self._per_loop.values()]
            self._values = {}
            self._per_loop = weakref.WeakKeyDictionary()
        for table in tables:
            for slot, value in table.items():
                if slot.close is not None:
                    try:
                        slot.close(value)
                    except Exception:
                        logger.exception("closing %s failed", slot.name)


_current: Runtime | None = None
_current_lock = threading.Lock()


def current() -> Runtime:
    """The process's runtime (made on first use)."""
    runtime = _current
    if runtime is None:
        runtime = _make()
    return runtime


def _make() -> Runtime:
    global _current
    with _current_lock:
        if _current is None:
            _current = Runtime()
        return _current


def reset() -> None:
    """Tear the runtime down and start the next use with a fresh one (tests)."""
    global _current
    with _current_lock:
        old, _current = _current, None
    if old is not None:
        old.close()


def _forget_after_fork() -> None:
    # The parent's threads and loops do not exist in the child: start afresh, close nothing.
    global _current, _current_lock
    _current_lock = threading.Lock()
    _current = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
