"""Sockets end with their session, in one process (issue #12, finding 3): revocation
messages scoped to a credential, and the periodic re-validation that catches what no
message said. The in-memory layer and real Redis; the black-box run on two gateways is
`test_revocation.py`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client as DjangoClient
from django.utils import timezone
from rest_framework.authtoken.models import Token

from realtime_project.gateway import runtime
from realtime_project.gateway.api import aend_sessions
from realtime_project.gateway.auth import _revalidate_sync as revalidate_sync
from realtime_project.gateway.auth import issue_ticket, revalidate
from realtime_project.gateway.credentials import SESSION, TOKEN, Credential, credential_id
from realtime_project.gateway.revalidation import due, revalidate_once
from tests.gateway.test_hub import layer  # noqa: F401  (the in-memory layer and real Redis)
from tests.support.ws import Client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("layer")]


def make_user(name: str) -> tuple[Any, str]:
    user = get_user_model().objects.create_user(name, password=f"pw-{name}-123456")
    client = DjangoClient()
    client.force_login(user)
    return user, client.cookies["sessionid"].value


async def socket(*, session: str | None = None, ticket: str | None = None) -> Client:
    headers = [(b"cookie", f"sessionid={session}".encode())] if session else []
    client = Client(f"/ws/?ticket={ticket}" if ticket else "/ws/", headers=headers)
    assert await client.connect()
    return client


async def assert_ended(client: Client, reason: str) -> None:
    frame = await client.recv(3)
    assert frame["type"] == "error" and frame["code"] == "unauthenticated", frame
    assert frame["details"] == {"reason": reason} and frame["id"] is None
    closed = await client.comm.receive_output(3)
    assert closed == {"type": "websocket.close", "code": 4401}


async def assert_alive(client: Client) -> None:
    reply = await client.request({"type": "ping", "id": "alive"})
    assert reply["type"] == "pong", reply


def test_credential_ids_are_one_way_and_distinct() -> None:
    assert credential_id(SESSION, "abc") == Credential(SESSION, "abc").id
    assert credential_id(SESSION, "abc") != credential_id(TOKEN, "abc")
    assert "abc" not in credential_id(SESSION, "abc") and "abc" not in repr(Credential(SESSION, "abc"))
    assert Credential.decode(Credential(TOKEN, "k:1").encode()) == Credential(TOKEN, "k:1")
    assert Credential.decode("password:x") is None and Credential.decode(None) is None


async def test_sign_out_ends_that_sessions_sockets_only() -> None:
    user, key = await asyncio.to_thread(make_user, "ann")
    _, other_key = await asyncio.to_thread(make_user, "bea")
    # The same user's second session (another browser).
    second = DjangoClient()
    await asyncio.to_thread(second.force_login, user)
    second_key = second.cookies["sessionid"].value
    tab1, tab2 = await socket(session=key), await socket(session=key)
    ticket, _ = await asyncio.to_thread(issue_ticket, user.pk, Credential(SESSION, key))
    bought = await socket(ticket=ticket)
    assert bought.welcome is not None and bought.welcome["user"]["id"] == user.pk
    elsewhere, stranger = await socket(session=second_key), await socket(session=other_key)

    await aend_sessions(user.pk, reason="signed_out", session_key=key)
    for client in (tab1, tab2, bought):
        await assert_ended(client, "signed_out")
    await assert_alive(elsewhere)
    await assert_alive(stranger)

    await aend_sessions(user.pk, reason="password_changed")
    await assert_ended(elsewhere, "password_changed")
    await assert_alive(stranger)
    await stranger.close()


async def test_revalidation_ends_what_no_message_said() -> None:
    user, key = await asyncio.to_thread(make_user, "cat")
    token = await asyncio.to_thread(Token.objects.create, user=user)
    by_session = await socket(session=key)
    ticket, _ = await asyncio.to_thread(issue_ticket, user.pk, Credential(TOKEN, token.key))
    by_token = await socket(ticket=ticket)
    hub = runtime.current_hub()
    assert hub is not None
    interval = hub.settings.heartbeat_interval
    conns = list(hub.connections)
    assert due(conns, hub.clock.monotonic(), interval) == []  # just validated at connect

    def make_due() -> None:
        for conn in hub.connections:
            conn.validated_at -= interval

    # Nothing changed: a round keeps both.
    make_due()
    assert await revalidate_once(hub, revalidate) == 0
    assert due(list(hub.connections), hub.clock.monotonic(), interval) == []
    # The token replaced behind the gateway's back (no signal): the token's socket ends.
    await asyncio.to_thread(lambda: Token.objects.filter(user=user).update(key="f" * 40))
    make_due()
    assert await revalidate_once(hub, revalidate) == 1
    await assert_ended(by_token, "session_ended")
    await assert_alive(by_session)
    # The session expired: the cookie's socket ends too.
    await asyncio.to_thread(
        lambda: Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timezone.timedelta(1))
    )
    make_due()
    assert await revalidate_once(hub, revalidate) == 1
    await assert_ended(by_session, "session_ended")


async def test_revalidation_survives_a_database_error() -> None:
    _, key = await asyncio.to_thread(make_user, "dan")
    client = await socket(session=key)
    hub = runtime.current_hub()
    assert hub is not None

    async def broken(items: list[Any]) -> set[Any]:
        raise ConnectionError("database is down")

    for conn in hub.connections:
        conn.validated_at -= hub.settings.heartbeat_interval
    assert await revalidate_once(hub, broken) == 0
    await assert_alive(client)  # nobody is signed out because the database blinked
    assert len(due(list(hub.connections), hub.clock.monotonic(), hub.settings.heartbeat_interval)) == 1
    await client.close()


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cache"])
def test_revalidation_checks_sessions_as_django_does(settings: Any, engine: str) -> None:
    """The bulk check agrees with `auth.get_user` on every way a session stops authenticating."""
    from django.contrib.auth import BACKEND_SESSION_KEY, get_user
    from django.contrib.sessions.backends.base import SessionBase
    from django.http import HttpRequest

    settings.SESSION_ENGINE = engine
    users = get_user_model().objects

    def login(user: Any) -> str:
        client = DjangoClient()
        client.force_login(user)
        return client.cookies["sessionid"].value

    def django_says(key: str) -> int | None:
        from importlib import import_module

        request = HttpRequest()
        request.session = import_module(engine).SessionStore(key)  # type: ignore[attr-defined]
        found = get_user(request)
        return found.pk if found.is_authenticated else None

    ok, moved, other, foreign = (users.create_user(n, password=f"pw-{n}-1234567") for n in ("ok", "mv", "ot", "fo"))
    keys = {name: login(user) for name, user in (("ok", ok), ("moved", moved), ("other", other), ("foreign", foreign))}
    users.filter(pk=moved.pk).update(password="pbkdf2_sha256$1$x$y")  # changed behind Django's back
    store: SessionBase = __import__(engine, fromlist=["SessionStore"]).SessionStore(keys["foreign"])
    store[BACKEND_SESSION_KEY] = "some.removed.Backend"
    store.save()
    items = [
        (ok.pk, Credential(SESSION, keys["ok"])),
        (moved.pk, Credential(SESSION, keys["moved"])),
        (ok.pk, Credential(SESSION, keys["other"])),  # a session of another user
        (foreign.pk, Credential(SESSION, keys["foreign"])),
        (ok.pk, Credential(SESSION, "no-such-session")),
    ]
    ended = revalidate_sync(items)
    for user_id, credential in items:
        assert ((user_id, credential) not in ended) == (django_says(credential.secret) == user_id), credential
    assert ended == set(items[1:])
