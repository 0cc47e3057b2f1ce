"""Linking wallets to users: watch-only, proven by a signed challenge (SIWE), or unlinked."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..addresses import checksum
from ..conf import wallets_settings
from ..errors import WalletError
from ..models import Chain, Wallet, WalletChallenge
from ..scanning.backfill import backfills_on_link
from ..selectors import chain_get, enabled_chains
from ..siwe import build_message, recover_signer
from .queue import enqueue_on_commit


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
    enqueue_on_commit("wallets.tasks.initial_balances", wallet.pk)


def _backfill_on_commit(wallet: Wallet, chains: Sequence[Chain]) -> None:
    """The linked address's history on each of its chains (none chosen: every enabled one),
    read in the background (wallets/scanning/backfill.py)."""
    started = backfills_on_link(address=wallet.address, chains=list(chains) or list(enabled_chains()))
    if not started or getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return  # embedded mode: the periodic `run_backfills` starts it within seconds, off the request
    for chain_id in started:
        enqueue_on_commit("wallets.tasks.backfill_chain", chain_id)


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


def wallet_unlink(*, user_id: int, wallet_id: int) -> None:
    deleted, _ = Wallet.objects.filter(user_id=user_id, pk=wallet_id).delete()
    if not deleted:
        raise WalletError("no such wallet", code="not_found", status=404)
