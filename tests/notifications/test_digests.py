"""Low-priority batching with an injected clock: windows, digests, idempotent flushes."""

from __future__ import annotations

import pytest
from django.test import override_settings

from notifications.models import BatchedItem, Notification

pytestmark = pytest.mark.django_db


def low(title: str, type: str = "marketplace_update", **extra: object) -> dict[str, object]:
    return {"type": type, "title": title, "priority": "low", **extra}


@override_settings(NOTIFICATIONS={"DIGEST_WINDOW": 60})
def test_a_burst_within_the_window_becomes_one_digest(notes, make_user, clock) -> None:
    user = make_user()
    for i in range(3):  # at t0, t0 + 10 s, t0 + 20 s
        if i:
            clock.advance(10)
        result = notes.send(user.pk, low(f"bid {i}", data={"bid": i}))
        assert result.held and result.notification is None
    assert Notification.objects.count() == 0 and BatchedItem.objects.count() == 3
    assert notes.unread_count(user.pk) == 0  # held items are not delivered yet
    clock.advance(39)  # t0 + 59 s: the window (opened at t0) is still open
    assert notes.flush_digests() == 0
    clock.advance(1)  # t0 + 60 s
    assert notes.flush_digests() == 1
    digest = Notification.objects.get()
    assert digest.title == "3 new marketplace updates" and digest.priority == "low"
    assert digest.data["digest"] is True and digest.data["count"] == 3
    assert [i["data"]["bid"] for i in digest.data["items"]] == [0, 1, 2]
    assert digest.body == "bid 0; bid 1; bid 2"
    assert notes.flush_digests() == 0  # nothing twice
    assert notes.unread_count(user.pk) == 1


@override_settings(NOTIFICATIONS={"DIGEST_WINDOW": 60})
def test_a_single_item_is_delivered_as_itself_and_windows_are_per_type_and_user(notes, make_user, clock) -> None:
    a, b = make_user(), make_user()
    notes.send(a.pk, low("only one", dedupe_key="k1"))
    notes.send(a.pk, low("other type", type="subscription_renewal"))
    notes.send(b.pk, low("b's"))
    clock.advance(60)
    assert notes.flush_digests() == 3
    titles = sorted(Notification.objects.values_list("title", flat=True))
    assert titles == ["b's", "only one", "other type"]
    assert not Notification.objects.filter(data__has_key="digest").exists()
    # The dedupe key still holds after delivery.
    assert not notes.send(a.pk, low("only one", dedupe_key="k1")).created
    assert Notification.objects.filter(user=a).count() == 2


@override_settings(NOTIFICATIONS={"DIGEST_WINDOW": 60})
def test_a_new_window_opens_after_a_flush(notes, make_user, clock) -> None:
    user = make_user()
    notes.send(user.pk, low("first"))
    clock.advance(30)
    notes.send(user.pk, low("second"))
    clock.advance(30)
    assert notes.flush_digests() == 1
    notes.send(user.pk, low("third"))  # t0 + 60: a new window, due at t0 + 120
    clock.advance(59)
    assert notes.flush_digests() == 0
    clock.advance(1)
    assert notes.flush_digests() == 1
    assert list(Notification.objects.order_by("id").values_list("title", flat=True)) == [
        "2 new marketplace updates",
        "third",
    ]


@override_settings(NOTIFICATIONS={"DIGEST_WINDOW": 60})
def test_urgent_high_and_medium_are_never_held(notes, make_user) -> None:
    user = make_user()
    for priority in ("urgent", "high", "medium"):
        assert notes.send(user.pk, {"type": "marketplace_update", "title": priority, "priority": priority}).created
    assert Notification.objects.count() == 3 and BatchedItem.objects.count() == 0


@override_settings(NOTIFICATIONS={"DIGEST_WINDOW": 0})
def test_a_zero_window_disables_batching(notes, make_user) -> None:
    user = make_user()
    notes.send(user.pk, low("now"))
    assert Notification.objects.get().title == "now"
