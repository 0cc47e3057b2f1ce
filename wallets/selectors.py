"""Reads of the wallets app (no writes here)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet

from .models import OPEN_STATUSES, Balance, Chain, TokenMetadata, Wallet, WalletActivity, WatchedTransaction
from .payloads import stored, transaction_data, units


class UnknownChain(LookupError):
    code = "unknown_chain"


def chain_get(*, chain_id: int) -> Chain:
    try:
        return Chain.objects.get(chain_id=chain_id)
    except (Chain.DoesNotExist, ValueError, TypeError):
        raise UnknownChain(f"unknown chain id {chain_id!r}") from None


def enabled_chains() -> QuerySet[Chain]:
    return Chain.objects.filter(enabled=True)


def watched_addresses(*, chain: Chain) -> set[str]:
    """Lowercase addresses linked by anyone for `chain` (a wallet with no chains means all)."""
    rows = Wallet.objects.filter(Q(chains=chain) | Q(chains__isnull=True)).values_list("address", flat=True).distinct()
    return {a.lower() for a in rows}


def linked_addresses(addresses: Iterable[str]) -> set[str]:
    """The subset of `addresses` (any case) that some user linked, checksummed."""
    wanted = {a for a in addresses if a}
    if not wanted:
        return set()
    from .addresses import checksum_lower

    checksummed = {checksum_lower(a.lower()) for a in wanted}
    return set(Wallet.objects.filter(address__in=checksummed).values_list("address", flat=True).distinct())


def wallets_of(*, user_id: int) -> QuerySet[Wallet]:
    return Wallet.objects.filter(user_id=user_id).prefetch_related("chains").order_by("id")


def user_owns_address(*, user_id: int, address: str) -> bool:
    return Wallet.objects.filter(user_id=user_id, address=address).exists()


def activity_for(*, address: str, chain_id: int | None = None, kind: str | None = None) -> QuerySet[WalletActivity]:
    qs = WalletActivity.objects.filter(address=address).select_related("chain")
    if chain_id is not None:
        qs = qs.filter(chain__chain_id=chain_id)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def verified_owner_ids(*, address: str) -> list[int]:
    """Users (active or not) who proved they control `address` (checksummed) by a signature."""
    return list(
        Wallet.objects.filter(address=address, verified_at__isnull=False, watch_only=False)
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()
    )


def user_ids_for_addresses(addresses: Iterable[str]) -> set[int]:
    linked = linked_addresses(addresses)
    return set(Wallet.objects.filter(address__in=linked).values_list("user_id", flat=True))


def transaction_get(*, chain_id: int, tx_hash: str) -> WatchedTransaction | None:
    return WatchedTransaction.objects.select_related("chain").filter(chain__chain_id=chain_id, hash=tx_hash).first()


def open_transactions(*, chain: Chain) -> QuerySet[WatchedTransaction]:
    return WatchedTransaction.objects.filter(chain=chain, status__in=OPEN_STATUSES).select_related("chain")


def wallet_snapshot(*, address: str, limit: int = 50) -> dict[str, Any]:
    """Durable-resubscribe payload of `wallet:{address}` rebuilt from the database."""
    activity = [stored(row.payload) for row in WalletActivity.objects.filter(address=address).order_by("-id")[:limit]]
    pending = [
        transaction_data(tx)
        for tx in WatchedTransaction.objects.filter(
            Q(from_address=address) | Q(to_address=address), status__in=("pending", "included")
        )
        .select_related("chain")
        .order_by("-id")[:limit]
    ]
    balances = [
        {
            "chain": b.chain.chain_id,
            "token": b.token or None,
            "symbol": b.symbol,
            "balance": units(int(b.amount), b.decimals),
            "balance_raw": str(int(b.amount)),
        }
        for b in Balance.objects.filter(address=address).select_related("chain").order_by("chain__chain_id", "token")
    ]
    from .approvals import active_warnings
    from .backfill import backfills_of

    return {
        "type": "snapshot",
        "address": address,
        "activity": activity,
        "pending": pending,
        "balances": balances,
        "warnings": active_warnings(address=address),
        "backfill": backfills_of([address])[address],
    }


def holdings_of(*, user_id: int) -> list[dict[str, Any]]:
    """Non-zero balances of the user's wallets in token units (Decimal), for the portfolio."""
    addresses = list(Wallet.objects.filter(user_id=user_id).values_list("address", flat=True))
    out: list[dict[str, Any]] = []
    rows = Balance.objects.filter(address__in=addresses).exclude(amount=0).select_related("chain")
    for b in rows.order_by("chain__chain_id", "address", "token"):
        out.append(
            {
                "chain": b.chain.chain_id,
                "address": b.address,
                "token": b.token or None,
                "symbol": b.symbol,
                "amount": Decimal(int(b.amount)).scaleb(-(b.decimals or 0)),
            }
        )
    return out


def token_metadata(*, chain: Chain, address: str) -> TokenMetadata | None:
    return TokenMetadata.objects.filter(chain=chain, address=address.lower()).first()


def stored_balances(*, chain: Chain, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Known raw balances of (address, token) pairs, all lowercase (token "" = native)."""
    from .addresses import checksum_lower

    pairs = list(pairs)
    if not pairs:
        return {}
    addresses = {checksum_lower(a) for a, _ in pairs}
    wanted = set(pairs)
    out: dict[tuple[str, str], int] = {}
    for row in Balance.objects.filter(chain=chain, address__in=addresses).values_list("address", "token", "amount"):
        key = (row[0].lower(), row[1].lower())
        if key in wanted:
            out[key] = int(row[2])
    return out
