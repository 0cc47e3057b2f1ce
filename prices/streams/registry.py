"""Stream protocols by source kind (the venues with a public market-data WebSocket)."""

from __future__ import annotations

from collections.abc import Iterable

from .binance import BinanceProtocol
from .coinbase import CoinbaseProtocol
from .kraken import KrakenProtocol
from .okx import OKXProtocol
from .protocol import VenueProtocol

PROTOCOLS: dict[str, type[VenueProtocol]] = {
    "binance": BinanceProtocol,
    "coinbase": CoinbaseProtocol,
    "kraken": KrakenProtocol,
    "okx": OKXProtocol,
}


def protocol_for(kind: str, *, trade_ids: Iterable[str] = ()) -> VenueProtocol:
    cls = PROTOCOLS.get(kind)
    if cls is None:
        raise ValueError(f"source kind {kind!r} has no stream")
    return cls(trade_ids)
