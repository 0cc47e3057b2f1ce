"""A source's quote for one symbol, and the sanity rules every quote must pass."""

from __future__ import annotations

import math
from typing import NamedTuple

#: Prices above this (USD) are garbage, not a bull market: 1e9 is 10,000x today's BTC.
MAX_PRICE = 1e9
#: A 24 h change above +1,000,000 % or at/below -100 % cannot be a real move.
MAX_CHANGE_PERCENT = 1e6
MAX_VOLUME = 1e15


class Quote(NamedTuple):
    """One source's view of one symbol at one time (all prices in USD).

    `timestamp` is the source's own time for the value, in ms (or the time it was
    received for sources without one, like Kraken). `change24h` is a percent.
    A NamedTuple: adapters build ~2,000 per tick, a frozen dataclass costs 3x as much.
    """

    symbol: str
    source: str
    price: float
    timestamp: int
    change24h: float | None = None
    volume24h: float | None = None
    simulated: bool = False
    #: The venue's own time of the value (ms) when `timestamp` is not it: a stream quote's
    #: `timestamp` is when it was received (its freshness), `quoted_at` the venue's event time.
    #: 0: the venue gives no time (Kraken's REST ticker): it never counts as the newest.
    quoted_at: int | None = None


class QuoteRejected(ValueError):
    """A quote that must not reach the aggregate; `code` is the counter it goes to."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


def check_price(value: float) -> float:
    """Return `value` if it is a usable price, else raise QuoteRejected('invalid_price')."""
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise QuoteRejected("invalid_price", f"not a number: {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0 or value > MAX_PRICE:
        raise QuoteRejected("invalid_price", f"out of range: {value!r}")
    return value


def optional_change(value: float | None) -> float | None:
    """A usable 24 h change percent or None (a bad one is dropped, not the quote)."""
    if value is None or not math.isfinite(value) or value <= -100 or value > MAX_CHANGE_PERCENT:
        return None
    return value


def optional_volume(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value < 0 or value > MAX_VOLUME:
        return None
    return value


def validate_quote(quote: Quote, *, now_ms: int, future_tolerance_ms: int) -> Quote:
    """The quote with bad optional fields dropped; raises QuoteRejected if unusable."""
    price = check_price(quote.price)
    if not isinstance(quote.timestamp, int) or quote.timestamp <= 0:
        raise QuoteRejected("invalid_timestamp", f"bad timestamp {quote.timestamp!r}")
    if quote.timestamp > now_ms + future_tolerance_ms:
        raise QuoteRejected("future_timestamp", f"{quote.timestamp} is after {now_ms}")
    change = optional_change(quote.change24h)
    volume = optional_volume(quote.volume24h)
    if price == quote.price and change == quote.change24h and volume == quote.volume24h:
        return quote
    return Quote(quote.symbol, quote.source, price, quote.timestamp, change, volume, quote.simulated, quote.quoted_at)
