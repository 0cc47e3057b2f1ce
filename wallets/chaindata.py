"""Plain chain records (blocks, transactions, logs, receipts) as the scanner sees them.

The RPC layer turns web3's AttributeDicts/HexBytes into these once, with lowercase hex
strings, so parsing is plain string work and the same for every provider.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Log:
    address: str  # lowercase 0x-hex
    topics: tuple[str, ...]  # lowercase 0x-hex, 32 bytes each (not checked here)
    data: str  # lowercase 0x-hex
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Tx:
    hash: str
    sender: str  # lowercase
    to: str | None  # lowercase; None for contract creation
    value: int
    nonce: int
    input: str = "0x"
    gas: int = 0
    block_number: int | None = None
    block_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: int  # seconds
    transactions: tuple[Tx, ...] = ()


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    status: int  # 1 success, 0 reverted
    block_number: int
    block_hash: str
    sender: str
    to: str | None
    gas_used: int = 0
