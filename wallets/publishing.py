"""Where wallet frames go: `wallet:{EIP-55 address}`, always after the transaction commits,
durably (the gateway's outbox: never lost to a Redis outage, never sent twice)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from realtime_project.gateway.api import publish_many_on_commit, publish_on_commit

from .models import WatchedTransaction
from .payloads import transaction_data
from .selectors import linked_addresses


def wallet_channel(address: str) -> str:
    return f"wallet:{address}"


def publish_update(payload: dict[str, Any]) -> None:
    """Queue a WalletUpdate on its address's channel (sent only if the transaction commits)."""
    publish_on_commit(wallet_channel(payload["address"]), payload, durable=True)


def publish_updates(payloads: list[dict[str, Any]]) -> None:
    """Queue many WalletUpdates as one batch (one history round trip and one layer
    message per gateway), sent only if the transaction commits."""
    if payloads:
        publish_many_on_commit([(wallet_channel(p["address"]), p) for p in payloads], durable=True)


def publish_transaction(tx: WatchedTransaction) -> None:
    """Queue a `transaction` frame on the linked wallets of the sender and the recipient."""
    data = transaction_data(tx)
    now_ms = int(timezone.now().timestamp() * 1000)
    for address in sorted(linked_addresses([tx.from_address, tx.to_address])):
        publish_update(
            {"type": "transaction", "address": address, "chain": tx.chain.chain_id, "data": data, "timestamp": now_ms}
        )
