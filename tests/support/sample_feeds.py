"""Feeds for the runner's process tests (`FEEDS_EXTRA_MODULES=tests.support.sample_feeds`).

They write what happens to them into files under env `SAMPLE_FEEDS_DIR`, so a test
can check a child process started, restarted and cleaned up its feeds.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any


def _mark(name: str, line: str) -> None:
    directory = os.environ.get("SAMPLE_FEEDS_DIR")
    if directory:
        with (Path(directory) / name).open("a") as f:
            f.write(line + "\n")


class SteadyFeed:
    """Runs until cancelled; notes its start and its clean-up."""

    name = "sample.steady"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        _mark("steady", "started")
        try:
            await asyncio.Event().wait()
        finally:
            _mark("steady", "stopped")

    def health(self) -> dict[str, Any]:
        return {"ok": True, "connected": True, "runs": self.runs}


class FlakyFeed:
    """Fails at once, every time: the runner restarts it with backoff."""

    name = "sample.flaky"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        _mark("flaky", "started")
        raise RuntimeError(f"boom {self.runs}")

    def health(self) -> dict[str, Any]:
        return {"ok": False, "connected": False, "runs": self.runs}


def feeds() -> list[Any]:
    """Both, or only those named in env `SAMPLE_FEEDS` (comma-separated: steady, flaky)."""
    wanted = set(filter(None, os.environ.get("SAMPLE_FEEDS", "steady,flaky").split(",")))
    return [feed for key, feed in (("steady", SteadyFeed()), ("flaky", FlakyFeed())) if key in wanted]
