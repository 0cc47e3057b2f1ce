"""Strict parsing of the sources' fields: numbers as strings, seconds vs ms, ISO times."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class Malformed(ValueError):
    """One entry of a response is not the documented shape: it is skipped and counted."""


def number(value: Any) -> float:
    """A JSON number or a numeric string (Binance, Coinbase, Kraken send strings)."""
    if isinstance(value, bool) or value is None:
        raise Malformed(f"not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise Malformed(f"not a number: {value[:40]!r}") from None
    raise Malformed(f"not a number: {type(value).__name__}")


def optional_number(value: Any) -> float | None:
    """`number`, but null (CoinGecko sends nulls) and garbage become None."""
    if value is None:
        return None
    try:
        return number(value)
    except Malformed:
        return None


def epoch_ms(value: Any, *, seconds: bool) -> int:
    """An epoch timestamp in ms from seconds (CoinGecko) or ms (Binance)."""
    t = number(value)
    if t != t or t <= 0 or t > 1e15:
        raise Malformed(f"bad timestamp {value!r}")
    return int(t * 1000) if seconds else int(t)


def iso_ms(value: Any) -> int:
    """An ISO-8601 time (Coinbase `2020-03-20T00:22:57.833Z`) in ms."""
    if not isinstance(value, str):
        raise Malformed(f"not a time: {value!r}")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"not a time: {value[:40]!r}") from None
    if when.tzinfo is None:
        raise Malformed("time without zone")
    return int(when.timestamp() * 1000)


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
