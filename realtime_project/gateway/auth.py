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
from collections.abc import Awaitable, Callable
from importlib import import_module
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest
from django.http.cookie import parse_cookie

from .conf import gateway_settings
from .credentials import SESSION, TOKEN, Credential
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
    # get_user reads nothing of the request but its session.
    return get_user(cast(HttpRequest, SimpleNamespace(session=store)))


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

    def __init__(self, inner: Callable[..., Awaitable[Any]]) -> None:
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


def issue_ticket(user_id: int, credential: Credential | None = None) -> tuple[str, int]:
    """A signed ticket for `user_id`, valid for TICKET_TTL seconds, usable once.

    `credential`: the session or API token the ticket was bought with; the socket opened
    with the ticket ends with it. It is kept server-side (the cache), never in the ticket,
    which is readable by whoever sees the URL."""
    ttl = gateway_settings().ticket_ttl
    nonce = secrets.token_urlsafe(12)
    if credential is not None:
        cache.set(_credential_key(nonce), credential.encode(), timeout=ttl + 5)
    ticket = signing.dumps({"u": int(user_id), "n": nonce}, salt=TICKET_SALT)
    return ticket, ttl


def _credential_key(nonce: str) -> str:
    return f"ws-ticket-credential:{nonce}"


def check_ticket(ticket: str) -> int:
    """Return the ticket's user id or raise `Unauthenticated` (expired/forged/reused)."""
    return _check_ticket(ticket)[0]


def _check_ticket(ticket: str) -> tuple[int, Credential | None]:
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
    return int(body["u"]), Credential.decode(cache.get(_credential_key(body["n"])))


def _load_principal_sync(user_id: int) -> Principal | None:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).only("pk", "is_staff").first()
    if user is None:
        return None
    return Principal(int(user.pk), bool(user.is_staff))


async def principal_from_ticket(ticket: str) -> Principal:
    return (await authenticate_ticket(ticket))[0]


async def authenticate_ticket(ticket: str) -> tuple[Principal, Credential | None]:
    """The ticket's principal and the credential it was bought with (None: not recorded)."""
    user_id, credential = _check_ticket(ticket)
    principal = await database_sync_to_async(_load_principal_sync)(user_id)
    if principal is None:
        raise Unauthenticated("user is inactive or gone")
    return principal, credential


def session_credential(scope: dict[str, Any]) -> Credential | None:
    """The session a cookie-authenticated handshake carried."""
    key = session_key_of(scope)
    return None if key is None else Credential(SESSION, key)


# --- re-validation (revalidation.py calls this for every signed-in connection) -----------

RevalidationKey = tuple[int, "Credential | None"]


def _revalidate_sync(items: list[RevalidationKey]) -> set[RevalidationKey]:
    """A fixed number of queries for any number of connections: the users, the sessions
    and the tokens are each read in one query (600 credentials in 13 ms on PostgreSQL
    here, where a session lookup per connection took about 0.8 ms each)."""
    from rest_framework.authtoken.models import Token

    users = {u.pk: u for u in get_user_model().objects.filter(pk__in={uid for uid, _ in items}, is_active=True)}
    session_keys = [c.secret for _, c in items if c is not None and c.kind == SESSION]
    sessions = _load_sessions(session_keys) if session_keys else {}
    token_keys = [c.secret for _, c in items if c is not None and c.kind == TOKEN]
    tokens = set(Token.objects.filter(key__in=token_keys).values_list("key", "user_id")) if token_keys else set()
    ended: set[RevalidationKey] = set()
    for user_id, credential in items:
        user = users.get(user_id)
        if user is None:
            ended.add((user_id, credential))
        elif credential is None:
            continue
        elif credential.kind == SESSION:
            if not _session_authenticates(sessions.get(credential.secret), user):
                ended.add((user_id, credential))
        elif (credential.secret, user_id) not in tokens:
            ended.add((user_id, credential))
    return ended


def _load_sessions(keys: list[str]) -> dict[str, dict[str, Any]]:
    """Live sessions by key: one query with the database backend, else one load each."""
    engine = import_module(settings.SESSION_ENGINE)
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        from django.contrib.sessions.models import Session
        from django.utils import timezone

        rows = Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        store = engine.SessionStore()
        return {row.session_key: store.decode(row.session_data) for row in rows}
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        data = engine.SessionStore(key).load()
        if data:
            out[key] = data
    return out


def _session_authenticates(data: dict[str, Any] | None, user: Any) -> bool:
    """Django's `auth.get_user` check of a session for `user`, without touching the
    session: it names this user through an allowed backend, and its password hash
    matches (the current secret key or a fallback)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils.crypto import constant_time_compare

    if not data or data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    if str(data.get(SESSION_KEY)) != str(user.pk):
        return False
    session_hash = data.get(HASH_SESSION_KEY)
    if not session_hash:
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    return any(constant_time_compare(session_hash, h) for h in user.get_session_auth_fallback_hash())


async def revalidate(items: list[RevalidationKey]) -> set[RevalidationKey]:
    """Which (user, credential) pairs no longer authenticate (one database thread hop)."""
    ended: set[RevalidationKey] = await database_sync_to_async(_revalidate_sync)(items)
    return ended


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
