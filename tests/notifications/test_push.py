"""Web Push against a local RFC 8030 push service that checks VAPID and decrypts (RFC 8291).

Every test asserts what the push service decrypted: the exact text a browser would show.
Time is the injected clock; retries are driven by calling the services at later times.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client as DjangoClient

from notifications.errors import InvalidSubscription
from notifications.models import Delivery, Notification, PushSubscription
from notifications.services import push, push_fanout
from notifications.services.push import push_user

from .conftest import T0, subscribe

pytestmark = pytest.mark.django_db


def deliveries(n: Notification, channel: str = "push") -> list[Delivery]:
    return list(Delivery.objects.filter(notification=n, channel=channel).order_by("pk"))


def urgent(**extra: Any) -> dict[str, Any]:
    return {
        "type": "security_warning",
        "title": "New sign-in from Lisbon",
        "body": "Chrome on Linux",
        "priority": "urgent",
        **extra,
    }


def test_a_notification_reaches_the_push_service_encrypted_signed_and_readable(
    delivery_settings, push_service, notes, make_user, clock
) -> None:
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    n = notes.send(user.pk, urgent()).notification
    [row] = deliveries(n)
    assert row.state == "queued" and row.subscription is not None
    assert push_user(user_id=user.pk, now=clock.now()) == 1
    [got] = push_service.messages(sub)
    message = got.json
    assert message["title"] == "New sign-in from Lisbon" and message["body"] == "Chrome on Linux"
    assert message["id"] == f"n:{n.pk}" and message["url"] == f"/?notification=n:{n.pk}"
    assert message["icon"] == "/static/notifications/icon-192.png" and message["priority"] == "urgent"
    # RFC 8030 headers from the priority; RFC 8292 claims checked by the service.
    assert got.headers["TTL"] == str(24 * 3600) and got.headers["Urgency"] == "high"
    assert got.claims["aud"] == push_service.origin and got.claims["sub"] == "mailto:ops@example.com"
    row.refresh_from_db()
    assert row.state == "sent" and row.sent_at == clock.now() and row.attempts == 1
    # The service worker's receipt marks it delivered (and clicked).
    response = DjangoClient().post(
        "/api/notifications/push/receipt/",
        {"token": message["receipt"], "event": "clicked"},
        content_type="application/json",
    )
    assert response.status_code == 204
    row.refresh_from_db()
    assert row.state == "delivered" and row.delivered_at is not None and row.clicked_at is not None


@pytest.mark.parametrize(("priority", "ttl", "urgency"), [("high", 43200, "normal"), ("medium", 21600, "normal")])
def test_ttl_and_urgency_follow_the_priority(
    delivery_settings, push_service, notes, make_user, clock, priority, ttl, urgency
) -> None:
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    notes.send(user.pk, {"type": "payment_received", "title": "Paid", "priority": priority})
    push_user(user_id=user.pk, now=clock.now())
    [got] = push_service.messages(sub)
    assert (got.headers["TTL"], got.headers["Urgency"]) == (str(ttl), urgency)


def test_a_tampered_receipt_is_refused_and_changes_nothing(
    delivery_settings, push_service, notes, make_user, clock
) -> None:
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    n = notes.send(user.pk, urgent()).notification
    push_user(user_id=user.pk, now=clock.now())
    token = push_service.messages(sub)[0].json["receipt"]
    bad = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = DjangoClient().post(
        "/api/notifications/push/receipt/", {"token": bad, "event": "shown"}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    assert deliveries(n)[0].state == "sent"


@pytest.mark.parametrize("status", [410, 404])
def test_an_expired_subscription_is_removed(delivery_settings, push_service, notes, make_user, clock, status) -> None:
    user = make_user()
    gone, alive = push_service.new_subscription(), push_service.new_subscription()
    subscribe(user, gone)
    subscribe(user, alive)
    push_service.script(gone, status)
    n = notes.send(user.pk, urgent()).notification
    push_user(user_id=user.pk, now=clock.now())
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [alive.endpoint]
    states = sorted((d.state, d.reason) for d in deliveries(n))
    assert states == [("failed", f"subscription expired (HTTP {status}: scripted {status})"), ("sent", "")]
    assert len(push_service.messages(alive)) == 1


def test_413_truncates_the_body_and_never_fails_the_notification(
    delivery_settings, push_service, notes, make_user, clock
) -> None:
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    push_service.max_body = 700  # this push service takes less than RFC 8291's 4096 bytes
    body = "Withdrawal of 1.5 ETH to 0xabc… requested. " * 80  # ~3.5 kB
    n = notes.send(user.pk, urgent(body=body)).notification
    push_user(user_id=user.pk, now=clock.now())
    [got] = push_service.messages(sub)
    message = got.json
    assert message["title"] == "New sign-in from Lisbon" and message["truncated"] is True
    assert message["body"].endswith("…") and body.startswith(message["body"][:-1].rstrip())
    assert got.size <= 700 and message["receipt"]  # the title, link and receipt arrive whole
    [row] = deliveries(n)
    assert row.state == "sent" and row.reason == "truncated (413)"
    assert Notification.objects.get(pk=n.pk).body == body  # the inbox keeps the whole text


def test_429_honours_retry_after_then_sends(delivery_settings, push_service, notes, make_user, clock) -> None:
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    push_service.script(sub, (429, 120))
    n = notes.send(user.pk, urgent()).notification
    push_user(user_id=user.pk, now=clock.now())
    [row] = deliveries(n)
    assert row.state == "queued" and row.due_at == clock.now() + timedelta(seconds=120)
    assert row.reason.startswith("retrying: HTTP 429")
    clock.advance(119)
    assert push_user(user_id=user.pk, now=clock.now()) == 0 and push_service.messages(sub) == []  # not due yet
    clock.advance(1)
    assert push_user(user_id=user.pk, now=clock.now()) == 1
    row.refresh_from_db()
    assert row.state == "sent" and row.attempts == 2
    assert push_service.messages(sub)[0].json["title"] == "New sign-in from Lisbon"


@pytest.mark.parametrize("failure", [500, "hang"])
def test_server_errors_and_timeouts_back_off_then_fail_with_the_reason(
    delivery_settings, push_service, notes, make_user, clock, failure
) -> None:
    delivery_settings.NOTIFICATIONS = {**delivery_settings.NOTIFICATIONS, "PUSH_MAX_ATTEMPTS": 3}
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    push_service.script(sub, failure, failure, failure)
    n = notes.send(user.pk, urgent()).notification
    dues = []
    for _ in range(3):
        push.push_due(now=clock.now())
        row = deliveries(n)[0]
        if row.state != "queued":
            break
        assert row.due_at > clock.now()  # backoff: not retried at once
        dues.append((row.due_at - clock.now()).total_seconds())
        clock.set(row.due_at)
    row = deliveries(n)[0]
    expected = "HTTP 500: scripted 500" if failure == 500 else "timeout after 0.5 s"
    assert row.state == "failed" and row.reason == f"{expected} after 3 attempts" and row.attempts == 3
    assert len(dues) == 2 and all(0 < d <= 600 for d in dues)
    assert PushSubscription.objects.filter(pk=sub_pk(sub)).get().failures == 3
    assert Notification.objects.filter(pk=n.pk).exists()  # stored whatever happened


def sub_pk(sub: Any) -> int:
    return PushSubscription.objects.get(endpoint=sub.endpoint).pk


def test_several_pending_pushes_for_a_device_go_as_one_summary(
    delivery_settings, push_service, notes, make_user, clock
) -> None:
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    for i in range(5):
        notes.send(user.pk, {"type": "price_alert", "title": f"BTC crossed {i}", "priority": "high"})
    assert push_user(user_id=user.pk, now=clock.now()) == 1
    [got] = push_service.messages(sub)
    assert got.json["title"] == "5 new notifications" and got.json["count"] == 5
    assert got.json["body"] == "BTC crossed 4; BTC crossed 3; BTC crossed 2; …"
    assert set(Delivery.objects.filter(channel="push").values_list("state", flat=True)) == {"sent"}


def test_a_burst_of_1000_low_notifications_is_one_digest_and_one_push(
    delivery_settings, push_service, notes, make_user, clock
) -> None:
    delivery_settings.NOTIFICATIONS = {**delivery_settings.NOTIFICATIONS, "DIGEST_WINDOW": 60}
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    notes.send_many(
        [(user.pk, {"type": "marketplace_update", "title": f"bid {i}", "priority": "low"}) for i in range(1000)]
    )
    assert push.push_due(now=clock.now()) == 0  # held in the digest window: nothing to push
    clock.advance(60)
    assert notes.flush_digests() == 1
    # Marketplace updates are off for push by default: the user turns them on.
    push.push_due(now=clock.now())
    assert push_service.messages(sub) == []
    Delivery.objects.all().delete()
    from notifications.services.preferences import preferences_update

    preferences_update(user_id=user.pk, changes={"types": {"marketplace_update": {"push": True}}}, now=clock.now())
    notes.send_many(
        [(user.pk, {"type": "marketplace_update", "title": f"ask {i}", "priority": "low"}) for i in range(1000)]
    )
    clock.advance(60)
    assert notes.flush_digests() == 1
    assert push.push_due(now=clock.now()) == 1
    [got] = push_service.messages(sub)
    assert got.json["title"] == "1000 new marketplace updates" and push_service.count == 1


def test_read_elsewhere_cancels_the_push(delivery_settings, push_service, notes, make_user, clock) -> None:
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    n = notes.send(user.pk, urgent()).notification
    notes.mark_read(user.pk, f"n:{n.pk}")
    assert push_user(user_id=user.pk, now=clock.now()) == 0
    [row] = deliveries(n)
    assert (row.state, row.reason) == ("cancelled", "read") and push_service.count == 0


def test_preferences_quiet_hours_and_mute_suppress_push(
    delivery_settings, push_service, notes, make_user, clock
) -> None:
    from notifications.services.preferences import preferences_update

    user = make_user()
    subscribe(user, push_service.new_subscription())
    preferences_update(user_id=user.pk, changes={"types": {"price_alert": {"push": False}}}, now=clock.now())
    off = notes.send(user.pk, {"type": "price_alert", "title": "BTC 100k", "priority": "high"}).notification
    # 12:00 UTC is 21:00 in Tokyo: inside quiet hours 20:00-08:00 there.
    preferences_update(
        user_id=user.pk,
        changes={"time_zone": "Asia/Tokyo", "quiet_hours": {"start": "20:00", "end": "08:00"}},
        now=clock.now(),
    )
    quiet = notes.send(user.pk, {"type": "payment_received", "title": "Paid", "priority": "high"}).notification
    breaks_through = notes.send(user.pk, urgent()).notification
    preferences_update(user_id=user.pk, changes={"quiet_hours": None, "mute_minutes": 60}, now=clock.now())
    muted = notes.send(user.pk, urgent(title="muted")).notification
    assert [(d.state, d.reason) for d in deliveries(off)] == [("suppressed", "preference")]
    assert [(d.state, d.reason) for d in deliveries(quiet)] == [("suppressed", "quiet_hours")]
    assert [d.state for d in deliveries(breaks_through)] == ["queued"]
    assert [(d.state, d.reason) for d in deliveries(muted)] == [("suppressed", "muted")]
    assert Notification.objects.filter(user=user).count() == 4  # always stored
    assert deliveries(off, "in_app")[0].state == "sent"


def test_malformed_subscriptions_are_refused(delivery_settings, push_service, make_user, clock) -> None:
    user = make_user()
    good = push_service.new_subscription().info()
    cases = {
        "bad p256dh": {**good, "keys": {**good["keys"], "p256dh": "AAAA"}},
        "not a point": {**good, "keys": {**good["keys"], "p256dh": "BA" + "A" * 85}},
        "bad auth": {**good, "keys": {**good["keys"], "auth": "c2hvcnQ"}},
        "no keys": {"endpoint": good["endpoint"]},
        "not base64": {**good, "keys": {"p256dh": "!!!", "auth": "???"}},
        "javascript": {**good, "endpoint": "javascript:alert(1)"},
        "credentials": {**good, "endpoint": "https://user:pw@push.example.net/x"},
    }
    for name, data in cases.items():
        with pytest.raises(InvalidSubscription):
            push.subscription_register(user_id=user.pk, data=data, device="x", now=clock.now())
            pytest.fail(name)
    assert PushSubscription.objects.count() == 0


def test_a_stored_subscription_whose_keys_cannot_encrypt_fails_alone_and_is_removed(
    delivery_settings, push_service, notes, make_user, clock
) -> None:
    """Keys that passed registration but are unusable now (a row edited in the admin, a
    restored backup): that device's push fails with the reason, at once and for good;
    the user's other device in the same batch is pushed."""
    user = make_user()
    broken, fine = push_service.new_subscription(), push_service.new_subscription()
    subscribe(user, broken)
    subscribe(user, fine)
    PushSubscription.objects.filter(endpoint=broken.endpoint).update(p256dh="BA" + "A" * 85)  # off the curve
    n = notes.send(user.pk, urgent()).notification
    assert push_user(user_id=user.pk, now=clock.now()) == 1
    states = sorted((d.state, d.reason) for d in deliveries(n))
    assert states == [("failed", "invalid subscription keys: p256dh is not a point on P-256"), ("sent", "")]
    assert push_service.messages(broken) == [] and len(push_service.messages(fine)) == 1
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [fine.endpoint]
    clock.advance(3600)
    assert push.push_due(now=clock.now()) == 0  # nothing left to retry


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.net/send/1",  # not https
        "https://127.0.0.1/send/1",  # loopback
        "https://10.1.2.3/send/1",  # private
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://[::1]/send/1",
        "https://[::ffff:192.168.1.1]/send/1",  # IPv4-mapped private
        "https://localhost/send/1",  # resolves to loopback
        "https://push.example.net:8443/send/1",  # not 443
    ],
)
def test_production_refuses_insecure_and_internal_endpoints(
    settings, vapid_pem, push_service, make_user, clock, endpoint
) -> None:
    settings.NOTIFICATIONS = {"VAPID_PRIVATE_KEY": vapid_pem}  # production defaults: no SSRF
    user = make_user()
    data = {**push_service.new_subscription().info(), "endpoint": endpoint}
    client = DjangoClient()
    client.force_login(user)
    response = client.post("/api/notifications/push/subscriptions/", data, content_type="application/json")
    assert response.status_code == 400 and response.json()["details"]["field"] == "endpoint", response.json()
    assert PushSubscription.objects.count() == 0


