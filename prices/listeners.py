"""Batch listeners: other apps' callbacks run with each PriceBatch after it is published."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("prices.listeners")

BatchListener = Callable[[dict[str, Any]], None]

_lock = threading.Lock()
_listeners: list[BatchListener] = []


def register_batch_listener(fn: BatchListener) -> BatchListener:
    """Call `fn(batch)` after each published PriceBatch; idempotent; usable as a decorator."""
    with _lock:
        if fn not in _listeners:
            _listeners.append(fn)
    return fn


def unregister_batch_listener(fn: BatchListener) -> None:
    with _lock:
        if fn in _listeners:
            _listeners.remove(fn)


def notify_batch_listeners(batch: dict[str, Any]) -> int:
    """Run every listener; a listener's exception is logged and never breaks the tick.

    Returns how many listeners failed.
    """
    with _lock:
        listeners = list(_listeners)
    failed = 0
    for fn in listeners:
        try:
            fn(batch)
        except Exception:
            failed += 1
            logger.exception("price batch listener %s failed", getattr(fn, "__qualname__", fn))
    return failed
