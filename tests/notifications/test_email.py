"""Email through Django's SMTP backend to a local aiosmtpd server: grace period, templates,
unsubscribe headers and links, the daily digest, and every SMTP failure mode."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import signing
from django.test import Client as DjangoClient

from notifications.models import Delivery, DeliverySettings, NotificationPreference
from notifications.services import email as mail
from notifications.services.preferences import preferences_update
from tests.support.smtp_server import closed_port, silent_server, smtp_server

pytestmark = pytest.mark.django_db
GRACE = 120


@pytest.fixture
def smtp(delivery_settings: Any) -> Any:
    with smtp_server() as (handler, port):
        delivery_settings.EMAIL_HOST, delivery_settings.EMAIL_PORT = "127.0.0.1", port
        yield handler


def alert(**extra: Any) -> dict[str, Any]:
    return {
        "type": "security_warning",
        "title": "New sign-in from Lisbon",
        "body": "Chrome on Linux",
        "priority": "urgent",
        **extra,
    }


def email_row(notification_id: int) -> Delivery:
    return Delivery.objects.get(notification_id=notification_id, channel="email")


def test_an_unread_urgent_notification_is_emailed_after_the_grace_period(smtp, notes, make_user, clock) -> None:
    user = make_user(email="alice@example.com")
    n = notes.send(user.pk, alert()).notification
    row = email_row(n.pk)
    assert row.state == "queued" and row.due_at == clock.now() + timedelta(seconds=GRACE)
    clock.advance(GRACE - 1)
    assert mail.email_due(now=clock.now()) == 0 and smtp.messages == []
    clock.advance(1)
    assert mail.email_due(now=clock.now()) == 1
    [message] = smtp.messages
    assert message["To"] == "alice@example.com" and message["Subject"] == "New sign-in from Lisbon"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Chrome on Linux" in text and "https://markets.example/?notification=n:" in text
    assert "<h2" in html and "Chrome on Linux" in html
    unsubscribe = re.fullmatch(
        r"<(https://markets\.example/notifications/unsubscribe/[^/]+/)>", message["List-Unsubscribe"].strip()
    )
    assert unsubscribe is not None and unsubscribe.group(1) in text
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    row.refresh_from_db()
    assert row.state == "sent" and row.sent_at == clock.now()
    # One click (RFC 8058: the mail client POSTs) turns off email for this category only.
    path = unsubscribe.group(1).removeprefix("https://markets.example")
    response = DjangoClient().post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and b"security warning emails" in response.content
    assert NotificationPreference.objects.get(user=user, type="security_warning", channel="email").enabled is False
    assert not NotificationPreference.objects.filter(user=user, channel="push").exists()
    n2 = notes.send(user.pk, alert(title="again")).notification
    assert (email_row(n2.pk).state, email_row(n2.pk).reason) == ("suppressed", "preference")


def test_reading_it_elsewhere_within_the_grace_period_cancels_the_email(smtp, notes, make_user, clock) -> None:
    user = make_user(email="alice@example.com")
    n = notes.send(user.pk, alert()).notification
    clock.advance(30)
    notes.mark_read(user.pk, f"n:{n.pk}")
    clock.advance(GRACE)
    assert mail.email_due(now=clock.now()) == 0 and smtp.messages == []
    row = email_row(n.pk)
    assert (row.state, row.reason) == ("cancelled", "read")


def test_medium_and_low_are_not_emailed_at_once_and_users_without_address_are_skipped(
    smtp, notes, make_user, clock
) -> None:
    user, nomail = make_user(email="bob@example.com"), make_user()
    medium = notes.send(user.pk, {"type": "payment_received", "title": "Paid", "priority": "medium"}).notification
    assert not Delivery.objects.filter(notification=medium, channel="email").exists()
    n = notes.send(nomail.pk, alert()).notification
    assert (email_row(n.pk).state, email_row(n.pk).reason) == ("suppressed", "no_address")


def test_an_urgent_announcement_is_emailed_to_recipients_who_want_announcement_email(
    smtp, notes, make_user, clock
) -> None:
    from notifications.services.announcement_email import announcement_email_start
    from notifications.services.announcements import announcement_create, announcement_publish

    wants, default, reader, expired_for = (make_user(email=f"{n}@example.com") for n in ("ann", "ben", "cy", "di"))
    for user in (wants, reader, expired_for):
        preferences_update(
            user_id=user.pk, changes={"types": {"system_announcement": {"email": True}}}, now=clock.now()
        )
    medium = announcement_create(title="New listing", priority="medium", publish_at=clock.now(), now=clock.now())
    urgent = announcement_create(
        title="Withdrawals paused",
        body="An incident is under way.",
        priority="urgent",
        publish_at=clock.now(),
        now=clock.now(),
    )
    for a in (medium, urgent):
        assert announcement_publish(announcement_id=a.pk, now=clock.now())
    assert announcement_email_start(announcement_id=medium.pk, now=clock.now()) == 0  # medium: never emailed
    assert announcement_email_start(announcement_id=urgent.pk, now=clock.now()) == 3  # off by default for ben
    assert announcement_email_start(announcement_id=urgent.pk, now=clock.now()) == 0  # idempotent
    notes.mark_read(reader.pk, f"a:{urgent.pk}")  # read on the site within the grace period
    clock.advance(GRACE - 1)
    assert mail.email_due(now=clock.now()) == 0
    clock.advance(1)
    assert mail.email_due(now=clock.now()) == 2 and {m["To"] for m in smtp.messages} == {
        "ann@example.com",
        "di@example.com",
    }
    message = smtp.messages[0]
    text = message.get_body(("plain",)).get_content()
    assert message["Subject"] == "Withdrawals paused" and "An incident is under way." in text
    assert f"https://markets.example/?notification=a:{urgent.pk}" in text and "Urgent" in text
    token = re.search(r"/notifications/unsubscribe/([^/]+)/", message["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert mail.unsubscribe_check(token)[1] == "system_announcement"
    states = dict(Delivery.objects.filter(announcement=urgent, channel="email").values_list("user_id", "reason"))
    assert states == {wants.pk: "", reader.pk: "read", expired_for.pk: ""}
    assert default.pk not in states


def test_an_announcement_that_expires_during_the_grace_period_is_not_emailed(smtp, make_user, clock) -> None:
    from notifications.services.announcement_email import announcement_email_start
    from notifications.services.announcements import announcement_create, announcement_publish

    user = make_user(email="eve@example.com")
    preferences_update(user_id=user.pk, changes={"types": {"system_announcement": {"email": True}}}, now=clock.now())
    a = announcement_create(
        title="Flash maintenance",
        priority="high",
        publish_at=clock.now(),
        expires_at=clock.now() + timedelta(seconds=60),
        now=clock.now(),
    )
    announcement_publish(announcement_id=a.pk, now=clock.now())
    assert announcement_email_start(announcement_id=a.pk, now=clock.now()) == 1
    clock.advance(GRACE)
    assert mail.email_due(now=clock.now()) == 0 and smtp.messages == []
    row = Delivery.objects.get(announcement=a, channel="email")
    assert (row.state, row.reason) == ("cancelled", "expired")


def test_an_smtp_server_that_refuses_fails_the_email_with_its_words(smtp, notes, make_user, clock) -> None:
    smtp.mode = "refuse"
    user = make_user(email="gone@example.com")
    n = notes.send(user.pk, alert()).notification
    clock.advance(GRACE)
    assert mail.email_due(now=clock.now()) == 0
    row = email_row(n.pk)
    assert row.state == "failed" and "550" in row.reason and "Mailbox unavailable" in row.reason


def test_a_dropped_connection_mid_message_is_retried_and_nothing_is_lost(smtp, notes, make_user, clock) -> None:
    smtp.mode = "drop"
    user = make_user(email="alice@example.com")
    n = notes.send(user.pk, alert()).notification
    clock.advance(GRACE)
    assert mail.email_due(now=clock.now()) == 0 and smtp.drops == 1
    row = email_row(n.pk)
    assert (
        row.state == "queued"
        and row.reason.startswith("retrying: SMTP server disconnected")
        and row.due_at > clock.now()
    )
    clock.set(row.due_at)
    assert mail.email_due(now=clock.now()) == 1
    assert [m["Subject"] for m in smtp.messages] == ["New sign-in from Lisbon"]
    row.refresh_from_db()
    assert row.state == "sent" and row.attempts == 2


@pytest.mark.parametrize("failure", ["refused", "timeout"])
def test_an_unreachable_or_silent_server_is_retried_then_failed(
    delivery_settings, notes, make_user, clock, failure
) -> None:
    delivery_settings.NOTIFICATIONS = {**delivery_settings.NOTIFICATIONS, "EMAIL_MAX_ATTEMPTS": 2}
    user = make_user(email="alice@example.com")
    n = notes.send(user.pk, alert()).notification
    clock.advance(GRACE)
    with silent_server() as port:
        delivery_settings.EMAIL_HOST = "127.0.0.1"
        delivery_settings.EMAIL_PORT = closed_port() if failure == "refused" else port
        mail.email_due(now=clock.now())
        row = email_row(n.pk)
        assert row.state == "queued" and row.due_at > clock.now()
        clock.set(row.due_at)
        mail.email_due(now=clock.now())
    row = email_row(n.pk)
    expected = "SMTP connection failed" if failure == "refused" else "SMTP timeout"
    assert row.state == "failed" and row.reason.startswith(expected) and row.reason.endswith("(after 2 attempts)")


def test_unsubscribe_links_that_are_tampered_with_or_expired_change_nothing(
    delivery_settings, make_user, clock
) -> None:
    user = make_user(email="alice@example.com")
    token = mail.unsubscribe_token(user.pk, "price_alert")
    client = DjangoClient()
    page = client.get(f"/notifications/unsubscribe/{token}/")
    assert page.status_code == 200 and b"confirm-unsubscribe" in page.content  # GET changes nothing
    assert not NotificationPreference.objects.exists()
    forged = signing.dumps({"u": user.pk + 1, "c": "price_alert"}, salt="another-salt", compress=True)
    for bad in (token[:-2] + "xx", forged, "garbage"):
        response = client.post(f"/notifications/unsubscribe/{bad}/")
        assert response.status_code == 400 and b"not valid" in response.content
    delivery_settings.NOTIFICATIONS = {**delivery_settings.NOTIFICATIONS, "UNSUBSCRIBE_MAX_AGE_DAYS": 0}
    expired = client.post(f"/notifications/unsubscribe/{token}/")
    assert expired.status_code == 410 and b"expired" in expired.content
    assert not NotificationPreference.objects.exists()


def test_the_daily_digest_lists_unread_low_and_medium_at_the_local_hour(smtp, notes, make_user, clock) -> None:
    smtp_user = make_user(email="carol@example.com")
    # 12:00 UTC = 07:00 in New York: before the 08:00 digest hour there.
    preferences_update(
        user_id=smtp_user.pk, changes={"email_digest": True, "time_zone": "America/New_York"}, now=clock.now()
    )
    notes.send(smtp_user.pk, {"type": "payment_received", "title": "Paid 10 USD", "priority": "medium"})
    notes.send(smtp_user.pk, {"type": "subscription_renewal", "title": "Pro renews soon", "priority": "medium"})
    read = notes.send(smtp_user.pk, {"type": "payment_received", "title": "Paid 20 USD", "priority": "medium"})
    notes.mark_read(smtp_user.pk, f"n:{read.notification.pk}")
    # By default the digest lists confirmations and marketplace updates too (only the
    # digest ever emails them); a type whose email is off is left out: price alerts by
    # default, and whatever the user switched off.
    notes.send(smtp_user.pk, {"type": "transaction_confirmed", "title": "Swap confirmed", "priority": "medium"})
    notes.send(smtp_user.pk, {"type": "marketplace_update", "title": "New bid", "priority": "low"})
    notes.send(smtp_user.pk, {"type": "price_alert", "title": "email off by default", "priority": "medium"})
    preferences_update(
        user_id=smtp_user.pk, changes={"types": {"transaction_confirmed": {"email": False}}}, now=clock.now()
    )
    notes.send(smtp_user.pk, {"type": "transaction_confirmed", "title": "switched off", "priority": "medium"})
    assert mail.email_digests_due(now=clock.now()) == 0
    clock.advance(3600)
    assert notes.flush_digests() == 1  # the low-priority item's window closed
    assert mail.email_digests_due(now=clock.now()) == 1
    assert mail.email_digests_due(now=clock.now()) == 0  # once a day
    [message] = smtp.messages
    assert message["Subject"] == "Your daily digest: 3 unread notifications"
    text = message.get_body(("plain",)).get_content()
    assert all(t in text for t in ("Paid 10 USD", "Pro renews soon", "New bid"))
    assert all(t not in text for t in ("Paid 20 USD", "email off by default", "switched off", "Swap confirmed"))
    token = re.search(r"/notifications/unsubscribe/([^/]+)/", message["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert mail.unsubscribe_check(token) == (smtp_user.pk, "digest")
    DjangoClient().post(f"/notifications/unsubscribe/{token}/")
    assert DeliverySettings.objects.get(user=smtp_user).email_digest is False
    assert Delivery.objects.filter(channel="email", state="sent", reason="daily digest").count() == 3


def test_saving_the_preferences_page_keeps_untouched_switches_on_staffs_defaults(make_user) -> None:
    """The page posts every switch: only the ones the user changed become their choices,
    so a default that staff set later still reaches the others."""
    from notifications.models import TypeDefault

    user = make_user(email="dan@example.com")
    client = DjangoClient()
    client.force_login(user)
    form = {
        f"{t}__{c}": "on"
        for t, channels in client.get("/api/notifications/preferences/").json()["types"].items()
        for c in ("in_app", "push", "email")
        if channels[c]
    }
    del form["payment_received__email"]  # the one switch the user changes
    response = client.post("/notifications/preferences/", {**form, "time_zone": "UTC", "email_digest": "on"})
    assert response.status_code == 302
    assert list(NotificationPreference.objects.filter(user=user).values_list("type", "channel", "enabled")) == [
        ("payment_received", "email", False)
    ]
    TypeDefault.objects.create(type="price_alert", in_app=True, push=True, email=True)
    prefs = client.get("/api/notifications/preferences/").json()
    assert prefs["types"]["price_alert"]["email"] is True and prefs["types"]["payment_received"]["email"] is False
    assert prefs["email_digest"] is True