def test_the_guard_holds_at_send_time_too(delivery_settings, push_service, notes, make_user, clock) -> None:
    """Stored while allowed, then refused when sending (e.g. settings tightened, or a name
    re-pointed at an internal address): failed with the reason, nothing sent."""
    user = make_user()
    sub = push_service.new_subscription()
    subscribe(user, sub)
    n = notes.send(user.pk, urgent()).notification
    delivery_settings.NOTIFICATIONS = {
        **delivery_settings.NOTIFICATIONS,
        "PUSH_ALLOW_PRIVATE": False,
        "PUSH_MAX_ATTEMPTS": 1,
    }
    push_user(user_id=user.pk, now=clock.now())
    [row] = deliveries(n)
    assert row.state == "failed" and "private or reserved address" in row.reason
    assert push_service.count == 0


def test_subscription_api_registers_lists_and_removes_only_ones_own(delivery_settings, push_service, make_user) -> None:
    alice, bob = make_user(), make_user()
    client = DjangoClient()
    client.force_login(alice)
    status = client.get("/api/notifications/push/").json()
    assert status["enabled"] is True and len(status["public_key"]) == 87 and status["subscriptions"] == []
    info = push_service.new_subscription().info()
    created = client.post(
        "/api/notifications/push/subscriptions/", info, content_type="application/json", HTTP_USER_AGENT="Firefox 140"
    )
    assert created.status_code == 201 and created.json()["device"] == "Firefox 140"
    again = client.post("/api/notifications/push/subscriptions/", info, content_type="application/json")
    assert again.json()["id"] == created.json()["id"]  # one row per browser endpoint
    other = DjangoClient()
    other.force_login(bob)
    assert other.delete(f"/api/notifications/push/subscriptions/{created.json()['id']}/").status_code == 404
    assert (
        client.post(
            "/api/notifications/push/unsubscribe/", {"endpoint": info["endpoint"]}, content_type="application/json"
        ).status_code
        == 204
    )
    assert PushSubscription.objects.count() == 0


