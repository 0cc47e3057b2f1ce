"""Validation of addresses and transaction hashes (pure, no Django)."""

from __future__ import annotations

import re
from functools import lru_cache

from eth_hash.auto import keccak

ADDRESS_RE = re.compile(r"^0[xX][0-9a-fA-F]{40}$")
TX_HASH_RE = re.compile(r"^0[xX][0-9a-fA-F]{64}$")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class InvalidAddress(ValueError):
    code = "invalid_address"


class InvalidTxHash(ValueError):
    code = "invalid_tx_hash"


def checksum(address: str) -> str:
    """Canonical EIP-55 form of an address given in any case.

    All-lower or all-upper input is accepted as is (no checksum in it); mixed case must be
    a correct EIP-55 checksum, because a wrong one usually means a typo.
    """
    if not isinstance(address, str) or not ADDRESS_RE.match(address):
        raise InvalidAddress("not an EVM address (0x followed by 40 hex digits)")
    body = address[2:]
    canonical = _checksum_lower("0x" + body.lower())
    if body != body.lower() and body != body.upper() and canonical[2:] != body:
        raise InvalidAddress("address has a wrong EIP-55 checksum (mixed case that does not match)")
    return canonical


@lru_cache(maxsize=65_536)
def _checksum_lower(lower: str) -> str:
    """EIP-55 of a valid lowercase address: upper-case a hex letter where its keccak nibble is >= 8.

    Direct keccak (~4x faster than eth_utils' validating `to_checksum_address`); cached
    because the scanner checksums the same watched addresses again and again.
    """
    body = lower[2:]
    digest = keccak(body.encode("ascii")).hex()
    return "0x" + "".join(ch.upper() if nibble in "89abcdef" else ch for ch, nibble in zip(body, digest, strict=False))


def checksum_lower(lower: str) -> str:
    """Checksum an address already known to be valid lowercase hex (hot path)."""
    return _checksum_lower(lower)


def normalise_tx_hash(tx_hash: str) -> str:
    if not isinstance(tx_hash, str) or not TX_HASH_RE.match(tx_hash):
        raise InvalidTxHash("not a transaction hash (0x followed by 64 hex digits)")
    return "0x" + tx_hash[2:].lower()
