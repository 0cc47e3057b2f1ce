"""Binance spot combined streams: `<symbol>@ticker` and `@aggTrade` on `/stream`."""

from __future__ import annotations

from typing import Any

import orjson

from ..sources.parsing import number, optional_number
from .events import Acked, Event, Problem, RequestFailed, Shutdown, Tick, TradeEvent
from .protocol import HOUR, VenueProtocol, ms


class BinanceProtocol(VenueProtocol):
    """Ids are upper-case pairs (BTCUSDT); stream names are lower-case.

    Limits (reference/streams.md §1): 5 incoming messages per second per connection,
    pings and pongs included, or the connection is dropped (repeat: IP ban); 1,024
    streams per connection; 24 h lifetime; the server pings every 20 s and our own
    pings would count against the 5/s, so we send none.
    """

    kind = "binance"
    cadence = 1.0  # @ticker every 1000 ms per symbol
    stall_after = 10.0
    lifetime = 24 * HOUR
    ws_ping_interval = None
    ids_per_connection = 400  # 2 streams each with trades: 800 of the 1,024 allowed
    ids_per_message = 100
    messages_per_second = 3.0  # under 5/s with room for pongs
    contiguous_trade_ids = True  # aggTrade ids per symbol (reference §1: inference)

    def streams(self, ids: list[str]) -> list[str]:
        out: list[str] = []
        for venue_id in ids:
            lower = venue_id.lower()
            out.append(f"{lower}@ticker")
            if venue_id in self.trade_ids:
                out.append(f"{lower}@aggTrade")
        return out

    def subscribe(self, ids: list[str], request: int) -> list[str]:
        frame = {"method": "SUBSCRIBE", "params": self.streams(ids), "id": request}
        return [orjson.dumps(frame).decode()]

    def parse_message(self, msg: Any) -> list[Event]:
        if not isinstance(msg, dict):
            return [Problem("malformed", "not an object")]
        if "stream" in msg:
            data = msg.get("data")
        elif "e" in msg:
            data = msg  # a raw (not combined) event, e.g. serverShutdown
        elif "id" in msg and "result" in msg:
            request = msg["id"]
            return [Acked(request=int(request))] if isinstance(request, int) and msg["result"] is None else []
        elif "code" in msg:
            request = msg.get("id")
            return [
                RequestFailed(
                    str(msg["code"]), str(msg.get("msg", ""))[:200], request if isinstance(request, int) else None
                )
            ]
        else:
            return [Problem("unexpected_frame", str(sorted(msg))[:80])]
        if not isinstance(data, dict):
            return [Problem("malformed", "data is not an object")]
        kind = data.get("e")
        if kind == "serverShutdown":
            return [Shutdown("serverShutdown")]
        if kind in ("24hrTicker", "24hrMiniTicker"):
            price = number(data["c"])
            change = optional_number(data.get("P"))
            if change is None and "o" in data:  # the mini ticker has no percent
                opened = optional_number(data["o"])
                change = (price / opened - 1) * 100 if opened else None
            return [Tick(str(data["s"]), price, ms(data["E"]), change, optional_number(data.get("q")))]
        if kind == "aggTrade":
            return [self._trade(data, "a")]
        if kind == "trade":
            return [self._trade(data, "t")]
        return [Problem("unknown_event", str(kind)[:40])]

    @staticmethod
    def _trade(data: dict[str, Any], id_key: str) -> TradeEvent:
        trade_id = data[id_key]
        if not isinstance(trade_id, int) or isinstance(trade_id, bool):
            raise TypeError(f"trade id {trade_id!r}")
        # `m`: the buyer is the maker, so the taker sold.
        side = "sell" if data["m"] else "buy"
        return TradeEvent(str(data["s"]), trade_id, number(data["p"]), number(data["q"]), side, ms(data["T"]))