def test_an_announcement_fans_out_to_devices_of_users_without_a_socket(
    delivery_settings, push_service, make_user, clock
) -> None:
    from notifications.services.announcements import announcement_create, announcement_publish
    from notifications.services.preferences import preferences_update

    users = [make_user() for _ in range(5)]
    subs = [push_service.new_subscription() for _ in users]
    for user, sub in zip(users, subs, strict=True):
        subscribe(user, sub)
    preferences_update(
        user_id=users[0].pk, changes={"types": {"system_announcement": {"push": False}}}, now=clock.now()
    )
    a = announcement_create(title="Maintenance at 02:00 UTC", body="10 minutes", priority="high", publish_at=T0, now=T0)
    assert announcement_publish(announcement_id=a.pk, now=clock.now())
    delivery_settings.NOTIFICATIONS = {**delivery_settings.NOTIFICATIONS, "PUSH_CHUNK_SIZE": 2}
    first, last = (PushSubscription.objects.order_by("pk").values_list("pk", flat=True)[i] for i in (0, 4))
    assert push_fanout.announcement_push_chunk(announcement_id=a.pk, first=first, last=last, now=clock.now()) == 4
    assert (
        push_fanout.announcement_push_chunk(announcement_id=a.pk, first=first, last=last, now=clock.now()) == 0
    )  # idempotent
    assert push_service.messages(subs[0]) == []
    for sub in subs[1:]:
        [got] = push_service.messages(sub)
        assert got.json["title"] == "Maintenance at 02:00 UTC" and got.json["id"] == f"a:{a.pk}"
    states = sorted(Delivery.objects.filter(announcement=a).values_list("state", "reason"))
    assert states == [("sent", "")] * 4 + [("suppressed", "preference")]


