"""`VenueProtocol`: one venue's stream rules and frame parsing, pure (no I/O, no clock).

A subclass says how to subscribe (batches, limits), how to ping, how often the venue
speaks when healthy, and turns each text frame into `events` (reference/streams.md).
The I/O layer (`client.py`) drives it; tests feed it frames directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..sources.http import decode_json
from ..sources.parsing import Malformed, iso_ms, number
from .events import Event, Problem

HOUR = 3600.0


class VenueProtocol:
    kind = ""
    #: Seconds between the venue's liveness signals when healthy (a ticker, a heartbeat, a pong).
    cadence = 1.0
    #: Nothing received for this long: the connection is stalled, reconnect.
    stall_after = 10.0
    #: The venue closes connections older than this (Binance 24 h): rotate before it.
    lifetime: float | None = None
    #: Send an application ping after this much silence (None: never).
    ping_after: float | None = None
    #: Send an application ping when we sent nothing for this long (keep-alive rules).
    ping_every: float | None = None
    #: WebSocket protocol pings from our side (None when the venue pings, or counts ours).
    ws_ping_interval: float | None = 20.0
    #: Venue ids per connection and per subscribe message.
    ids_per_connection = 500
    ids_per_message = 100
    #: Messages per second we allow ourselves (under the venue's limit, pongs included).
    messages_per_second = 5.0
    #: An error naming one id refused the whole subscribe message (resend the others).
    rejects_whole_request = False
    #: Each book's trade ids are consecutive: a jump means trades were missed (`trade_gap`).
    contiguous_trade_ids = False

    def __init__(self, trade_ids: Iterable[str] = ()) -> None:
        #: Ids whose trades are subscribed too (the market overview's recent trades).
        self.trade_ids = frozenset(trade_ids)

    def url(self, base: str) -> str:
        return base

    def subscribe(self, ids: list[str], request: int) -> list[str]:
        """The frames that subscribe `ids` (one subscribe request, numbered `request`)."""
        raise NotImplementedError("VenueProtocol subclasses must implement subscribe()")

    def ping(self, request: int) -> str | None:
        """An application-level ping frame, if the venue has one."""
        return None

    def parse(self, text: str | bytes) -> list[Event]:
        """The events of one frame; bad input becomes `Problem` events, never an exception."""
        try:
            msg = decode_json(text)
        except (ValueError, UnicodeDecodeError):
            return self.parse_text(text)
        try:
            return self.parse_message(msg)
        except (Malformed, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            return [Problem("malformed", f"{type(exc).__name__}: {str(exc)[:80]}")]

    def parse_text(self, text: str | bytes) -> list[Event]:
        """A frame that is not JSON (OKX's `pong`); by default malformed."""
        shown = text[:60] if isinstance(text, str) else text[:60].decode("utf-8", "replace")
        return [Problem("malformed_json", shown)]

    def parse_message(self, msg: Any) -> list[Event]:
        raise NotImplementedError("VenueProtocol subclasses must implement parse_message()")


def percent_change(price: float, open_price: Any) -> float | None:
    """(price - open) / open in percent, or None when the open is missing or unusable."""
    try:
        opened = number(open_price)
    except Malformed:
        return None
    return (price / opened - 1) * 100 if opened > 0 else None


def ms(value: Any) -> int:
    """Epoch milliseconds from a JSON number or numeric string (Binance, OKX)."""
    t = number(value)
    if t != t or t <= 0 or t > 1e15:
        raise Malformed(f"bad time {value!r}")
    return int(t)


def iso(value: Any) -> int:
    return iso_ms(value)
