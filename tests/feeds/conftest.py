"""Fixtures of the feed tests: real `manage.py feeds` processes, stopped at teardown."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.feeds_process import FeedsProcess


@pytest.fixture
def feeds_process() -> Iterator[Callable[..., FeedsProcess]]:
    started: list[FeedsProcess] = []

    def start(**kwargs: Any) -> FeedsProcess:
        proc = FeedsProcess(**kwargs).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.alive():
            proc.signal(signal.SIGCONT)  # a test may have paused it
        proc.stop()