def test_each_device_of_a_chunk_gets_its_own_outcome_receipt_and_retry(
    delivery_settings, push_service, make_user, clock
) -> None:
    """One chunk, sent concurrently: every device gets its own outcome (410 removed, 429
    queued for Retry-After, then sent by the sweep) and a receipt naming its own row."""
    from notifications.services.announcements import announcement_create, announcement_publish

    users = [make_user() for _ in range(6)]
    subs = [push_service.new_subscription() for _ in users]
    for user, sub in zip(users, subs, strict=True):
        subscribe(user, sub)
    push_service.script(subs[2], 410)
    push_service.script(subs[5], (429, 30))
    a = announcement_create(title="Fees change on Monday", priority="high", publish_at=T0, now=T0)
    announcement_publish(announcement_id=a.pk, now=clock.now())
    ids = list(PushSubscription.objects.order_by("pk").values_list("pk", flat=True))
    assert push_fanout.announcement_push_chunk(announcement_id=a.pk, first=ids[0], last=ids[-1], now=clock.now()) == 4
    rows = {d.user_id: d for d in Delivery.objects.filter(announcement=a, channel="push")}
    assert [rows[u.pk].state for u in users] == ["sent", "sent", "failed", "sent", "sent", "queued"]
    assert rows[users[5].pk].due_at == clock.now() + timedelta(seconds=30)
    assert not PushSubscription.objects.filter(endpoint=subs[2].endpoint).exists()
    for user, sub in zip(users, subs, strict=True):
        for got in push_service.messages(sub):
            assert push.push_receipt(token=got.json["receipt"], event="shown", now=clock.now()) in (0, 1)
            assert signing_ids(got.json["receipt"]) == [rows[user.pk].pk]
    clock.advance(30)  # the 429's Retry-After: the sweep sends the announcement again
    assert push.push_due(now=clock.now()) == 1
    [retried] = push_service.messages(subs[5])
    assert retried.json["title"] == "Fees change on Monday" and retried.json["id"] == f"a:{a.pk}"
    assert Delivery.objects.get(pk=rows[users[5].pk].pk).state == "sent"


