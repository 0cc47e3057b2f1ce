"""Preferences: the pure rules (quiet hours across midnight and time zones, mute, urgent),
staff defaults, the REST API (in the OpenAPI schema) and the preferences page."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.test import Client as DjangoClient

from notifications.models import Delivery, NotificationPreference, TypeDefault
from notifications.policy import UserPolicy, in_quiet_hours

pytestmark = pytest.mark.django_db


def test_quiet_hours_span_midnight_in_the_users_time_zone() -> None:
    assert in_quiet_hours(time(22), time(7), time(23, 30)) and in_quiet_hours(time(22), time(7), time(6, 59))
    assert not in_quiet_hours(time(22), time(7), time(7)) and not in_quiet_hours(time(22), time(7), time(21, 59))
    assert in_quiet_hours(time(13), time(14), time(13, 30)) and not in_quiet_hours(None, time(7), time(3))
    policy = UserPolicy(time_zone="Europe/Paris", quiet_start=time(22), quiet_end=time(7))
    # 21:30 UTC is 22:30 in Paris in winter.
    night = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
    assert policy.suppression(type="price_alert", channel="push", priority="high", now=night) == "quiet_hours"
    assert policy.suppression(type="price_alert", channel="push", priority="urgent", now=night) is None
    assert (
        policy.suppression(
            type="price_alert", channel="push", priority="urgent", now=night, urgent_breaks_through=False
        )
        == "quiet_hours"
    )
    assert policy.suppression(type="price_alert", channel="in_app", priority="low", now=night) is None
    assert (
        policy.suppression(type="price_alert", channel="push", priority="high", now=night - timedelta(hours=1)) is None
    )
    muted = UserPolicy(muted_until=night + timedelta(minutes=5))
    assert muted.suppression(type="security_warning", channel="email", priority="urgent", now=night) == "muted"
    assert (
        muted.suppression(type="security_warning", channel="email", priority="urgent", now=night + timedelta(minutes=5))
        is None
    )


def test_the_users_choice_wins_over_staffs_default_which_wins_over_the_builtin(notes, make_user, clock) -> None:
    user = make_user(email="a@example.com")
    client = DjangoClient()
    client.force_login(user)
    assert client.get("/api/notifications/preferences/").json()["types"]["price_alert"]["email"] is False  # built-in
    TypeDefault.objects.create(type="price_alert", in_app=True, push=True, email=True)
    assert client.get("/api/notifications/preferences/").json()["types"]["price_alert"]["email"] is True  # staff
    response = client.patch(
        "/api/notifications/preferences/", {"types": {"price_alert": {"email": False}}}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["types"]["price_alert"]["email"] is False  # user
    n = notes.send(user.pk, {"type": "price_alert", "title": "BTC 100k", "priority": "high"}).notification
    assert Delivery.objects.get(notification=n, channel="email").reason == "preference"


def test_the_rest_api_reads_and_changes_everything(make_user) -> None:
    user = make_user()
    client = DjangoClient()
    client.force_login(user)
    body = client.get("/api/notifications/preferences/").json()
    assert body["channels"] == ["in_app", "push", "email"] and len(body["types"]) == 8
    assert body["quiet_hours"] is None and body["muted_until"] is None and body["email_digest"] is False
    change = {
        "types": {"marketplace_update": {"in_app": False, "push": True}},
        "time_zone": "Asia/Tokyo",
        "quiet_hours": {"start": "22:00", "end": "07:30"},
        "mute_minutes": 90,
        "email_digest": True,
    }
    body = client.patch("/api/notifications/preferences/", change, content_type="application/json").json()
    assert body["types"]["marketplace_update"] == {
        "label": "Marketplace update",
        "in_app": False,
        "push": True,
        "email": True,  # built-in: only the digest ever emails marketplace updates (low)
    }
    assert body["time_zone"] == "Asia/Tokyo" and body["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    assert body["muted_until"] is not None and body["email_digest"] is True
    body = client.patch(
        "/api/notifications/preferences/", {"mute_minutes": 0, "quiet_hours": None}, content_type="application/json"
    ).json()
    assert body["muted_until"] is None and body["quiet_hours"] is None
    assert DjangoClient().get("/api/notifications/preferences/").status_code == 403


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"types": {"price_alert": {"push": False}, "weather": {"push": True}}}, "unknown_type", "types.weather"),
        ({"types": {"price_alert": {"sms": True}}}, "unknown_channel", "types.price_alert.sms"),
        ({"types": {"price_alert": {"push": "yes"}}}, "bad_request", "types.price_alert"),
        ({"types": {"price_alert": {"push": False}}, "time_zone": "Mars/Olympus"}, "bad_request", "time_zone"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "bad_request", "quiet_hours.start"),
        ({"quiet_hours": {"start": "22:00"}}, "bad_request", "quiet_hours"),
        ({"mute_minutes": -5}, "bad_request", "mute_minutes"),
        ({"mute_minutes": True}, "bad_request", "mute_minutes"),
        ({"muted_until": "tomorrow"}, "bad_request", "muted_until"),
        ({"email_digest": "on"}, "bad_request", "email_digest"),
        ({"colour": "blue"}, "bad_request", "colour"),
    ],
)
def test_bad_preferences_get_a_clear_error_and_change_nothing(make_user, change, code, field) -> None:
    user = make_user()
    client = DjangoClient()
    client.force_login(user)
    before = client.get("/api/notifications/preferences/").json()
    response = client.patch("/api/notifications/preferences/", change, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["details"]["field"] == field, response.json()
    assert client.get("/api/notifications/preferences/").json() == before
    assert not NotificationPreference.objects.exists()


def test_the_endpoints_are_in_the_openapi_schema(make_user) -> None:
    schema = DjangoClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert {"get", "patch"} <= set(paths["/api/notifications/preferences/"])
    for path in (
        "/api/notifications/push/",
        "/api/notifications/push/subscriptions/",
        "/api/notifications/push/receipt/",
    ):
        assert path in paths
    assert "Preferences" in schema["components"]["schemas"]


def test_the_preferences_page_saves_and_shows_errors(make_user) -> None:
    user = make_user()
    client = DjangoClient()
    assert client.get("/notifications/preferences/").status_code == 302  # sign in first
    client.force_login(user)
    page = client.get("/notifications/preferences/")
    assert page.status_code == 200 and b"Notification settings" in page.content
    form = {
        "time_zone": "Europe/Paris",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "mute": "60",
        "email_digest": "on",
    }
    form.update({"security_warning__in_app": "on", "security_warning__push": "on", "security_warning__email": "on"})
    response = client.post("/notifications/preferences/", form)
    assert response.status_code == 302 and response["Location"].endswith("?saved=1")
    prefs = client.get("/api/notifications/preferences/").json()
    assert prefs["time_zone"] == "Europe/Paris" and prefs["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert prefs["types"]["security_warning"] == {
        "label": "Security warning",
        "in_app": True,
        "push": True,
        "email": True,
    }
    assert prefs["types"]["price_alert"]["push"] is False and prefs["muted_until"] is not None
    bad = client.post("/notifications/preferences/", {**form, "time_zone": "Nowhere/Land"})
    assert bad.status_code == 400 and b"unknown time zone" in bad.content
    assert client.get("/api/notifications/preferences/").json()["time_zone"] == "Europe/Paris"


def test_the_service_worker_is_served_at_the_root() -> None:
    response = DjangoClient().get("/sw.js")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/" and b"showNotification" in response.content
