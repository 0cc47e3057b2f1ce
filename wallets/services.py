"""Writes of the wallets app: chains, linking/verifying/unlinking wallets, watching transactions."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from .addresses import checksum
from .conf import wallets_settings
from .models import Chain, SkippedLog, Wallet, WalletChallenge, WatchedTransaction
from .selectors import chain_get
from .siwe import build_message, recover_signer


class WalletError(Exception):
    """A refused wallet operation; `code` is stable, the text is for humans."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
        if status:
            self.status = status


def chain_register(
    *,
    chain_id: int,
    name: str,
    rpc_url: str,
    ws_url: str = "",
    required_confirmations: int | None = None,
    poll_interval: float | None = None,
    native_symbol: str = "ETH",
    enabled: bool = True,
    start_block: int | None = None,
) -> Chain:
    """Create or update a chain; confirmations and poll interval default from the chain facts.

    `ws_url` (ws:// or wss://, optional): heads and pending transactions pushed by the node.
    """
    if ws_url and not ws_url.startswith(("ws://", "wss://")):
        raise WalletError("ws_url must start with ws:// or wss://", code="invalid_ws_url")
    conf = wallets_settings()
    chain, _ = Chain.objects.update_or_create(
        chain_id=chain_id,
        defaults={
            "name": name,
            "rpc_url": rpc_url,
            "ws_url": ws_url,
            "required_confirmations": (
                required_confirmations if required_confirmations is not None else conf.confirmations_for(chain_id)
            ),
            "poll_interval": poll_interval if poll_interval is not None else conf.poll_interval_for(chain_id),
            "native_symbol": native_symbol,
            "enabled": enabled,
            "start_block": start_block,
        },
    )
    return chain


def _chains(chain_ids: Sequence[int] | None) -> list[Chain]:
    if not chain_ids:
        return []
    chains = [chain_get(chain_id=int(c)) for c in chain_ids]
    return chains


def _address(address: str) -> str:
    try:
        return checksum(address)
    except ValueError as exc:
        raise WalletError(str(exc), code="invalid_address") from None


def wallet_link_watch_only(
    *, user_id: int, address: str, label: str = "", chain_ids: Sequence[int] | None = None
) -> Wallet:
    """Link an address the user only wants to watch (no proof of ownership)."""
    canonical = _address(address)
    chains = _chains(chain_ids)
    try:
        with transaction.atomic():
            wallet = Wallet.objects.create(user_id=user_id, address=canonical, label=label[:100], watch_only=True)
            wallet.chains.set(chains)
            _read_initial_balances_on_commit(wallet)
            _backfill_on_commit(wallet, chains)
    except IntegrityError:
        raise WalletError("this address is already linked to your account", code="already_linked", status=409) from None
    return wallet


def _read_initial_balances_on_commit(wallet: Wallet) -> None:
    from .tasks import initial_balances

    wallet_id = wallet.pk
    transaction.on_commit(lambda: initial_balances.delay(wallet_id))


def _backfill_on_commit(wallet: Wallet, chains: Sequence[Chain]) -> None:
    """The linked address's history on each of its chains (none chosen: every enabled one),
    read in the background (wallets/backfill.py)."""
    from django.conf import settings

    from .backfill import backfills_on_link
    from .selectors import enabled_chains

    started = backfills_on_link(address=wallet.address, chains=list(chains) or list(enabled_chains()))
    if not started or getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return  # embedded mode: the periodic `run_backfills` starts it within seconds, off the request
    from .tasks import backfill_chain

    transaction.on_commit(lambda: [backfill_chain.delay(chain_id) for chain_id in started])


def wallet_challenge_create(
    *, user_id: int, address: str, chain_id: int, domain: str = "", uri: str = ""
) -> WalletChallenge:
    """A fresh single-use EIP-4361 message for the user to sign with `address`.

    `domain`/`uri` are the request's host and origin; WALLETS_SIWE_DOMAIN/_URI override
    them (a site behind a proxy that rewrites Host)."""
    canonical = _address(address)
    chain_get(chain_id=chain_id)
    conf = wallets_settings()
    now = timezone.now().replace(microsecond=0)
    expires = now + timedelta(seconds=conf.challenge_ttl)
    nonce = secrets.token_hex(12)
    message = build_message(
        domain=conf.siwe_domain or domain or "localhost",
        address=canonical,
        statement=conf.siwe_statement,
        uri=conf.siwe_uri or uri or f"https://{conf.siwe_domain or domain or 'localhost'}",
        chain_id=chain_id,
        nonce=nonce,
        issued_at=now,
        expires_at=expires,
    )
    return WalletChallenge.objects.create(
        user_id=user_id, address=canonical, chain_id=chain_id, nonce=nonce, message=message, expires_at=expires
    )


