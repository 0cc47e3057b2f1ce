"""A notification added in the admin is sent like any other (issue #12, finding 15):
black-box, staff submit the admin's add form on a real uvicorn gateway (Redis,
PostgreSQL) and the user's open socket receives it live; a bad one is a form error."""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
import websockets
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient

from notifications.models import Notification

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def session_of(user: Any) -> str:
    client = DjangoClient()
    client.force_login(user)
    return client.cookies["sessionid"].value


def admin_post(url: str, session: str, form: dict[str, str]) -> tuple[int, str]:
    csrf = secrets.token_hex(16)
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf},
        method="POST",
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_a_notification_added_in_the_admin_arrives_live(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    server = live_server_factory(
        server="uvicorn", redis=redis_url, key_prefix=key_prefix, extra={"CSRF_COOKIE_SECURE": "0"}
    )
    users = get_user_model().objects
    staff = await asyncio.to_thread(
        users.create_user, "ops", password="pw-ops-1234567", is_staff=True, is_superuser=True
    )
    user = await asyncio.to_thread(users.create_user, "wes", password="pw-wes-1234567")
    staff_session, user_session = await asyncio.to_thread(session_of, staff), await asyncio.to_thread(session_of, user)

    async with websockets.connect(server.ws_url, additional_headers={"Cookie": f"sessionid={user_session}"}) as ws:
        assert json.loads(await ws.recv())["user"]["id"] == user.pk
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "notifications"}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        assert json.loads(await ws.recv())["data"]["event"] == "snapshot"

        add = f"{server.http_url}/admin/notifications/notification/add/"
        form = {
            "user": str(user.pk),
            "type": "security_warning",
            "priority": "high",
            "title": "Check your wallet",
            "body": "A new device signed in.",
            "data": '{"ip": "10.0.0.9"}',
            "_save": "Save",
        }
        status, body = await asyncio.to_thread(admin_post, add, staff_session, form)
        assert status == 302, body[-3000:]
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        while frame["type"] != "message":
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        event = frame["data"]
        assert frame["channel"] == "notifications" and event["event"] == "created" and event["unread_count"] == 1
        assert event["notification"]["title"] == "Check your wallet"
        assert event["notification"]["data"] == {"ip": "10.0.0.9"}

        # A bad one changes nothing and sends nothing.
        status, body = await asyncio.to_thread(admin_post, add, staff_session, {**form, "title": "  "})
        assert status == 200 and "errornote" in body
    assert await asyncio.to_thread(Notification.objects.filter(user=user).count) == 1
