"""Other apps' entry points: the wallets transaction listener and the Python API helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from notifications import api
from notifications.models import BatchedItem, Notification
from notifications.wiring import on_transaction_event

pytestmark = pytest.mark.django_db

TX = "0x" + "ab" * 32


def event(kind: str, users: list[int]) -> dict[str, object]:
    """The wallets contract's shape."""
    return {
        "event": kind,
        "user_ids": users,
        "chain": 1,
        "hash": TX,
        "from": "0x" + "11" * 20,
        "to": "0x" + "22" * 20,
        "value": "1.5",
        "reason": "execution reverted" if kind == "failed" else None,
    }


def test_confirmed_and_failed_transactions_notify_each_user_once(make_user) -> None:
    a, b = make_user(), make_user()
    assert on_transaction_event(event("confirmed", [a.pk, b.pk])) == 2
    assert on_transaction_event(event("confirmed", [a.pk, b.pk])) == 0  # a rescan: idempotent
    assert on_transaction_event(event("failed", [a.pk])) == 1
    confirmed = Notification.objects.get(user=b, type="transaction_confirmed")
    assert confirmed.priority == "medium" and confirmed.data["hash"] == TX and confirmed.data["chain"] == 1
    failed = Notification.objects.get(type="transaction_failed")
    assert failed.priority == "high" and failed.data["reason"] == "execution reverted"
    assert "execution reverted" in failed.body


def test_listener_ignores_bad_events_and_unknown_users(make_user) -> None:
    assert on_transaction_event({"event": "pending", "hash": TX}) == 0
    assert on_transaction_event({"event": "confirmed", "user_ids": [1]}) == 0  # no hash
    assert on_transaction_event(event("confirmed", [424242])) == 0
    assert Notification.objects.count() == 0


def test_python_api_helpers(make_user) -> None:
    user = make_user()
    paid = api.payment_received(user_id=user.pk, amount=Decimal("49.90"), currency="USD", reference="inv_1")
    again = api.payment_received(user_id=user.pk, amount="49.90", currency="USD", reference="inv_1")
    assert paid.created and not again.created
    assert paid.notification.title == "Payment received: 49.9 USD"
    assert paid.notification.data == {"amount": 49.9, "currency": "USD", "reference": "inv_1"}
    renewal = api.subscription_renewal(
        user_id=user.pk, plan="Pro", renews_at=datetime(2026, 12, 1, tzinfo=UTC), amount=10, currency="EUR"
    )
    assert renewal.notification.title == "Your Pro subscription renews on 2026-12-01"
    market = api.marketplace_update(user_id=user.pk, title="New bid on #7", listing_id=7)
    assert market.held and BatchedItem.objects.get().data == {"event": "update", "listing_id": 7}
    direct = api.notify(user_id=user.pk, type="security_warning", title="New sign-in", priority="urgent")
    assert direct.notification.priority == "urgent"
    with pytest.raises(api.InvalidNotification):
        api.payment_received(user_id=user.pk, amount="NaN", currency="USD", reference="x")
    with pytest.raises(api.InvalidNotification):
        api.notify(user_id=user.pk, type="spam", title="x")
