"""Session-cookie authentication of WebSocket connections through the production stack."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient

from tests.support.ws import Client

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def _session_cookie() -> tuple[int, str]:
    user = get_user_model().objects.create_user(username="cookie-user", password="pw")
    http = DjangoClient()
    http.force_login(user)
    return int(user.pk), http.cookies[settings.SESSION_COOKIE_NAME].value


def _count_user_lookups(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from realtime_project.gateway import auth

    calls: list[Any] = []
    real = auth.user_for_session

    async def counting(session_key: str) -> Any:
        calls.append(session_key)
        return await real(session_key)

    monkeypatch.setattr(auth, "user_for_session", counting)
    return calls


async def test_session_cookie_authenticates_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_user_lookups(monkeypatch)
    user_id, session = await _session_cookie()
    cookie = f"csrftoken=abc; {settings.SESSION_COOKIE_NAME}={session}; theme=dark"
    client = Client(headers=[(b"cookie", cookie.encode())])
    assert await client.connect()
    assert client.welcome is not None and client.welcome["user"] == {"id": user_id, "staff": False}
    assert calls == [session]
    await client.close()


async def test_session_of_a_logged_out_user_is_anonymous() -> None:
    _user_id, session = await _session_cookie()
    from django.contrib.sessions.models import Session

    await database_sync_to_async(Session.objects.filter(session_key=session).delete)()
    client = Client(headers=[(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())])
    assert await client.connect()
    assert client.welcome is not None and client.welcome["user"] is None
    await client.close()


async def test_unknown_session_cookie_is_anonymous(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_user_lookups(monkeypatch)
    client = Client(headers=[(b"cookie", f"{settings.SESSION_COOKIE_NAME}=not-a-session".encode())])
    assert await client.connect()
    assert client.welcome is not None and client.welcome["user"] is None
    assert len(calls) == 1  # looked up, found nothing
    await client.close()


async def test_no_session_cookie_is_anonymous_without_a_database_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_user_lookups(monkeypatch)
    client = Client(headers=[(b"cookie", b"csrftoken=abc")])
    assert await client.connect()
    assert client.welcome is not None and client.welcome["user"] is None
    assert calls == []  # nothing to look up: no thread hop on connect
    await client.close()
