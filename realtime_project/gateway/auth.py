"""Connection authentication: session cookie, signed tickets, and origin validation.

Browsers authenticate with the Django session cookie (`SessionUserMiddleware` puts
the user in `scope["user"]`). Other clients cannot rely on cookies and browsers cannot
set headers on a WebSocket, so an authenticated REST call (`POST /api/ws-ticket/`)
returns a short-lived, single-use signed ticket passed as `?ticket=` or in an `auth`
frame. Origins are checked against an allow-list to stop cross-site WebSocket
hijacking; clients that send no Origin (non-browsers) carry no ambient cookies of a
victim, so they are allowed.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.http.cookie import parse_cookie

from .conf import gateway_settings
from .errors import Unauthenticated
from .namespaces import ANONYMOUS, Principal

TICKET_SALT = "realtime.ws-ticket"


def session_key_of(scope: dict[str, Any]) -> str | None:
    """The Django session cookie's value from the handshake's Cookie headers, if any."""
    name = settings.SESSION_COOKIE_NAME
    for header, value in scope.get("headers", ()):
        if header == b"cookie":
            key = parse_cookie(value.decode("latin-1")).get(name)
            if key:
                return key
    return None


def _user_for_session_sync(session_key: str) -> Any:
    from django.contrib.auth import get_user

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]


async def user_for_session(session_key: str) -> Any:
    """The user of a session key, exactly as Django's `auth.get_user` finds it for a
    request (backend check, session hash verification), or AnonymousUser."""
    return await database_sync_to_async(_user_for_session_sync)(session_key)


class SessionUserMiddleware:
    """`scope["user"]` from the Django session cookie, in one step.

    Replaces Channels' `AuthMiddlewareStack` (cookie, session and auth middlewares) on
    the WebSocket path: those copy the scope three times and keep each copy, a session
    wrapper and lazy objects for the life of every connection (~4 KB each, measured),
    wrap every `send`, and hop to the single database thread on every connect even when
    there is no cookie to look up — in a reconnect storm those hops queue. Here a
    connection without a session cookie is anonymous at once; one with a cookie is
    looked up once. A WebSocket never saves a session, so nothing else is needed.
    A `user` already in the scope (set by an outer layer or a test) is kept.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        # Not a coroutine: without a cookie the inner app's awaitable is returned as is, so
        # no frame of this middleware stays suspended for the life of the connection.
        if "user" not in scope:
            key = session_key_of(scope)
            if key is not None:
                return self._with_session(key, scope, receive, send)
            from django.contrib.auth.models import AnonymousUser

            # In place: the server made this scope for this connection alone.
            scope["user"] = AnonymousUser()
        return self.inner(scope, receive, send)

    async def _with_session(self, key: str, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope["user"] = await user_for_session(key)
        return await self.inner(scope, receive, send)


def issue_ticket(user_id: int) -> tuple[str, int]:
    """A signed ticket for `user_id`, valid for TICKET_TTL seconds, usable once."""
    ttl = gateway_settings().ticket_ttl
    ticket = signing.dumps({"u": int(user_id), "n": secrets.token_urlsafe(12)}, salt=TICKET_SALT)
    return ticket, ttl


def check_ticket(ticket: str) -> int:
    """Return the ticket's user id or raise `Unauthenticated` (expired/forged/reused)."""
    ttl = gateway_settings().ticket_ttl
    if not isinstance(ticket, str) or not ticket or len(ticket) > 512:
        raise Unauthenticated("invalid ticket")
    try:
        body = signing.loads(ticket, salt=TICKET_SALT, max_age=ttl)
    except signing.SignatureExpired:
        raise Unauthenticated("ticket expired; request a new one") from None
    except signing.BadSignature:
        raise Unauthenticated("invalid ticket") from None
    if not isinstance(body, dict) or not isinstance(body.get("u"), int) or not isinstance(body.get("n"), str):
        raise Unauthenticated("invalid ticket")
    # Single use: a replayed ticket (e.g. from a log or a proxy) is refused.
    if not cache.add(f"ws-ticket:{body['n']}", 1, timeout=ttl + 5):
        raise Unauthenticated("ticket already used")
    return int(body["u"])


def _load_principal_sync(user_id: int) -> Principal | None:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).only("pk", "is_staff").first()
    if user is None:
        return None
    return Principal(int(user.pk), bool(user.is_staff))


async def principal_from_ticket(ticket: str) -> Principal:
    principal = await database_sync_to_async(_load_principal_sync)(check_ticket(ticket))
    if principal is None:
        raise Unauthenticated("user is inactive or gone")
    return principal


def principal_from_user(user: Any) -> Principal:
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    return Principal(int(user.pk), bool(getattr(user, "is_staff", False)))


def query_ticket(scope: dict[str, Any]) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query).get("ticket")
    return values[0] if values else None


def origin_of(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"origin":
            return str(value.decode("latin-1"))
    return None


def origin_allowed(origin: str | None) -> bool:
    if origin is None:
        return True  # not a browser
    settings = gateway_settings()
    allowed = settings.allowed_origins
    if "*" in allowed:
        return True
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if not parts.scheme or not parts.hostname:
        return False
    normalised = f"{parts.scheme}://{parts.hostname}"
    with_port = f"{normalised}:{port}" if port else normalised
    if with_port in allowed:
        return True
    # Development servers on loopback run on arbitrary ports: embedded mode only.
    return settings.loopback_any_port and port is not None and normalised in allowed and _local(parts.hostname)


def _local(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")
