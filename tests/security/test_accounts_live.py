"""Accounts against a real production-mode server (uvicorn, Redis, PostgreSQL), black-box:
an API token buys a WebSocket ticket, and the password-reset mail goes out over SMTP
configured by `EMAIL_URL` (a local aiosmtpd server)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import urllib.parse
import urllib.request
from typing import Any

import pytest
import websockets
from django.contrib.auth import get_user_model

from tests.support.smtp_server import smtp_server

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-live-accounts-1"


def post_json(url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


async def test_token_buys_a_ticket_for_a_socket(live_server_factory: Any, redis_url: str, key_prefix: str) -> None:
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    user = await asyncio.to_thread(get_user_model().objects.create_user, "erin", "erin@example.com", PASSWORD)
    status, body = await asyncio.to_thread(
        post_json, f"{server.http_url}/api/auth/token/", {"username": "erin", "password": PASSWORD}
    )
    assert status == 200, body
    auth = {"Authorization": f"Token {body['token']}"}
    status, ticket = await asyncio.to_thread(post_json, f"{server.http_url}/api/ws-ticket/", None, auth)
    assert status == 201, ticket
    async with websockets.connect(f"ws://127.0.0.1:{server.port}{ticket['url']}") as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert welcome["type"] == "welcome" and welcome["user"] == {"id": user.pk, "staff": False}


def test_password_reset_mail_goes_out_over_smtp_from_env(
    live_server_factory: Any, redis_url: str, key_prefix: str
) -> None:
    get_user_model().objects.create_user("fay", "fay@example.com", PASSWORD)
    with smtp_server() as (handler, port):
        server = live_server_factory(
            server="uvicorn",
            redis=redis_url,
            key_prefix=key_prefix,
            extra={
                "EMAIL_URL": f"smtp://127.0.0.1:{port}",
                "DEFAULT_FROM_EMAIL": "Accounts <accounts@example.com>",
                # urllib keeps `Secure` cookies for HTTPS; this server speaks plain HTTP.
                "CSRF_COOKIE_SECURE": "0",
            },
        )
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = browser.open(f"{server.http_url}/accounts/password/reset/", timeout=10).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page[:500]
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), "email": "fay@example.com"}).encode()
        request = urllib.request.Request(
            f"{server.http_url}/accounts/password/reset/",
            data=form,
            headers={"Referer": f"{server.http_url}/accounts/password/reset/"},
        )
        done = browser.open(request, timeout=10)
        assert done.geturl().endswith("/accounts/password/reset/done/")
        (message,) = handler.messages
    assert message["To"] == "fay@example.com" and "accounts@example.com" in message["From"]
    body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert re.search(r"/accounts/password/reset/key/\S+", body), body
