"""Balance reads of watched addresses (native and ERC-20) at a given block."""

from __future__ import annotations

from collections.abc import Iterable

from .rpc import ChainClient

BALANCE_OF = "0x70a08231"  # balanceOf(address)


def read_balances(
    client: ChainClient, pairs: Iterable[tuple[str, str]], *, block: int
) -> dict[tuple[str, str], int | None]:
    """Balances of (address, token) pairs (lowercase; token "" = native) at `block`, one batch."""
    ordered = sorted({(a.lower(), t.lower()) for a, t in pairs})
    requests = [(a, "") if not t else (t, BALANCE_OF + "0" * 24 + a[2:]) for a, t in ordered]
    out: dict[tuple[str, str], int | None] = {}
    for pair, value in zip(ordered, client.balances(requests, block), strict=True):
        if isinstance(value, bytes):
            # An empty or short reply: no contract (yet) or no balanceOf.
            out[pair] = int.from_bytes(value[:32], "big") if len(value) >= 32 else None
        else:
            out[pair] = value
    return out
