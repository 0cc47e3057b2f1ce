"""Kraken spot WebSocket v2: `ticker` and `trade` channels, heartbeats, status, ping."""

from __future__ import annotations

from typing import Any

import orjson

from ..sources.parsing import number, optional_number
from .events import Acked, Event, Liveness, Problem, RateLimited, Rejected, RequestFailed, Shutdown, Tick, TradeEvent
from .protocol import VenueProtocol, iso

#: After a maintenance status, reconnect at least this many seconds later (reference §3).
MAINTENANCE_DELAY = 5.0


class KrakenProtocol(VenueProtocol):
    """Ids are v2 symbols (BTC/USD). One ack per symbol and channel; a failure names the
    symbol and the others stay subscribed. Idle connections close after about a minute
    unless we send something: a `ping` request every 30 s (reference/streams.md §3)."""

    kind = "kraken"
    cadence = 1.0  # heartbeat about every second when nothing else is sent
    stall_after = 10.0
    ping_after = 5.0
    ping_every = 30.0
    ws_ping_interval = 20.0
    ids_per_connection = 500
    ids_per_message = 100
    messages_per_second = 5.0
    contiguous_trade_ids = True  # trade_id is the book's sequence (reference §3)

    def subscribe(self, ids: list[str], request: int) -> list[str]:
        frames = [{"method": "subscribe", "params": {"channel": "ticker", "symbol": ids}, "req_id": request}]
        trades = [i for i in ids if i in self.trade_ids]
        if trades:
            params = {"channel": "trade", "symbol": trades, "snapshot": False}
            frames.append({"method": "subscribe", "params": params, "req_id": request})
        return [orjson.dumps(frame).decode() for frame in frames]

    def ping(self, request: int) -> str | None:
        return orjson.dumps({"method": "ping", "req_id": request}).decode()

    def parse_message(self, msg: Any) -> list[Event]:
        if not isinstance(msg, dict):
            return [Problem("malformed", "not an object")]
        channel = msg.get("channel")
        if channel == "ticker":
            return [self._tick(row) for row in _rows(msg)]
        if channel == "trade":
            return [self._trade(row) for row in _rows(msg)]
        if channel == "heartbeat":
            return [Liveness()]
        if channel == "status":
            rows = _rows(msg)
            system = str(rows[0].get("system", "")) if rows else ""
            if system and system != "online":
                return [Shutdown(f"status {system}", delay=MAINTENANCE_DELAY)]
            return []
        method = msg.get("method")
        if method == "pong":
            return [Liveness()]
        if method == "subscribe":
            if msg.get("success") is True:
                result = msg.get("result") or {}
                if result.get("channel") == "ticker":
                    return [Acked((str(result["symbol"]),))]
                return []
            error = str(msg.get("error", ""))
            if "rate" in error.lower() or "too many" in error.lower():
                return [RateLimited(error[:200])]
            symbol = msg.get("symbol")
            if isinstance(symbol, str):
                return [Rejected((symbol,), error[:200])]
            request = msg.get("req_id")
            return [RequestFailed("subscribe", error[:200], request if isinstance(request, int) else None)]
        return []

    @staticmethod
    def _tick(row: Any) -> Tick:
        price = number(row["last"])
        volume, vwap = optional_number(row.get("volume")), optional_number(row.get("vwap"))
        stamp = row.get("timestamp")
        # `change_pct` is in percentage points already; volume is 24 h base units.
        return Tick(
            str(row["symbol"]),
            price,
            iso(stamp) if stamp is not None else 0,
            optional_number(row.get("change_pct")),
            volume * (vwap or price) if volume is not None else None,
        )

    @staticmethod
    def _trade(row: Any) -> TradeEvent:
        trade_id = row["trade_id"]
        if not isinstance(trade_id, int) or isinstance(trade_id, bool):
            raise TypeError(f"trade_id {trade_id!r}")
        side = row["side"]
        if side not in ("buy", "sell"):
            raise ValueError(f"side {side!r}")
        return TradeEvent(
            str(row["symbol"]), trade_id, number(row["price"]), number(row["qty"]), side, iso(row["timestamp"])
        )


def _rows(msg: dict[str, Any]) -> list[Any]:
    data = msg.get("data")
    if not isinstance(data, list):
        raise TypeError("data is not a list")
    return data
