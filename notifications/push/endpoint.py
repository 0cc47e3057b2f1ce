"""Validation of a browser's push subscription, and the SSRF guard of every push request.

A subscription is posted by a client, so its endpoint is untrusted input that the
server will POST to: it must be https on port 443 of a public address (no loopback,
private, link-local, multicast or reserved range), checked when it is registered and
again on every connection (the resolver below refuses such addresses, so a DNS name
re-pointed at an internal host after registration is still refused). Tests of the
local push service on loopback allow http and private addresses by setting.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from cryptography.hazmat.primitives.asymmetric import ec

from ..conf import NotificationSettings
from ..errors import InvalidSubscription

MAX_ENDPOINT = 2048


@dataclass(frozen=True, slots=True)
class CleanSubscription:
    endpoint: str
    p256dh: str
    auth: str


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def address_allowed(address: str, conf: NotificationSettings) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if conf.push_allow_private:
        return not ip.is_multicast and not ip.is_unspecified
    return ip.is_global and not ip.is_multicast


def check_endpoint(endpoint: str, conf: NotificationSettings, *, resolve: bool = True) -> None:
    """Raise `InvalidSubscription` for an endpoint the server must not call."""
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT:
        raise InvalidSubscription(f"endpoint must be a URL of at most {MAX_ENDPOINT} characters", "endpoint")
    try:
        url = urlsplit(endpoint)
        port = url.port
    except ValueError:
        raise InvalidSubscription("endpoint is not a valid URL", "endpoint") from None
    if url.scheme not in ("https", "http") or not url.hostname:
        raise InvalidSubscription("endpoint must be an https URL", "endpoint")
    if url.scheme != "https" and not conf.push_allow_insecure:
        raise InvalidSubscription("endpoint must use https", "endpoint")
    if url.username or url.password or url.fragment:
        raise InvalidSubscription("endpoint must not carry credentials or a fragment", "endpoint")
    if url.scheme == "https" and port not in (None, 443) and not conf.push_allow_insecure:
        raise InvalidSubscription("endpoint must be on port 443", "endpoint")
    host = url.hostname.lower()
    if conf.push_allowed_hosts and not any(host == h or host.endswith("." + h) for h in conf.push_allowed_hosts):
        raise InvalidSubscription(f"push service {host!r} is not an allowed push service", "endpoint")
    try:
        literal: str | None = str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    elif not resolve:
        return
    else:
        try:
            infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
        except OSError:
            raise InvalidSubscription(f"endpoint host {host!r} does not resolve", "endpoint") from None
        addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(address_allowed(a, conf) for a in addresses):
        raise InvalidSubscription("endpoint is on a private or reserved address", "endpoint")


def validate_subscription(data: Any, conf: NotificationSettings) -> CleanSubscription:
    """A `PushSubscription.toJSON()` from the browser: endpoint + keys {p256dh, auth}."""
    if not isinstance(data, dict):
        raise InvalidSubscription("a subscription is an object with endpoint and keys")
    keys = data.get("keys")
    if not isinstance(keys, dict) or not isinstance(keys.get("p256dh"), str) or not isinstance(keys.get("auth"), str):
        raise InvalidSubscription("keys.p256dh and keys.auth are required strings", "keys")
    try:
        p256dh = b64url_decode(keys["p256dh"])
        auth = b64url_decode(keys["auth"])
    except (binascii.Error, ValueError):
        raise InvalidSubscription("keys must be base64url", "keys") from None
    if len(p256dh) != 65 or p256dh[0] != 4:
        raise InvalidSubscription("keys.p256dh must be an uncompressed P-256 point (65 bytes)", "keys.p256dh")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise InvalidSubscription("keys.p256dh is not a point on P-256", "keys.p256dh") from None
    if len(auth) != 16:
        raise InvalidSubscription("keys.auth must be 16 bytes", "keys.auth")
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str):
        raise InvalidSubscription("endpoint is required", "endpoint")
    check_endpoint(endpoint, conf)
    return CleanSubscription(endpoint=endpoint, p256dh=keys["p256dh"].rstrip("="), auth=keys["auth"].rstrip("="))


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses hosts resolving to addresses the guard forbids."""

    def __init__(self, conf: NotificationSettings) -> None:
        self.conf = conf
        self.inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed = [r for r in results if address_allowed(r["host"], self.conf)]
        if not allowed:
            raise OSError(f"push service host {host} resolves to a forbidden address")
        return allowed

    async def close(self) -> None:
        await self.inner.close()
