"""Thread pools kept for the life of the process, in its runtime object."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from realtime_project.runtime import Slot

_lock = threading.Lock()


def _shut_down(pools: dict[str, ThreadPoolExecutor]) -> None:
    for pool in pools.values():
        pool.shutdown(wait=False, cancel_futures=True)


_POOLS: Slot[dict[str, ThreadPoolExecutor]] = Slot("prices.thread_pools", dict, close=_shut_down)


def thread_pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The process's pool `name` (threads named after it), created on first use.

    Starting a pool per tick cost a few ms of thread starts on a busy 2-core machine
    (bench/prices_tick.py); a child process (Celery prefork) gets its own pool, since
    the parent's threads do not exist there (the runtime object is made afresh).
    """
    pools = _POOLS.get()
    with _lock:
        pool = pools.get(name)
        if pool is None:
            pool = pools[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        return pool
