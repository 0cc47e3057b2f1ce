"""Connection authentication: session cookie, signed tickets, and origin validation.

Browsers authenticate with the Django session cookie (Channels' AuthMiddleware puts
the user in `scope["user"]`). Other clients cannot rely on cookies and browsers cannot
set headers on a WebSocket, so an authenticated REST call (`POST /api/ws-ticket/`)
returns a short-lived, single-use signed ticket passed as `?ticket=` or in an `auth`
frame. Origins are checked against an allow-list to stop cross-site WebSocket
hijacking; clients that send no Origin (non-browsers) carry no ambient cookies of a
victim, so they are allowed.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import AuthMiddleware, CookieMiddleware, SessionMiddleware
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache

from .conf import gateway_settings
from .errors import Unauthenticated
from .namespaces import ANONYMOUS, Principal

TICKET_SALT = "realtime.ws-ticket"


class GatewayAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware without its database hop for connections with no session.

    Channels resolves `scope["user"]` through `database_sync_to_async` on every connect,
    a hop to the single database thread even when there is no session cookie to look up;
    in a reconnect storm of anonymous clients those hops queue behind one another. A
    connection without a session cookie is anonymous: it is answered without the hop.
    """

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        if not scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME):
            from django.contrib.auth.models import AnonymousUser

            scope["user"]._wrapped = AnonymousUser()
            return
        await super().resolve_scope(scope)


def gateway_auth_stack(inner: Any) -> Any:
    """Cookies, session and user in the scope, as `channels.auth.AuthMiddlewareStack`."""
    return CookieMiddleware(SessionMiddleware(GatewayAuthMiddleware(inner)))


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
    allowed = gateway_settings().allowed_origins
    if "*" in allowed:
        return True
    parts = urlsplit(origin)
    if not parts.scheme or not parts.hostname:
        return False
    normalised = f"{parts.scheme}://{parts.hostname}"
    with_port = f"{normalised}:{parts.port}" if parts.port else normalised
    return with_port in allowed or (parts.port is not None and normalised in allowed and _local(parts.hostname))


def _local(host: str) -> bool:
    # Development servers on loopback run on arbitrary ports.
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")
