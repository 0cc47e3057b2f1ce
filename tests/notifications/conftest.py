"""Fixtures of the notifications tests: users, the app's API on a movable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from notifications import api
from tests.support.clock import FakeClock

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall=T0)


class ClockedApi:
    """`notifications.api` with each call's `now` read from the test clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = getattr(api, name)
        return lambda *args, **kwargs: call(*args, now=self.clock.now(), **kwargs)


@pytest.fixture
def notes(clock: FakeClock) -> ClockedApi:
    return ClockedApi(clock)


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    counter = iter(range(1, 10_000))

    def make(**extra: Any) -> Any:
        # No password: hashing costs ~0.3 s per user and nothing here signs in with one.
        return get_user_model().objects.create_user(username=f"n-user-{next(counter)}", password=None, **extra)

    return make


def note(**extra: Any) -> dict[str, Any]:
    return {"type": "security_warning", "title": "New sign-in", "priority": "high", **extra}


# --- delivery beyond the socket: the local push service, VAPID, SMTP (issue #14) ---------


@pytest.fixture
def delivery_settings(settings: Any, vapid_pem: str) -> Any:
    """Push to the loopback push service (allowed only here), short timeouts."""
    settings.NOTIFICATIONS = {
        "VAPID_PRIVATE_KEY": vapid_pem,
        "VAPID_SUBJECT": "mailto:ops@example.com",
        "PUSH_ALLOW_INSECURE": True,
        "PUSH_ALLOW_PRIVATE": True,
        "PUSH_TIMEOUT": 0.5,
        "SITE_URL": "https://markets.example",
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_TIMEOUT = 0.5
    return settings


def subscribe(user: Any, sub: Any, now: datetime = T0) -> Any:
    from notifications.services.push import subscription_register

    return subscription_register(user_id=user.pk, data=sub.info(), device="Test browser", now=now)