def wallet_verify(
    *, user_id: int, nonce: str, signature: str, label: str = "", chain_ids: Sequence[int] | None = None
) -> Wallet:
    """Check the signature of a challenge; link (or upgrade) the wallet as verified.

    The challenge is consumed even when the signature is wrong, so a nonce is never
    tried twice (replays and brute force gain nothing).
    """
    now = timezone.now()
    with transaction.atomic():
        challenge = WalletChallenge.objects.select_for_update().filter(nonce=str(nonce)[:32], user_id=user_id).first()
        if challenge is None:
            raise WalletError("unknown challenge", code="unknown_challenge", status=404)
        if challenge.used_at is not None:
            raise WalletError("this challenge was already used; ask for a new one", code="challenge_used")
        if challenge.expires_at <= now:
            raise WalletError("this challenge expired; ask for a new one", code="challenge_expired")
        WalletChallenge.objects.filter(pk=challenge.pk).update(used_at=now)
    signer = recover_signer(challenge.message, signature)  # BadSignature (a ValueError) propagates
    if signer != challenge.address:
        raise WalletError("the message was not signed by this address", code="signature_mismatch", status=403)
    chains = _chains(chain_ids or [challenge.chain_id])
    with transaction.atomic():
        wallet, created = Wallet.objects.select_for_update().get_or_create(
            user_id=user_id, address=challenge.address, defaults={"label": label[:100]}
        )
        wallet.watch_only = False
        wallet.verified_at = now
        if label:
            wallet.label = label[:100]
        wallet.save()
        if created or chain_ids:
            wallet.chains.set(chains)
            _backfill_on_commit(wallet, chains)
        if created:
            _read_initial_balances_on_commit(wallet)
    return wallet


def wallet_link_verified(*, user_id: int, address: str) -> Wallet:
    """Link `address` to the user as verified, on every enabled chain: the address was
    proven by a Sign-In with Ethereum signature checked by the caller (accounts)."""
    canonical = _address(address)
    with transaction.atomic():
        wallet, created = Wallet.objects.select_for_update().get_or_create(user_id=user_id, address=canonical)
        wallet.watch_only = False
        wallet.verified_at = timezone.now()
        wallet.save()
        if created:
            _backfill_on_commit(wallet, [])
            _read_initial_balances_on_commit(wallet)
    return wallet


def challenges_prune(*, keep_seconds: int = 86_400) -> int:
    """Delete sign-in challenges that expired, or were used, more than `keep_seconds` ago
    (kept that long for support questions); returns how many were deleted."""
    cutoff = timezone.now() - timedelta(seconds=keep_seconds)
    stale = models.Q(expires_at__lt=cutoff) | models.Q(used_at__lt=cutoff)
    deleted, _ = WalletChallenge.objects.filter(stale).delete()
    return int(deleted)


def skipped_logs_prune(*, keep_days: int = 30) -> int:
    """Delete recorded skip reasons (malformed logs, non-standard tokens) older than
    `keep_days`; returns how many were deleted."""
    deleted, _ = SkippedLog.objects.filter(created_at__lt=timezone.now() - timedelta(days=keep_days)).delete()
    return int(deleted)


def wallet_unlink(*, user_id: int, wallet_id: int) -> None:
    deleted, _ = Wallet.objects.filter(user_id=user_id, pk=wallet_id).delete()
    if not deleted:
        raise WalletError("no such wallet", code="not_found", status=404)


def transaction_watch(*, user_id: int | None, chain_id: int, tx_hash: str) -> WatchedTransaction:
    from .monitor import TransactionMonitor

    return TransactionMonitor().watch(tx_hash, chain_id, user_id=user_id)


def transaction_unwatch(*, user_id: int | None, chain_id: int, tx_hash: str) -> bool:
    from .monitor import TransactionMonitor

    return TransactionMonitor().unwatch(tx_hash, chain_id, user_id=user_id)
