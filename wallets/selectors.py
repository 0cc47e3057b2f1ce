"""Reads of the wallets app (no writes here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from .addresses import checksum_lower
from .choices import OPEN_STATUSES
from .models import (
    Balance,
    Chain,
    KnownContract,
    TokenApproval,
    Wallet,
    WalletActivity,
    WalletBackfill,
    WatchedTransaction,
)
from .payloads import (
    BackfillProgress,
    SecurityWarning,
    SnapshotBalance,
    TransactionData,
    WalletSnapshot,
    WalletUpdate,
    backfill_data,
    security_data,
    stored,
    transaction_data,
    units,
)
from .tokens import token_infos_stored


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
    checksummed = {checksum_lower(a.lower()) for a in wanted}
    return set(Wallet.objects.filter(address__in=checksummed).values_list("address", flat=True).distinct())


def wallets_of(*, user_id: int) -> QuerySet[Wallet]:
    return Wallet.objects.filter(user_id=user_id).prefetch_related("chains").order_by("id")


def user_owns_address(*, user_id: int, address: str) -> bool:
    """The user linked the address (verified or watch-only)."""
    return Wallet.objects.filter(user_id=user_id, address=address).exists()


def link_of(*, user_id: int, address: str) -> str | None:
    """How the user linked the address: "verified", "watch_only", or None (not linked)."""
    rows = set(Wallet.objects.filter(user_id=user_id, address=address).values_list("watch_only", flat=True))
    if not rows:
        return None
    return "verified" if False in rows else "watch_only"


def watch_only_addresses(addresses: Iterable[str]) -> set[str]:
    """Those of `addresses` that someone linked watch-only (their public channel has readers)."""
    return set(Wallet.objects.filter(address__in=set(addresses), watch_only=True).values_list("address", flat=True))


def owner_user_ids_for_addresses(addresses: Iterable[str]) -> set[int]:
    """Users who proved they own one of `addresses` (any case): verified links only, since
    watch-only links need no proof and nothing private follows them."""
    wanted = {checksum_lower(a.lower()) for a in addresses if a}
    return set(Wallet.objects.filter(address__in=wanted, watch_only=False).values_list("user_id", flat=True))


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


def open_transactions(*, chain: Chain) -> QuerySet[WatchedTransaction]:
    return WatchedTransaction.objects.filter(chain=chain, status__in=OPEN_STATUSES).select_related("chain")


def wallet_snapshot(*, address: str, limit: int = 50) -> WalletSnapshot:
    """Durable-resubscribe payload of `wallet:{address}` rebuilt from the database."""
    return wallet_snapshots(addresses=[address], limit=limit)[address]


def wallet_snapshots(*, addresses: Sequence[str], limit: int = 50) -> dict[str, WalletSnapshot]:
    """`wallet_snapshot` of many addresses with one query per part (histories finishing
    together publish a snapshot each: one query per address and part was most of the cost)."""
    wanted = list(dict.fromkeys(addresses))
    activity: dict[str, list[WalletUpdate]] = {a: [] for a in wanted}
    if len(wanted) == 1:
        rows = WalletActivity.objects.filter(address=wanted[0]).order_by("-id").values_list("address", "payload")
        ranked: Iterable[tuple[str, Any]] = rows[:limit]
    else:
        ranked = (
            WalletActivity.objects.filter(address__in=wanted)
            .annotate(rank=Window(RowNumber(), partition_by=[F("address")], order_by=F("id").desc()))
            .filter(rank__lte=limit)
            .order_by("address", "-id")
            .values_list("address", "payload")
        )
    for address, payload in ranked:
        activity[address].append(stored(payload))
    pending: dict[str, list[TransactionData]] = {a: [] for a in wanted}
    txs = (
        WatchedTransaction.objects.filter(
            Q(from_address__in=wanted) | Q(to_address__in=wanted), status__in=("pending", "included")
        )
        .select_related("chain")
        .order_by("-id")
    )
    for tx in txs:
        data = None
        for party in dict.fromkeys((tx.from_address, tx.to_address)):
            if party in pending and len(pending[party]) < limit:
                data = data or transaction_data(tx)
                pending[party].append(data)
    balances: dict[str, list[SnapshotBalance]] = {a: [] for a in wanted}
    for b in Balance.objects.filter(address__in=wanted).select_related("chain").order_by("chain__chain_id", "token"):
        balances[b.address].append(
            {
                "chain": b.chain.chain_id,
                "token": b.token or None,
                "symbol": b.symbol,
                "balance": units(int(b.amount), b.decimals),
                "balance_raw": str(int(b.amount)),
            }
        )
    warnings = active_warnings_of(addresses=wanted)
    backfill = backfills_of(wanted)
    return {
        a: {
            "type": "snapshot",
            "address": a,
            "activity": activity[a],
            "pending": pending[a],
            "balances": balances[a],
            "warnings": warnings[a],
            "backfill": backfill[a],
        }
        for a in wanted
    }


def public_snapshot(snapshot: WalletSnapshot) -> WalletSnapshot:
    """A snapshot as a watch-only link sees it: without the pending (watched)
    transactions, which are the proven owner's."""
    return {**snapshot, "pending": []}


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


