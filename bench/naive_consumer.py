"""The naive Channels baseline: one group membership and one JSON encode per connection.

This is how a Channels tutorial fans out: every consumer joins the group, the layer
delivers one message per member, and each consumer encodes and sends it itself.
Mounted at /ws/naive/ by bench/asgi_bench.py only; never part of the product.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

NAIVE_GROUP = "naive.prices.BTC"


class NaiveConsumer(AsyncWebsocketConsumer):
    groups = [NAIVE_GROUP]  # group_add(channel_name) for every connection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups = list(self.groups)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        # `?ch=NAME` (bench/live_path.py, many channels): join group naive.NAME instead.
        query = parse_qs(self.scope.get("query_string", b"").decode())
        if "ch" in query:
            self.groups = [f"naive.{query['ch'][0]}"]
        await super().websocket_connect(message)

    async def connect(self) -> None:
        await self.accept()

    async def price_update(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event["data"]))
