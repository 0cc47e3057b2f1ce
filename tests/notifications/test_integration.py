"""With the real wallets app: its transaction monitor calls our listener."""

from __future__ import annotations

from decimal import Decimal

import pytest

from notifications.models import Notification
from notifications.wiring import on_transaction_event

pytestmark = pytest.mark.django_db


def test_wallets_monitor_calls_the_notifications_listener(make_user) -> None:
    from wallets import monitor

    assert on_transaction_event in monitor._confirmation_listeners  # registered by NotificationsConfig.ready
    assert on_transaction_event in monitor._failure_listeners
    user = make_user()
    event = {
        "event": "confirmed",
        "user_ids": [user.pk],
        "chain": 1,
        "hash": "0x" + "cd" * 32,
        "from": "0x" + "11" * 20,
        "to": "0x" + "22" * 20,
        "value": Decimal("0.25"),  # wallets sends token units as Decimal
        "reason": None,
    }
    monitor._call_listeners([on_transaction_event], event)
    note = Notification.objects.get(user=user)
    assert note.type == "transaction_confirmed" and note.data["value"] == 0.25
