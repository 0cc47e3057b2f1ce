"""Presence's Redis clients: one per event loop, never a closed loop's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from realtime_project.gateway import presence

pytestmark = pytest.mark.redis


def test_each_event_loop_gets_a_client_of_its_own(redis_settings: Any) -> None:
    """Clients were once kept by `id(loop)` and never dropped: a loop made at a freed
    loop's address would get the closed loop's client. The runtime object keys them by
    the loop itself (weakly), so each loop, one after another, gets its own working
    client (tests/test_runtime.py checks the same of any per-loop slot)."""

    async def use() -> tuple[Any, list[str]]:
        await presence.withdraw("gw-test")  # a write and...
        return presence._client(), await presence.live_gateways()  # ...reads, on this loop

    clients = []
    for _ in range(4):
        client, live = asyncio.run(use())
        assert "gw-test" not in live
        clients.append(client)
    assert all(a is not b for i, a in enumerate(clients) for b in clients[i + 1 :])
