"""`make run`'s path: the embedded server runs the feed runner, and the simulated market is
a stream (event-driven ticks per symbol); the REST tick stands aside."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest
import websockets

from tests.support.ws import recv_live

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


async def frames(ws: Any, count: int, channel: str, timeout: float = 30) -> list[dict[str, Any]]:
    """`count` publications (not snapshots) of `channel`."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        frame = await recv_live(ws, max(0.1, deadline - time.monotonic()))
        if frame["type"] == "message" and frame["channel"] == channel and not frame.get("snapshot"):
            got.append(frame["data"])
    return got


async def test_embedded_server_streams_the_simulated_market(live_server_factory: Any) -> None:
    from realtime_project.scheduling import install_default_schedule

    await asyncio.to_thread(install_default_schedule)  # what `make run` does (setup_schedule)
    server = live_server_factory(server="uvicorn", extra={"EMBEDDED_FEEDS": "on", "EMBEDDED_SCHEDULER": "on"})
    async with websockets.connect(server.ws_url) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        for n, channel in enumerate(("prices:BTC", "market:overview")):
            await ws.send(json.dumps({"type": "subscribe", "id": n, "channel": channel}))
        updates = await frames(ws, 3, "prices:BTC")
        assert len(updates) == 3, updates
        assert all(u["source"] == "simulated" and u["sources"] == ["simulated"] for u in updates)
        assert len({u["timestamp"] for u in updates}) == 3 and all(u["quoted_at"] for u in updates)
        [overview] = await frames(ws, 1, "market:overview")
        assert overview["top_gainers"] or overview["top_losers"]
        assert any(t["venue"] == "simulated" for t in overview["recent_trades"])

    with urllib.request.urlopen(f"{server.http_url}/readyz", timeout=5) as resp:
        body = json.loads(resp.read())
    prices = body["apps"]["feeds"]["feeds"]["prices"]
    assert prices["state"] == "running" and prices["health"]["venues"]["simulated"]["ticks"] > 0
    log = await asyncio.to_thread(server.read_log)
    assert "{'skipped': 'streams'}" in log  # the beat tick stood aside: one aggregator
