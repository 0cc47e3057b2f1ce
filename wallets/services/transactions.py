"""Watching transactions: start or stop following a transaction hash for a user."""

from __future__ import annotations

from ..models import WatchedTransaction
from ..monitor import TransactionMonitor


def transaction_watch(*, user_id: int | None, chain_id: int, tx_hash: str) -> WatchedTransaction:
    return TransactionMonitor().watch(tx_hash, chain_id, user_id=user_id)


def transaction_unwatch(*, user_id: int | None, chain_id: int, tx_hash: str) -> bool:
    return TransactionMonitor().unwatch(tx_hash, chain_id, user_id=user_id)
