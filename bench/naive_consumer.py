"""The naive Channels baseline: one group membership and one JSON encode per connection.

This is how a Channels tutorial fans out: every consumer joins the group, the layer
delivers one message per member, and each consumer encodes and sends it itself.
Mounted at /ws/naive/ by bench/asgi_bench.py only; never part of the product.
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

NAIVE_GROUP = "naive.prices.BTC"


class NaiveConsumer(AsyncWebsocketConsumer):
    groups = [NAIVE_GROUP]  # group_add(channel_name) for every connection

    async def connect(self) -> None:
        await self.accept()

    async def price_update(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event["data"]))
