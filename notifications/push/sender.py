"""Send encrypted push messages to push services, many at once, over the process's session.

`push.ece` encrypts each message with http_ece (RFC 8291 aes128gcm, a fresh ephemeral
key and salt per message); the request is made here so the SSRF guard, timeouts and
redirects are ours: no redirects, no proxy from the environment, a resolver that
refuses internal addresses. A 413 shrinks the body and tries again at once (the
notification must not fail for its size); every other answer is returned to the
caller, which decides retry, removal or failure.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from ..conf import NotificationSettings
from ..errors import InvalidSubscription
from . import ece
from .client import push_client
from .endpoint import check_endpoint
from .payload import fit, shrink
from .vapid import VapidKey

#: Statuses RFC 8030 push services answer for an accepted message.
ACCEPTED = frozenset({200, 201, 202})
#: Bodies of error answers kept in the delivery record (enough to read the reason).
MAX_ERROR_TEXT = 160


@dataclass(slots=True)
class PushMessage:
    endpoint: str
    p256dh: str
    auth: str
    payload: dict[str, Any]
    ttl: int
    urgency: str
    topic: str | None = None


@dataclass(slots=True)
class PushOutcome:
    """`status` None: no answer (timeout, refused connection, forbidden address), or
    nothing sent (`bad_keys`: the subscription's keys cannot encrypt)."""

    status: int | None
    error: str = ""
    retry_after: float | None = None
    truncated: bool = False
    bad_keys: bool = False
    sent_payload: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED

    @property
    def gone(self) -> bool:
        """The device can never be reached: the push service forgot it, or its keys are unusable."""
        return self.status in (404, 410) or self.bad_keys

    @property
    def retryable(self) -> bool:
        return not self.bad_keys and (self.status is None or self.status == 429 or self.status >= 500)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _origin(endpoint: str) -> str:
    url = urlsplit(endpoint)
    return f"{url.scheme}://{url.netloc}"


class PushSender:
    """One aiohttp session (connection reuse per push service) for a batch of messages."""

    def __init__(self, conf: NotificationSettings, key: VapidKey) -> None:
        self.conf = conf
        self.key = key
        #: Endpoint origins already checked in this batch (a fan-out hits a few push services).
        self._checked: dict[str, str | None] = {}

    def _refused(self, endpoint: str) -> str | None:
        """Why the guard refuses this endpoint (None: allowed), checked once per origin."""
        origin = _origin(endpoint)
        if origin not in self._checked:
            try:
                check_endpoint(endpoint, self.conf, resolve=False)  # literal addresses skip the resolver
                self._checked[origin] = None
            except InvalidSubscription as exc:
                self._checked[origin] = f"refused endpoint: {exc}"
        return self._checked[origin]

    async def _post(self, session: aiohttp.ClientSession, message: PushMessage, payload: dict[str, Any]) -> PushOutcome:
        refused = self._refused(message.endpoint)
        if refused is not None:
            return PushOutcome(None, refused)
        try:
            body = ece.encrypt(orjson.dumps(payload), ece.receiver(message.p256dh, message.auth))
        except ece.BadReceiverKeys as exc:
            return PushOutcome(None, f"invalid subscription keys: {exc}", bad_keys=True)
        headers = {
            "TTL": str(message.ttl),
            "Urgency": message.urgency,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self.key.authorization(_origin(message.endpoint)),
        }
        if message.topic:
            headers["Topic"] = message.topic
        try:
            async with session.post(message.endpoint, data=body, headers=headers, allow_redirects=False) as resp:
                raw = await resp.read()  # read to the end: the connection goes back to the pool
                outcome = PushOutcome(resp.status, sent_payload=payload)
                if not outcome.accepted:
                    text = raw[: MAX_ERROR_TEXT * 4].decode(errors="replace")[:MAX_ERROR_TEXT].strip()
                    outcome.error = f"HTTP {resp.status}" + (f": {text}" if text else "")
                    outcome.retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
                return outcome
        except TimeoutError:
            return PushOutcome(None, f"timeout after {self.conf.push_timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return PushOutcome(None, f"connection failed: {type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT])

    async def send_one(self, session: aiohttp.ClientSession, message: PushMessage) -> PushOutcome:
        payload = fit(message.payload, self.conf.push_max_payload_bytes)
        truncated = payload is not message.payload
        outcome = await self._post(session, message, payload)
        while outcome.status == 413:
            smaller = shrink(payload)
            if smaller is None:
                outcome.error = "HTTP 413: too large even without a body"
                break
            payload, truncated = smaller, True
            outcome = await self._post(session, message, payload)
        outcome.truncated = truncated
        return outcome

    async def send_all(self, session: aiohttp.ClientSession, messages: Sequence[PushMessage]) -> list[PushOutcome]:
        """Send every message (at most PUSH_CONCURRENCY in flight); outcomes in order.

        The semaphore lets a message be encrypted only when a request slot is free, so
        encryption interleaves with waiting for answers and at most PUSH_CONCURRENCY
        encrypted bodies exist at a time."""
        semaphore = asyncio.Semaphore(max(1, self.conf.push_concurrency))

        async def one(message: PushMessage) -> PushOutcome:
            async with semaphore:
                return await self.send_one(session, message)

        return list(await asyncio.gather(*(one(m) for m in messages)))


def send_pushes(conf: NotificationSettings, key: VapidKey, messages: Sequence[PushMessage]) -> list[PushOutcome]:
    """Send a batch through this process's push client; the outcomes, in order."""
    if not messages:
        return []
    client = push_client(conf)
    return client.run(PushSender(conf, key).send_all(client.session, messages))
