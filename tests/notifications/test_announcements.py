"""Announcements: stored once, per-user receipts, audiences, scheduling, the admin form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from notifications.errors import InvalidAnnouncement
from notifications.models import Announcement, AnnouncementReceipt
from notifications.selectors import notification_list
from notifications.services.announcements import announcement_create

pytestmark = pytest.mark.django_db


def test_broadcast_is_stored_once_and_counts_for_everyone(notes, make_user) -> None:
    users = [make_user() for _ in range(5)]
    announcement = notes.broadcast({"title": "Maintenance at 02:00", "body": "10 minutes", "priority": "high"})
    assert Announcement.objects.count() == 1 and AnnouncementReceipt.objects.count() == 0
    for user in users:
        assert notes.unread_count(user.pk) == 1
        [item] = notification_list(user_id=user.pk, now=notes.clock.now()).items
        assert item["id"] == f"a:{announcement.pk}" and item["type"] == "system_announcement"
        assert item["read_at"] is None and item["priority"] == "high"
    assert notes.mark_read(users[0].pk, f"a:{announcement.pk}") == 0
    assert AnnouncementReceipt.objects.count() == 1  # one receipt: only the reader's
    assert notes.unread_count(users[1].pk) == 1
    [item] = notification_list(user_id=users[0].pk, now=notes.clock.now()).items
    assert item["read_at"] == int(notes.clock.now().timestamp() * 1000)
    assert notes.dismiss(users[1].pk, f"a:{announcement.pk}") == 0
    assert notification_list(user_id=users[1].pk, now=notes.clock.now()).items == []


def test_staff_audience_is_delivered_per_user_and_hidden_from_others(notes, make_user, clock) -> None:
    staff, member = make_user(is_staff=True), make_user()
    a = announcement_create(title="Deploy freeze", audience="staff", publish_at=clock.now(), now=clock.now())
    assert notes.publish_due_announcements() == 1
    assert list(AnnouncementReceipt.objects.values_list("user_id", "targeted")) == [(staff.pk, True)]
    assert notes.unread_count(staff.pk) == 1 and notes.unread_count(member.pk) == 0
    with pytest.raises(LookupError):
        notes.mark_read(member.pk, f"a:{a.pk}")
    assert notes.mark_all_read(staff.pk) == 0


def test_scheduled_announcement_appears_at_publish_at_and_disappears_at_expiry(notes, make_user, clock) -> None:
    user = make_user()
    announcement_create(
        title="Later",
        publish_at=clock.now() + timedelta(minutes=10),
        expires_at=clock.now() + timedelta(minutes=20),
        now=clock.now(),
    )
    assert notes.publish_due_announcements() == 0 and notes.unread_count(user.pk) == 0
    clock.advance(600)
    assert notes.publish_due_announcements() == 1
    assert notes.publish_due_announcements() == 0  # published once
    assert notes.unread_count(user.pk) == 1
    clock.advance(600)
    assert notes.unread_count(user.pk) == 0


def test_publish_at_in_the_past_publishes_at_once(make_user, django_capture_on_commit_callbacks) -> None:
    user = make_user()
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        a = announcement_create(title="Past", publish_at=now - timedelta(hours=1), now=now)
    # Embedded settings run Celery eagerly: the publish task ran after commit.
    a.refresh_from_db()
    assert a.published_at is not None
    from notifications.selectors import unread_count

    assert unread_count(user.pk) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_at_delta": -60},  # expires before it publishes
        {"expires_at_delta": 0},
        {"audience": "wallet_chain"},  # needs a chain id
        {"audience": "staff", "chain_id": 1},
        {"priority": "critical"},
    ],
)
def test_service_rejects_inconsistent_announcements(fields, clock) -> None:
    delta = fields.pop("expires_at_delta", None)
    kwargs = {"audience": "everyone", "priority": "medium", **fields}
    with pytest.raises(InvalidAnnouncement):
        announcement_create(
            title="x",
            publish_at=clock.now(),
            expires_at=None if delta is None else clock.now() + timedelta(seconds=delta),
            now=clock.now(),
            **kwargs,
        )
    assert Announcement.objects.count() == 0


def admin_post(http: HttpClient, publish_at, expires_at=None, **extra):  # type: ignore[no-untyped-def]
    def split(value):  # type: ignore[no-untyped-def]
        local = timezone.localtime(value)
        return local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")

    data = {"title": "From the admin", "body": "hello", "priority": "medium", "audience": "everyone", **extra}
    data["publish_at_0"], data["publish_at_1"] = split(publish_at)
    if expires_at is not None:
        data["expires_at_0"], data["expires_at_1"] = split(expires_at)
    return http.post("/admin/notifications/announcement/add/", data)


def test_admin_form_rejects_expiry_before_publication(make_user) -> None:
    staff = make_user(is_staff=True, is_superuser=True)
    http = HttpClient()
    http.force_login(staff)
    now = timezone.now()
    response = admin_post(http, now + timedelta(hours=2), now + timedelta(hours=1))
    assert response.status_code == 200  # the form again, with the error
    assert b"expires_at must be after publish_at" in response.content
    assert Announcement.objects.count() == 0


def test_admin_form_in_the_past_publishes_at_once(make_user, django_capture_on_commit_callbacks) -> None:
    staff = make_user(is_staff=True, is_superuser=True)
    http = HttpClient()
    http.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_post(http, timezone.now() - timedelta(minutes=5))
    assert response.status_code == 302, response.content[:2000]
    a = Announcement.objects.get()
    assert a.published_at is not None and a.created_by_id == staff.pk


def test_wallet_chain_audience_reaches_users_with_a_wallet_on_that_chain(notes, make_user, clock) -> None:
    from wallets.models import Chain, Wallet

    polygon = Chain.objects.create(chain_id=137, name="Polygon", rpc_url="http://127.0.0.1:1", required_confirmations=1)
    mainnet = Chain.objects.create(chain_id=1, name="Ethereum", rpc_url="http://127.0.0.1:2", required_confirmations=1)
    on_polygon, on_every_chain, on_mainnet, no_wallet = (make_user() for _ in range(4))
    Wallet.objects.create(user=on_polygon, address="0x" + "1" * 40).chains.add(polygon)
    Wallet.objects.create(user=on_every_chain, address="0x" + "2" * 40)  # no chains listed: every enabled chain
    Wallet.objects.create(user=on_mainnet, address="0x" + "3" * 40).chains.add(mainnet)
    announcement_create(
        title="Polygon upgrade", audience="wallet_chain", chain_id=137, publish_at=clock.now(), now=clock.now()
    )
    assert notes.publish_due_announcements() == 1
    counts = {u.pk: notes.unread_count(u.pk) for u in (on_polygon, on_every_chain, on_mainnet, no_wallet)}
    assert counts == {on_polygon.pk: 1, on_every_chain.pk: 1, on_mainnet.pk: 0, no_wallet.pk: 0}


@pytest.mark.django_db(transaction=True)
def test_the_embedded_scheduler_sweep_publishes_due_announcements(make_user) -> None:
    """Embedded mode has no broker: the installed periodic sweep is what publishes."""
    from realtime_project.scheduling import EmbeddedScheduler, install_default_schedule

    user = make_user()
    assert "notifications.publish_due_announcements" in install_default_schedule()
    # As if its ETA message was lost: due, unpublished, nothing queued.
    a = Announcement.objects.create(title="Swept", publish_at=timezone.now() - timedelta(seconds=1))
    scheduler = EmbeddedScheduler()
    try:
        assert "notifications.publish_due_announcements" in scheduler.run_due()
        scheduler._running["notifications.publish_due_announcements"].result(timeout=20)
    finally:
        scheduler.stop()
    a.refresh_from_db()
    assert a.published_at is not None
    from notifications.selectors import unread_count

    assert unread_count(user.pk) == 1
