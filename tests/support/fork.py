"""`in_forked_child`: run a check in a forked child (as a Celery prefork worker is made)."""

from __future__ import annotations

import os
from collections.abc import Callable


def in_forked_child(check: Callable[[], bool]) -> bool:
    """`check()`'s answer, computed in a child forked from this process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            answer = b"1" if check() else b"0"
        except BaseException:
            answer = b"0"
        os.write(write, answer)
        os._exit(0)
    os.close(write)
    try:
        return os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
