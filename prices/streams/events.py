"""What a venue's frames mean, independent of the venue: ticks, trades, acks, errors, notices.

The three that come by the thousand per second (ticks, trades, heartbeats) are NamedTuples:
building a frozen dataclass costs about three times as much.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Tick(NamedTuple):
    """A ticker update for one venue id (BTCUSDT, BTC-USD, BTC/USD, BTC-USDT).

    `time` is the venue's own event time (ms); `change24h` a percent; `volume24h` in
    the quote currency (USD). `seq`: the venue's per-product sequence, when it has one.
    """

    id: str
    price: float
    time: int
    change24h: float | None = None
    volume24h: float | None = None
    seq: int | None = None


class TradeEvent(NamedTuple):
    """One trade (or one taker order's fills, Binance aggTrade / OKX); `side` is the taker's."""

    id: str
    trade_id: int
    price: float
    qty: float
    side: str
    time: int
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Acked:
    """The venue confirmed subscriptions: these ids, or everything request `request` asked."""

    ids: tuple[str, ...] = ()
    request: int | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """The venue refused these ids (unknown symbol); the others keep streaming."""

    ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """An error frame that names no id (`request` when the venue echoes our request id)."""

    code: str
    message: str
    request: int | None = None


@dataclass(frozen=True, slots=True)
class RateLimited:
    """The venue says we send too much; it usually disconnects next."""

    message: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Reconnect now (Binance serverShutdown, OKX 64008 notice, Kraken maintenance)."""

    reason: str
    #: Seconds to wait before reconnecting (Kraken: ≥ 5 s after maintenance).
    delay: float = 0.0


class Liveness(NamedTuple):
    """A heartbeat or a pong: the connection is alive (`id`: per-product heartbeat)."""

    id: str | None = None
    seq: int | None = None
    last_trade_id: int | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """Bad input in a frame: counted under `code` in the venue's health, nothing else changes."""

    code: str
    detail: str = ""


Event = Tick | TradeEvent | Acked | Rejected | RequestFailed | RateLimited | Shutdown | Liveness | Problem
