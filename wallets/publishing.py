"""Where wallet frames go, always after the transaction commits, durably (the gateway's
outbox: never lost to a Redis outage, never sent twice).

`wallet:{EIP-55 address}`: everything about the address, for users who proved they own
it (a verified link). `wallet_public:{address}`: the public chain activity of the
address (balances, transfers, approvals and their warnings, NFTs, internal transfers,
backfill progress, reorg removals), also sent there when someone linked it watch-only —
never the transaction-watch frames, nor a snapshot's pending (watched) transactions
(docs/wallets.md "Who sees what").
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from realtime_project.gateway.api import publish_many_on_commit

from .models import WatchedTransaction
from .payloads import WalletSnapshot, WalletUpdate, transaction_data
from .selectors import linked_addresses, public_snapshot, watch_only_addresses


def wallet_channel(address: str) -> str:
    return f"wallet:{address}"


def public_channel(address: str) -> str:
    return f"wallet_public:{address}"


def publish_update(payload: WalletUpdate) -> None:
    """Queue a WalletUpdate on its address's channels (sent only if the transaction commits)."""
    publish_updates([payload])


def publish_updates(payloads: Sequence[WalletUpdate | WalletSnapshot]) -> None:
    """Queue many WalletUpdates (and snapshots) as one batch (one history round trip and one layer
    message per gateway), sent only if the transaction commits."""
    if not payloads:
        return
    watched = watch_only_addresses(p["address"] for p in payloads)
    routed: list[tuple[str, WalletUpdate | WalletSnapshot]] = []
    for p in payloads:
        address = p["address"]
        routed.append((wallet_channel(address), p))
        if address in watched:
            routed.append((public_channel(address), public_snapshot(p) if p["type"] == "snapshot" else p))
    publish_many_on_commit(routed, durable=True)


def publish_transaction(tx: WatchedTransaction) -> None:
    """Queue a `transaction` frame (a watched transaction's status) for the proven owners
    of the sender and the recipient: their full channels only."""
    data = transaction_data(tx)
    now_ms = int(timezone.now().timestamp() * 1000)
    frames: list[tuple[str, WalletUpdate]] = [
        (
            wallet_channel(address),
            {"type": "transaction", "address": address, "chain": tx.chain.chain_id, "data": data, "timestamp": now_ms},
        )
        for address in sorted(linked_addresses([tx.from_address, tx.to_address]))
    ]
    publish_many_on_commit(frames, durable=True)
