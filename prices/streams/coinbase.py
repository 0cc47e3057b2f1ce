"""Coinbase Exchange feed: `ticker`, `heartbeat` and `matches` channels, with sequence checks."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..sources.parsing import number
from .events import Acked, Event, Liveness, Problem, RateLimited, Rejected, RequestFailed, Tick, TradeEvent
from .protocol import VenueProtocol, iso, percent_change

#: "Failed to subscribe" errors name the product in `reason` ("FOO-USD is not a valid product").
_PRODUCT = re.compile(r"\b([A-Z0-9]{2,12}-[A-Z0-9]{2,12})\b")
#: `side` of a match is the maker's: the taker did the opposite.
_TAKER = {"buy": "sell", "sell": "buy"}


class CoinbaseProtocol(VenueProtocol):
    """Ids are product ids (BTC-USD). Subscribe within 5 s of connecting (we do at once);
    10 inbound messages per second; heartbeats 1/s per product; `sequence` is per product
    (reference/streams.md §2). An error refuses the whole subscribe message."""

    kind = "coinbase"
    cadence = 1.0  # heartbeat per product every second
    stall_after = 10.0
    ws_ping_interval = 20.0
    ids_per_connection = 500
    ids_per_message = 100
    messages_per_second = 5.0
    rejects_whole_request = True
    contiguous_trade_ids = True  # matches' trade_id per product (heartbeat last_trade_id agrees)

    def subscribe(self, ids: list[str], request: int) -> list[str]:
        channels: list[dict[str, Any]] = [
            {"name": "ticker", "product_ids": ids},
            {"name": "heartbeat", "product_ids": ids},
        ]
        trades = [i for i in ids if i in self.trade_ids]
        if trades:
            channels.append({"name": "matches", "product_ids": trades})
        return [orjson.dumps({"type": "subscribe", "channels": channels}).decode()]

    def parse_message(self, msg: Any) -> list[Event]:
        if not isinstance(msg, dict):
            return [Problem("malformed", "not an object")]
        kind = msg.get("type")
        if kind == "ticker":
            price = number(msg["price"])
            # Volumes are in base units: the quote volume is volume x price.
            base = msg.get("volume_24h")
            volume = number(base) * price if base is not None else None
            return [
                Tick(
                    str(msg["product_id"]),
                    price,
                    iso(msg["time"]),
                    percent_change(price, msg.get("open_24h")),
                    volume,
                    _seq(msg),
                )
            ]
        if kind == "heartbeat":
            last = msg.get("last_trade_id")
            return [Liveness(str(msg["product_id"]), _seq(msg), last if isinstance(last, int) else None)]
        if kind in ("match", "last_match"):
            side = _TAKER.get(str(msg.get("side")))
            if side is None:
                return [Problem("malformed", f"side {msg.get('side')!r}")]
            trade_id = msg["trade_id"]
            if not isinstance(trade_id, int) or isinstance(trade_id, bool):
                return [Problem("malformed", f"trade_id {trade_id!r}")]
            return [
                TradeEvent(
                    str(msg["product_id"]),
                    trade_id,
                    number(msg["price"]),
                    number(msg["size"]),
                    side,
                    iso(msg["time"]),
                    _seq(msg),
                )
            ]
        if kind == "subscriptions":
            ids: list[str] = []
            for channel in msg.get("channels") or ():
                if isinstance(channel, dict) and channel.get("name") == "ticker":
                    ids += [str(p) for p in channel.get("product_ids") or ()]
            return [Acked(tuple(ids))]
        if kind == "error":
            message = str(msg.get("message", ""))
            reason = str(msg.get("reason", ""))
            text = f"{message}: {reason}" if reason else message
            if "rate" in text.lower():
                return [RateLimited(text[:200])]
            products = _PRODUCT.findall(reason) if "product" in reason.lower() else []
            if products:
                return [Rejected(tuple(products), text[:200])]
            return [RequestFailed("error", text[:200])]
        return []  # "Ignore unknown types" (reference): status, l2update, …


def _seq(msg: dict[str, Any]) -> int | None:
    seq = msg.get("sequence")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
