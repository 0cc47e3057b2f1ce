"""OKX v5 public: `tickers` and `trades` channels, text `ping`/`pong`, service notices."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..sources.parsing import number, optional_number
from .events import Acked, Event, Liveness, Problem, RateLimited, Rejected, RequestFailed, Shutdown, Tick, TradeEvent
from .protocol import VenueProtocol, ms, percent_change

#: Errors about one instrument name it: "…channel:tickers,instId:FOO-USDT doesn't exist."
_INST = re.compile(r"instId:([A-Za-z0-9-]+)")
#: OKX's "Requests too frequent" error code.
TOO_FREQUENT = "60014"
#: Notice: "The connection will soon be closed for a service upgrade. Please reconnect."
UPGRADE_NOTICE = "64008"


class OKXProtocol(VenueProtocol):
    """Ids are instrument ids (BTC-USDT). A connection with no push or subscription for
    30 s is closed, so after a few seconds of silence we send the text `ping` and expect
    `pong` (reference/streams.md §4); 480 subscribe requests per hour per connection."""

    kind = "okx"
    cadence = 5.0  # tickers only on change: our ping after 5 s of silence is the heartbeat
    stall_after = 15.0
    ping_after = 5.0
    ws_ping_interval = None
    ids_per_connection = 500
    ids_per_message = 50  # 100 args (tickers + trades) per request
    messages_per_second = 3.0

    def subscribe(self, ids: list[str], request: int) -> list[str]:
        args: list[dict[str, str]] = [{"channel": "tickers", "instId": i} for i in ids]
        args += [{"channel": "trades", "instId": i} for i in ids if i in self.trade_ids]
        return [orjson.dumps({"op": "subscribe", "args": args}).decode()]

    def ping(self, request: int) -> str | None:
        return "ping"

    def parse_text(self, text: str | bytes) -> list[Event]:
        if text in ("pong", b"pong"):
            return [Liveness()]
        return super().parse_text(text)

    def parse_message(self, msg: Any) -> list[Event]:
        if not isinstance(msg, dict):
            return [Problem("malformed", "not an object")]
        event = msg.get("event")
        if event is not None:
            return self._event(event, msg)
        arg = msg.get("arg") or {}
        channel = arg.get("channel")
        data = msg.get("data")
        if not isinstance(data, list):
            return [Problem("malformed", "data is not a list")]
        if channel == "tickers":
            out: list[Event] = []
            for row in data:
                price = number(row["last"])
                change = percent_change(price, row.get("open24h"))
                # SPOT: volCcy24h is the 24 h volume in the quote currency.
                out.append(
                    Tick(str(row["instId"]), price, ms(row["ts"]), change, optional_number(row.get("volCcy24h")))
                )
            return out
        if channel == "trades":
            return [
                TradeEvent(
                    str(row["instId"]),
                    int(row["tradeId"]),
                    number(row["px"]),
                    number(row["sz"]),
                    _side(row["side"]),
                    ms(row["ts"]),
                )
                for row in data
            ]
        return [Problem("unknown_channel", str(channel)[:40])]

    @staticmethod
    def _event(event: Any, msg: dict[str, Any]) -> list[Event]:
        if event == "subscribe":
            arg = msg.get("arg") or {}
            return [Acked((str(arg["instId"]),))] if arg.get("channel") == "tickers" else []
        code, text = str(msg.get("code", "")), str(msg.get("msg", ""))
        if event == "notice":
            return [Shutdown(f"notice {code}: {text[:120]}")] if code == UPGRADE_NOTICE else []
        if event == "error":
            if code == TOO_FREQUENT or "too frequent" in text.lower():
                return [RateLimited(f"{code} {text}"[:200])]
            found = _INST.findall(text)
            if found:
                return [Rejected(tuple(found), f"{code} {text}"[:200])]
            return [RequestFailed(code, text[:200])]
        return []


def _side(value: Any) -> str:
    if value not in ("buy", "sell"):
        raise ValueError(f"side {value!r}")
    return str(value)
