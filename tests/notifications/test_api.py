"""The API without sockets: persistence, idempotency, read state, counts, bad input, typed helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from notifications import api
from notifications.errors import InvalidNotification, NotificationNotFound
from notifications.models import BatchedItem, Notification

from .conftest import note

pytestmark = pytest.mark.django_db


def test_send_persists_with_every_field(notes, make_user, clock) -> None:
    user = make_user()
    result = notes.send(user.pk, note(body="Chrome on Linux", data={"ip": "10.0.0.1"}))
    assert result.created and not result.held
    row = Notification.objects.get()
    assert (row.user_id, row.type, row.title, row.body, row.priority) == (
        user.pk,
        "security_warning",
        "New sign-in",
        "Chrome on Linux",
        "high",
    )
    assert row.data == {"ip": "10.0.0.1"} and row.created_at == clock.now() and row.read_at is None
    assert notes.unread_count(user.pk) == 1


def publications(callbacks: list[Any]) -> list[Any]:
    """The socket publications among the on-commit callbacks (the delivery record's
    after-commit work, counting and enqueueing push/email, is the other kind)."""
    return [c for c in callbacks if c.__module__ == "realtime_project.gateway.api"]


def test_delivery_waits_for_commit_and_rollback_delivers_nothing(notes, make_user, django_capture_on_commit_callbacks):
    user = make_user()
    with django_capture_on_commit_callbacks() as callbacks:
        notes.send(user.pk, note())
    assert len(publications(callbacks)) == 1  # one publication, queued for after commit
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks() as rolled_back:
        with transaction.atomic():
            notes.send(user.pk, note(title="never"))
            raise RuntimeError
    assert rolled_back == [] and not Notification.objects.filter(title="never").exists()


def test_a_dedupe_key_makes_sends_idempotent(notes, make_user, django_capture_on_commit_callbacks) -> None:
    user, other = make_user(), make_user()
    with django_capture_on_commit_callbacks() as callbacks:
        first = notes.send(user.pk, note(dedupe_key="login:42"))
        second = notes.send(user.pk, note(dedupe_key="login:42", title="changed"))
        notes.send(other.pk, note(dedupe_key="login:42"))  # keys are per user
    assert first.created and not second.created
    assert second.notification is not None and second.notification.pk == first.notification.pk  # type: ignore[union-attr]
    assert Notification.objects.filter(user=user).count() == 1
    assert len(publications(callbacks)) == 2  # user once, other once


def test_mark_read_dismiss_and_counts(notes, make_user) -> None:
    user = make_user()
    ids = [notes.send(user.pk, note(title=f"n{i}")).notification.pk for i in range(3)]  # type: ignore[union-attr]
    assert notes.mark_read(user.pk, f"n:{ids[0]}") == 2
    assert notes.mark_read(user.pk, f"n:{ids[0]}") == 2  # idempotent
    assert notes.dismiss(user.pk, f"n:{ids[1]}") == 1
    assert notes.mark_all_read(user.pk) == 0
    assert Notification.objects.filter(read_at__isnull=True).count() == 1  # the dismissed one stays unread, hidden
    with pytest.raises(NotificationNotFound):
        notes.mark_read(user.pk, f"n:{ids[1]}")  # dismissed: gone from the user's view


def test_another_users_notification_is_not_found_and_unchanged(notes, make_user) -> None:
    owner, intruder = make_user(), make_user()
    pk = notes.send(owner.pk, note()).notification.pk  # type: ignore[union-attr]
    for action in (notes.mark_read, notes.dismiss):
        with pytest.raises(NotificationNotFound):
            action(intruder.pk, f"n:{pk}")
    with pytest.raises(NotificationNotFound):
        notes.mark_read(owner.pk, "n:999999")  # unknown id
    with pytest.raises(NotificationNotFound):
        notes.mark_read(owner.pk, "a:999999")
    row = Notification.objects.get(pk=pk)
    assert row.read_at is None and row.dismissed_at is None
    assert notes.mark_all_read(intruder.pk) == 0
    assert Notification.objects.get(pk=pk).read_at is None


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "nope", "title": "x"},
        {"type": "price_alert", "title": ""},
        {"type": "price_alert", "title": "x" * 201},
        {"type": "price_alert", "title": "x", "priority": "critical"},
        {"type": "price_alert", "title": "x", "data": [1, 2]},
        {"type": "price_alert", "title": "x", "data": {"blob": "x" * 10_000}},
        {"type": "price_alert", "title": "x", "data": {"o": object()}},
        {"type": "price_alert", "title": "x", "dedupe_key": ""},
        {"type": "price_alert", "title": "x", "colour": "red"},
        {"title": "x"},
    ],
)
def test_bad_sends_raise_and_write_nothing(notes, make_user, bad) -> None:
    user = make_user()
    with pytest.raises(InvalidNotification):
        notes.send(user.pk, bad)
    assert Notification.objects.count() == 0


def test_unknown_user_and_malformed_ids(notes, make_user) -> None:
    with pytest.raises(InvalidNotification):
        notes.send(987654, note())
    user = make_user()
    for bad in ("x:1", "n:", "n:-1", "n:abc", "", True, None, "n:1:2"):
        with pytest.raises(ValueError):
            notes.mark_read(user.pk, bad)


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
