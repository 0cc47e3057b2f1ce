"""Thread pools kept for the life of the process, recreated after fork."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}


def thread_pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The process's pool `name` (threads named after it), created on first use.

    Starting a pool per tick cost a few ms of thread starts on a busy 2-core machine
    (bench/prices_tick.py); a child process (Celery prefork) gets its own pool, since
    the parent's threads do not exist there.
    """
    pid = os.getpid()
    with _lock:
        entry = _pools.get(name)
        if entry is None or entry[0] != pid:
            entry = _pools[name] = (pid, ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name))
        return entry[1]
