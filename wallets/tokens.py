"""Token metadata (symbol, name, decimals): read once per contract, cached, tolerant of odd tokens.

Early tokens return `bytes32` from `symbol()` (MKR, SAI) and some have no `decimals()`;
NFT contracts have no decimals at all. None of that stops a scan: what is missing is
recorded in `issues` and the value is reported as unknown (decimals None).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from realtime_project.runtime import Slot

from .rpc import ChainClient, Reverted

SYMBOL_SELECTOR = "0x95d89b41"  # symbol()
NAME_SELECTOR = "0x06fdde03"  # name()
DECIMALS_SELECTOR = "0x313ce567"  # decimals()
MAX_SYMBOL = 32


@dataclass(frozen=True, slots=True)
class TokenInfo:
    address: str  # lowercase
    symbol: str
    name: str
    decimals: int | None
    issues: str = ""


def decode_string(raw: bytes) -> str | None:
    """An ABI `string` or a `bytes32` (NUL-padded) return value; None if neither."""
    if len(raw) == 32:
        text = raw.rstrip(b"\x00")
        return _printable(text)
    if len(raw) >= 64:
        offset = int.from_bytes(raw[:32], "big")
        if offset + 32 > len(raw):
            return None
        length = int.from_bytes(raw[offset : offset + 32], "big")
        if offset + 32 + length > len(raw):
            return None
        return _printable(raw[offset + 32 : offset + 32 + length])
    return None


def _printable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text


def decode_uint8(raw: bytes) -> int | None:
    if len(raw) < 32:
        return None
    value = int.from_bytes(raw[:32], "big")
    return value if value <= 255 else None


def _call(client: ChainClient, token: str, selector: str) -> bytes | None:
    """None when the call reverts (the function does not exist).

    Any other RPC failure propagates: a transient error must not be cached as "this
    token has no symbol" (the scan stops and retries instead).
    """
    try:
        return client.call({"to": client.w3.to_checksum_address(token), "data": selector})
    except Reverted:
        return None


def read_token(client: ChainClient, token: str) -> TokenInfo:
    """Read one contract's metadata from the node."""
    issues: list[str] = []
    raw = _call(client, token, SYMBOL_SELECTOR)
    symbol = decode_string(raw) if raw else None
    if raw is None or raw == b"":
        issues.append("no symbol()")
    elif symbol is None:
        issues.append("symbol() is neither string nor bytes32")
    elif len(raw) == 32:
        issues.append("symbol() returns bytes32")
    raw = _call(client, token, NAME_SELECTOR)
    name = (decode_string(raw) if raw else None) or ""
    raw = _call(client, token, DECIMALS_SELECTOR)
    decimals = decode_uint8(raw) if raw else None
    if decimals is None:
        issues.append("no decimals()" if not raw else "decimals() out of range")
    return TokenInfo(
        address=token.lower(),
        symbol=(symbol or "")[:MAX_SYMBOL],
        name=name[:100],
        decimals=decimals,
        issues="; ".join(issues),
    )


#: Process cache: (chain id, token) -> info. Metadata never changes for a deployed token.
_CACHE: Slot[dict[tuple[int, str], TokenInfo]] = Slot("wallets.token_cache", dict)


def token_infos(*, chain_pk: int, chain_id: int, client: ChainClient, tokens: Iterable[str]) -> dict[str, TokenInfo]:
    """Metadata of `tokens` (lowercase): process cache, then the database, then the node."""
    from .models import TokenMetadata

    cache = _CACHE.get()
    wanted = {t.lower() for t in tokens if t}
    out = {t: cache[(chain_id, t)] for t in wanted if (chain_id, t) in cache}
    missing = wanted - out.keys()
    if missing:
        for row in TokenMetadata.objects.filter(chain_id=chain_pk, address__in=sorted(missing)):
            info = TokenInfo(row.address, row.symbol, row.name, row.decimals, row.issues)
            out[row.address] = cache[(chain_id, row.address)] = info
        missing -= out.keys()
    if missing:
        fetched = [read_token(client, token) for token in sorted(missing)]
        TokenMetadata.objects.bulk_create(
            [
                TokenMetadata(
                    chain_id=chain_pk,
                    address=i.address,
                    symbol=i.symbol,
                    name=i.name,
                    decimals=i.decimals,
                    issues=i.issues,
                )
                for i in fetched
            ],
            ignore_conflicts=True,
        )
        for info in fetched:
            out[info.address] = cache[(chain_id, info.address)] = info
    return out


def token_infos_stored(*, chain_pk: int, token: str) -> TokenInfo | None:
    """Metadata of one token already read (stored when first read); never asks the node."""
    from .models import TokenMetadata

    row = TokenMetadata.objects.filter(chain_id=chain_pk, address=token).first()
    return None if row is None else TokenInfo(row.address, row.symbol, row.name, row.decimals, row.issues)


def clear_cache() -> None:
    """Forget the process cache (a dev chain restarted: its contracts' addresses are reused)."""
    _CACHE.get().clear()
