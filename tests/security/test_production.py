"""Production refuses an insecure configuration; forged and stale tickets get nothing.

Issue #12 findings 2 (public secret key), 11 (origins) and 12 (SIWE domain), black-box:
real `manage.py` processes, a real uvicorn gateway on Redis, a real `websockets` client.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from typing import Any

import pytest
import websockets
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing

from realtime_project.gateway.auth import TICKET_SALT, issue_ticket
from tests.support import servers
from tests.support.servers import ROOT

DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"


def documented_production_env() -> dict[str, str]:
    """The variables docs/deployment.md sets for production (its `production-env` block)."""
    text = DEPLOYMENT_DOC.read_text()
    block = re.search(r"<!-- production-env -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "docs/deployment.md has no production-env block"
    env: dict[str, str] = {}
    for line in block.group(1).splitlines():
        match = re.match(r"^(?:export )?([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            env[match.group(1)] = match.group(2).strip("'\"")
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "realtime_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "dev-insecure-key-set-SECRET_KEY-in-production"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short-but-set"}, "SECRET_KEY"),
        ({"SECRET_KEY": "django-insecure-" + "x" * 60}, "SECRET_KEY"),
        ({"SECRET_KEY": secrets.token_urlsafe(50), "DEBUG": "1"}, "DEBUG"),
    ],
)
def test_production_refuses_to_start_on_an_insecure_configuration(
    extra: dict[str, str], variable: str, redis_url: str
) -> None:
    env = {"REDIS_URL": redis_url, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused", **extra}
    result = manage("serve", "--port", "0", env=env)
    assert result.returncode == 78, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("ImproperlyConfigured: ") and variable in lines[0]
    assert "Serving on" not in result.stdout


def test_embedded_mode_needs_no_configuration() -> None:
    result = manage("check", env={})
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_check_deploy_passes_on_the_documented_production_settings(redis_url: str) -> None:
    env = documented_production_env()
    assert {"SECRET_KEY", "REDIS_URL", "DATABASE_URL", "ALLOWED_HOSTS"} <= set(env)
    env.update(SECRET_KEY=secrets.token_urlsafe(50), REDIS_URL=redis_url, DATABASE_URL=servers.test_database_url())
    result = manage("check", "--deploy", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "security." not in result.stdout + result.stderr


def test_production_https_settings() -> None:
    """The settings `check --deploy` looks at, and health checks exempt from the redirect."""
    code = (
        "from django.conf import settings as s; import json; print(json.dumps([s.SECURE_SSL_REDIRECT, "
        "s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_REDIRECT_EXEMPT]))"
    )
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": secrets.token_urlsafe(50)}
    out = manage("shell", "-c", code, env=env)
    assert out.returncode == 0, out.stderr
    redirect, proxy, hsts, session_secure, csrf_secure, exempt = json.loads(out.stdout.strip().splitlines()[-1])
    assert redirect is True and proxy == ["HTTP_X_FORWARDED_PROTO", "https"] and hsts >= 31_536_000
    assert session_secure and csrf_secure
    assert all(any(re.match(p, path) for p in exempt) for path in ("healthz", "readyz", "metrics"))


class _OldSigner(signing.TimestampSigner):
    """Signs as if it were an hour ago (a stale ticket), with the right key."""

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - 3600)


def _forge(payload: dict[str, Any], *, key: str, stale: bool = False) -> str:
    signer = (_OldSigner if stale else signing.TimestampSigner)(key=key, salt=TICKET_SALT)
    return signer.sign_object(payload)


async def _first_frames(url: str, count: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """The first `count` frames, or every frame until the server closes (count None)."""
    frames: list[dict[str, Any]] = []
    async with websockets.connect(url) as ws:
        try:
            while count is None or len(frames) < count:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        except websockets.ConnectionClosed:
            pass
        return frames, ws.close_code


@pytest.mark.redis
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_forged_and_stale_tickets_are_refused_in_production(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    """With the development key public, a forged staff ticket must get nothing (finding 2)."""
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    staff = await asyncio.to_thread(get_user_model().objects.create_user, "root", password="pw", is_staff=True)
    forged = {
        "dev key": _forge({"u": staff.pk, "n": "x1"}, key=settings.DEV_SECRET_KEY),
        "stale": _forge({"u": staff.pk, "n": "x2"}, key=settings.SECRET_KEY, stale=True),
        "garbage": "not-a-ticket",
    }
    for name, ticket in forged.items():
        frames, code = await _first_frames(f"{server.ws_url}?ticket={ticket}")
        assert not any(f.get("user") for f in frames), (name, frames)
        assert [f["code"] for f in frames if f["type"] == "error"] == ["unauthenticated"], (name, frames)
        assert code == 4401, name
    # The same user with a genuine ticket is welcome (the test is not refusing everything).
    ticket, _ = issue_ticket(staff.pk)
    frames, _ = await _first_frames(f"{server.ws_url}?ticket={ticket}", count=1)
    assert frames[0]["user"] == {"id": staff.pk, "staff": True}


@pytest.mark.redis
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_production_origins_are_an_explicit_list(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    """A loopback origin on another port is refused in production (finding 11)."""
    # No REALTIME_ALLOWED_ORIGINS: the list is derived from ALLOWED_HOSTS.
    extra = {"ALLOWED_HOSTS": "127.0.0.1,rt.example.com", "REALTIME_ALLOWED_ORIGINS": ""}
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix, extra=extra)
    for origin in ("http://127.0.0.1:5173", "http://localhost:8000", "http://rt.example.com", "https://evil.example"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(server.ws_url, origin=origin):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403, origin
    for origin in ("https://rt.example.com", "https://127.0.0.1"):
        async with websockets.connect(server.ws_url, origin=origin) as ws:  # type: ignore[arg-type]
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "welcome"


def test_embedded_origins_still_allow_loopback_dev_servers(settings: Any) -> None:
    from realtime_project.gateway.auth import origin_allowed

    settings.REALTIME = {**settings.REALTIME}  # a fresh settings cache
    assert origin_allowed("http://127.0.0.1:5173") and origin_allowed("http://localhost:3000")
    assert not origin_allowed("http://evil.example:5173")


@pytest.mark.django_db
def test_siwe_message_names_the_requests_host(settings: Any) -> None:
    """The EIP-4361 domain and URI are the site's host, not `localhost` (finding 12)."""
    from eth_account import Account
    from rest_framework.test import APIClient

    from wallets.services.chains import chain_register

    settings.ALLOWED_HOSTS = ["rt.example.com"]
    chain_register(chain_id=1, name="Ethereum", rpc_url="http://127.0.0.1:1")
    user = get_user_model().objects.create_user("eve", password="pw")
    api = APIClient(HTTP_HOST="rt.example.com")
    api.force_authenticate(user)
    reply = api.post("/api/wallets/challenge/", {"address": Account.create().address, "chain": 1}, format="json")
    assert reply.status_code == 201, reply.content
    message = reply.json()["message"]
    assert message.startswith("rt.example.com wants you to sign in with your Ethereum account:\n")
    assert "\nURI: http://rt.example.com\n" in message
    settings.WALLETS = {"SIWE_DOMAIN": "example.org", "SIWE_URI": "https://example.org"}
    message = api.post("/api/wallets/challenge/", {"address": Account.create().address, "chain": 1}, format="json")
    assert message.json()["message"].startswith("example.org wants you")
