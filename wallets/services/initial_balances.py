"""Balances of a newly linked wallet, read once so the user sees them before any activity.

The scanner refreshes a balance only when activity touches it, so a wallet linked with
funds already in it would show nothing until its next transfer. On link (after commit) a
task reads, at each of the wallet's chains' cursor block, the native balance and the
balances of the tokens the chain already knows (`TokenMetadata`, capped), in one JSON-RPC
batch per chain; stores the ones not yet known; and publishes the rebuilt snapshot on
`wallet:{address}`, which open dashboards apply as a reset.

Consistency with the scanner: the reads are made at the cursor's block, and the rows are
written under a lock on the cursor row only if the cursor has not moved since (the
scanner advances it in the same transaction as the balances it refreshes); if it moved,
the reads are made again at the new cursor. Rows the scanner already wrote are never
overwritten. A chain whose first scan has not run yet is skipped: it starts at the head
and its balances follow activity.
"""

from __future__ import annotations

import logging

from django.db import transaction

from ..balances import read_balances
from ..blocks import BlockListener
from ..models import Balance, Chain, ChainCursor, TokenMetadata, Wallet
from ..publishing import publish_updates
from ..rpc import RpcError
from ..scanning.batch import BalanceChange
from ..scanning.store import upsert_balances
from ..selectors import wallet_snapshot

logger = logging.getLogger("wallets.initial_balances")

#: Known tokens whose balanceOf is read for a new wallet, per chain (one batch).
MAX_TOKENS = 200
#: Re-reads when the scanner moves the cursor between the reads and the write.
ATTEMPTS = 3


def wallet_initial_balances(*, wallet_id: int, listener: BlockListener | None = None) -> int:
    """Store the balances of a linked wallet that nothing recorded yet; returns how many."""
    wallet = Wallet.objects.filter(pk=wallet_id).first()
    if wallet is None:
        return 0
    listener = listener or BlockListener()
    stored = 0
    chosen = wallet.chains.filter(enabled=True)  # none chosen: every enabled chain
    chains = chosen if wallet.chains.exists() else Chain.objects.filter(enabled=True)
    for chain in chains.order_by("chain_id"):
        try:
            stored += _chain_balances(wallet, chain, listener)
        except RpcError as exc:
            # Not fatal: the wallet is linked; its balances follow its activity.
            logger.warning("initial balances of %s on chain %s: %s", wallet.address, chain.chain_id, exc)
    if stored:
        publish_updates([wallet_snapshot(address=wallet.address)])
    return stored


def _chain_balances(wallet: Wallet, chain: Chain, listener: BlockListener) -> int:
    address = wallet.address.lower()
    tokens = {
        token.lower(): (symbol, decimals)
        for token, symbol, decimals in TokenMetadata.objects.filter(chain=chain)
        .order_by("id")
        .values_list("address", "symbol", "decimals")[:MAX_TOKENS]
    }
    for _ in range(ATTEMPTS):
        cursor = ChainCursor.objects.filter(chain=chain).first()
        if cursor is None:
            return 0
        known = {
            t.lower()
            for t in Balance.objects.filter(chain=chain, address=wallet.address).values_list("token", flat=True)
        }
        pairs = [(address, "")] if "" not in known else []
        pairs += [(address, token) for token in tokens if token not in known]
        if not pairs:
            return 0
        block = cursor.block_number
        values = read_balances(listener.client(chain), pairs, block=block)
        changes = []
        for (_, token), value in values.items():
            if value is None or (token and value == 0):
                continue  # no balanceOf, or a token this wallet does not hold
            symbol, decimals = tokens.get(token, (chain.native_symbol, 18))
            changes.append(BalanceChange(address, token, symbol or "", decimals, 0, value, block))
        with transaction.atomic():
            locked = ChainCursor.objects.select_for_update().get(pk=cursor.pk)
            if locked.block_number != block:
                continue  # the scanner moved on: read again at the new cursor
            existing = {
                t.lower()
                for t in Balance.objects.filter(chain=chain, address=wallet.address).values_list("token", flat=True)
            }
            fresh = [c for c in changes if c.token not in existing]
            upsert_balances(chain=chain, changes=fresh)
            return len(fresh)
    return 0
