"""The wallets app's events become notifications: each user once, with the wallets wording."""

from __future__ import annotations

import pytest

from notifications.apps import APPROVALS, TRANSACTIONS
from notifications.models import Notification
from notifications.services import wallet_events
from realtime_project.events import bus
from wallets import api as wallets_api

pytestmark = pytest.mark.django_db

TX = "0x" + "ab" * 32


def settled(outcome: str, users: list[int]) -> wallets_api.TransactionSettled:
    return wallets_api.TransactionSettled(
        outcome=outcome,
        user_ids=tuple(users),
        chain=1,
        hash=TX,
        sender="0x" + "11" * 20,
        recipient="0x" + "22" * 20,
        value=1.5,
        reason="execution reverted" if outcome == "failed" else None,
    )


def test_the_app_subscribes_to_the_wallets_events() -> None:
    [transactions] = [s for s in bus.subscriptions(wallets_api.TransactionSettled) if s.name == TRANSACTIONS]
    assert transactions.handler is wallet_events.transaction_settled  # NotificationsConfig.ready
    [approvals] = [s for s in bus.subscriptions(wallets_api.ApprovalWarningsRaised) if s.name == APPROVALS]
    assert approvals.handler is wallet_events.approval_warnings_raised


def test_confirmed_and_failed_transactions_notify_each_user_once(make_user) -> None:
    a, b = make_user(), make_user()
    wallet_events.transaction_settled(settled("confirmed", [a.pk, b.pk]))
    wallet_events.transaction_settled(settled("confirmed", [a.pk, b.pk]))  # a rescan: idempotent
    wallet_events.transaction_settled(settled("failed", [a.pk]))
    assert Notification.objects.filter(type="transaction_confirmed").count() == 2
    confirmed = Notification.objects.get(user=b, type="transaction_confirmed")
    assert confirmed.priority == "medium" and confirmed.data["hash"] == TX and confirmed.data["chain"] == 1
    assert confirmed.data["value"] == 1.5
    assert confirmed.title == f"Transaction confirmed: {TX[:8]}…{TX[-4:]}"
    failed = Notification.objects.get(type="transaction_failed")
    assert failed.priority == "high" and failed.data["reason"] == "execution reverted"
    assert "execution reverted" in failed.body


def test_an_unknown_user_is_skipped(make_user) -> None:
    known = make_user()
    wallet_events.transaction_settled(settled("confirmed", [424242, known.pk]))
    assert list(Notification.objects.values_list("user_id", flat=True)) == [known.pk]
