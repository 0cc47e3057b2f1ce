"""Who an announcement's audience is, resolved when it is published."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model

from .choices import Audience

logger = logging.getLogger("notifications.audience")


def staff_user_ids() -> set[int]:
    return set(get_user_model().objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True))


def wallet_chain_user_ids(chain_id: int) -> set[int]:
    """Users with a linked wallet on `chain_id`.

    Prefers the wallets app's `users_with_wallet_on_chain(chain_id)` when it provides
    one; otherwise reads its models: a wallet is on the chains it lists, and a wallet
    listing none is on every enabled chain (the wallets app's documented meaning).
    """
    try:
        wallets_api: Any = importlib.import_module("wallets.api")
    except ImportError:
        wallets_api = None
    direct = getattr(wallets_api, "users_with_wallet_on_chain", None)
    if callable(direct):
        return {int(u) for u in direct(chain_id)}
    wallet_model: Any = apps.get_model("wallets", "Wallet")
    fields = {f.name for f in wallet_model._meta.get_fields()}
    if "chains" not in fields:
        logger.warning("cannot resolve wallets on chain %s: the wallets app has no chain data", chain_id)
        return set()
    chain_model: Any = apps.get_model("wallets", "Chain")
    chain = chain_model.objects.filter(chain_id=chain_id).first()
    if chain is None:
        return set()
    wallets = wallet_model.objects.filter(chains=chain)
    users = set(wallets.values_list("user_id", flat=True))
    if getattr(chain, "enabled", True):
        users |= set(wallet_model.objects.filter(chains__isnull=True).values_list("user_id", flat=True))
    return {int(u) for u in users}


def audience_user_ids(audience: str, chain_id: int | None) -> set[int] | None:
    """None means everyone (stored once, delivered on the shared `announcements` channel)."""
    if audience == Audience.EVERYONE:
        return None
    if audience == Audience.STAFF:
        return staff_user_ids()
    if audience == Audience.WALLET_CHAIN and chain_id is not None:
        return wallet_chain_user_ids(chain_id)
    return set()