def stored_balances(*, chain: Chain, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Known raw balances of (address, token) pairs, all lowercase (token "" = native)."""
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


def known_spenders(*, chain: Chain, spenders: Iterable[str]) -> dict[str, str]:
    """lowercase spender -> name, for the spenders that are known contracts of `chain`."""
    wanted = {checksum_lower(s) for s in spenders}
    if not wanted:
        return {}
    rows = KnownContract.objects.filter(chain=chain, address__in=wanted).values_list("address", "name")
    return {address.lower(): name for address, name in rows}


def active_warnings_of(*, addresses: Sequence[str]) -> dict[str, list[SecurityWarning]]:
    """The dangerous approvals still in force for each of `addresses` (the snapshot's
    `warnings`): one query, and one known-spender read per chain."""
    out: dict[str, list[SecurityWarning]] = {a: [] for a in addresses}
    rows = list(
        TokenApproval.objects.filter(owner__in=list(out))
        .exclude(warning="")
        .select_related("chain")
        .order_by("-raised_at", "-id")
    )
    spenders: dict[int, set[str]] = {}
    chains: dict[int, Chain] = {}
    for row in rows:
        spenders.setdefault(row.chain_id, set()).add(row.spender.lower())
        chains[row.chain_id] = row.chain
    names = {pk: known_spenders(chain=chains[pk], spenders=s) for pk, s in spenders.items()}
    for row in rows:
        info = token_infos_stored(chain_pk=row.chain_id, token=row.token.lower())
        out[row.owner].append(
            security_data(
                row,
                state="active",
                symbol=info.symbol if info else "",
                decimals=info.decimals if info else None,
                spender_name=names[row.chain_id].get(row.spender.lower(), ""),
            )
        )
    return out


def backfills_of(addresses: Sequence[str]) -> dict[str, list[BackfillProgress]]:
    """address -> progress per chain, for the API and the snapshot."""
    out: dict[str, list[BackfillProgress]] = {a: [] for a in addresses}
    rows = (
        WalletBackfill.objects.filter(address__in=list(addresses)).select_related("chain").order_by("chain__chain_id")
    )
    for row in rows:
        out.setdefault(row.address, []).append(backfill_data(row, chain_id=row.chain.chain_id))
    return out


def users_with_wallet_on_chain(*, chain_id: int) -> set[int]:
    """Users with a linked wallet on `chain_id`: a wallet is on the chains it lists, and a
    wallet listing none is on every enabled chain."""
    chain = Chain.objects.filter(chain_id=chain_id).first()
    if chain is None:
        return set()
    users = set(Wallet.objects.filter(chains=chain).values_list("user_id", flat=True))
    if chain.enabled:
        users |= set(Wallet.objects.filter(chains__isnull=True).values_list("user_id", flat=True))
    return users
