"""Who an announcement's audience is, resolved when it is published."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from wallets import api as wallets_api

from .choices import Audience


def staff_user_ids() -> set[int]:
    return set(get_user_model().objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True))


def wallet_chain_user_ids(chain_id: int) -> set[int]:
    """Users with a linked wallet on `chain_id` (the wallets app decides what that means)."""
    return wallets_api.users_with_wallet_on_chain(chain_id)


def audience_user_ids(audience: str, chain_id: int | None) -> set[int] | None:
    """None means everyone (stored once, delivered on the shared `announcements` channel)."""
    if audience == Audience.EVERYONE:
        return None
    if audience == Audience.STAFF:
        return staff_user_ids()
    if audience == Audience.WALLET_CHAIN and chain_id is not None:
        return wallet_chain_user_ids(chain_id)
    return set()
