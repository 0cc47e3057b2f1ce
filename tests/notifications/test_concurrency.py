"""Races on the database with real threads (separate connections): one row, one digest."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from notifications import api
from notifications.models import BatchedItem, Notification

pytestmark = pytest.mark.django_db(transaction=True)


def together(*calls: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


def test_two_sends_with_one_dedupe_key_store_one(make_user) -> None:
    user = make_user()
    spec = {"type": "payment_received", "title": "Paid", "dedupe_key": "inv_9"}
    results = together(*(lambda: api.send(user.pk, spec) for _ in range(4)))
    assert Notification.objects.filter(user=user).count() == 1
    assert sum(r.created for r in results) == 1
    assert len({r.notification.pk for r in results}) == 1


@override_settings(NOTIFICATIONS={"DIGEST_WINDOW": 60})
def test_two_flushers_deliver_a_window_once(make_user, notes, clock) -> None:
    from django.utils import timezone

    # Real time: embedded Celery runs each window's own flush task eagerly (at once,
    # with the real clock), which must find nothing due yet.
    clock.set(timezone.now())
    user = make_user()
    for i in range(5):
        notes.send(user.pk, {"type": "marketplace_update", "title": f"bid {i}", "priority": "low"})
    clock.advance(60)
    created = together(notes.flush_digests, notes.flush_digests, notes.flush_digests)
    assert sum(created) == 1
    assert Notification.objects.get().data["count"] == 5
    assert not BatchedItem.objects.filter(delivered_as__isnull=True).exists()