def signing_ids(token: str) -> Any:
    from django.core import signing

    return signing.loads(token, salt=push.RECEIPT_SALT)


def test_connections_to_a_push_service_are_kept_alive_across_tasks(
    delivery_settings, push_service, notes, make_user, clock
) -> None:
    """The worker process's push client keeps its connections: a second task's pushes go
    over connections the first one opened."""
    users = [make_user() for _ in range(4)]
    for user in users:
        subscribe(user, push_service.new_subscription())
        notes.send(user.pk, urgent())
    assert push_user(user_id=users[0].pk, now=clock.now()) == 1
    first = set(push_service.peers)
    for user in users[1:]:
        assert push_user(user_id=user.pk, now=clock.now()) == 1
    assert len(push_service.peers) == 4 and set(push_service.peers) == first  # one connection, reused


def test_delivery_counts_are_in_metrics(delivery_settings, push_service, notes, make_user, clock) -> None:
    from notifications import metrics

    before = metrics.totals()
    user = make_user()
    subscribe(user, push_service.new_subscription())
    metrics.count([("push", "sent", "")])
    text = DjangoClient().get("/metrics").content.decode()
    assert 'notifications_deliveries_total{channel="push",reason="",state="sent"}' in text
    assert metrics.totals()[("push", "sent", "")] == before.get(("push", "sent", ""), 0) + 1
