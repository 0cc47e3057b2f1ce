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


class TickerFeed:
    """Publishes `{"pid", "n"}` on `prices:LEASETEST` every 20 ms, through the context's
    fence (the leased runner's): which process published what, and what was refused."""

    name = "sample.ticker"

    def __init__(self) -> None:
        self.sent = 0
        self.fenced = 0

    async def run(self) -> None:
        from realtime_project.gateway.api import FencedOut, apublish

        _mark("ticker", f"started {os.getpid()}")
        try:
            while True:
                try:
                    await apublish("prices:LEASETEST", {"pid": os.getpid(), "n": self.sent})
                    self.sent += 1
                except FencedOut:
                    self.fenced += 1
                    _mark("ticker", f"fenced {os.getpid()}")
                await asyncio.sleep(0.02)
        finally:
            _mark("ticker", f"stopped {os.getpid()}")

    def health(self) -> dict[str, Any]:
        return {"ok": True, "sent": self.sent, "fenced": self.fenced}


def feeds() -> list[Any]:
    """Those named in env `SAMPLE_FEEDS` (comma-separated: steady, flaky, ticker; default
    steady and flaky)."""
    wanted = set(filter(None, os.environ.get("SAMPLE_FEEDS", "steady,flaky").split(",")))
    known = (("steady", SteadyFeed), ("flaky", FlakyFeed), ("ticker", TickerFeed))
    return [factory() for key, factory in known if key in wanted]
