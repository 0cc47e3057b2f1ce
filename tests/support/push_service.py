"""A local Web Push service on loopback: the RFC 8030 endpoint, for real.

It accepts `POST /push/<token>`, checks what a real push service checks — the VAPID
JWT (RFC 8292: ES256 signature by the key in `k`, `aud` = this origin, `exp` in the
future and at most 24 h ahead, a `sub` contact), the `TTL` header, `Content-Encoding:
aes128gcm`, `Urgency` — and DECRYPTS the RFC 8291 payload with the subscription's
private key and auth secret (it made them), so a test asserts the exact text a
browser would show. Answers are scripted per subscription: 201 by default, or any
status (404, 410, 413, 429 with Retry-After, 500), or "hang" (never answers until
released: the sender's timeout), and a size limit that answers 413 over it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64d(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class VapidError(Exception):
    pass


def verify_vapid(header: str, origin: str, now: float) -> dict[str, Any]:
    """RFC 8292 §2-3: `vapid t=<JWT>,k=<key>`; returns the claims or raises VapidError."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "vapid":
        raise VapidError(f"scheme {scheme!r} is not vapid")
    parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    if "t" not in parts or "k" not in parts:
        raise VapidError("t and k are required")
    head_b64, claims_b64, sig_b64 = parts["t"].split(".")
    head = json.loads(b64d(head_b64))
    if head.get("alg") != "ES256":
        raise VapidError(f"alg {head.get('alg')!r} is not ES256")
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(parts["k"]))
    sig = b64d(sig_b64)
    if len(sig) != 64:
        raise VapidError("signature is not 64 bytes (r||s)")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VapidError("bad signature") from None
    claims = json.loads(b64d(claims_b64))
    if claims.get("aud") != origin:
        raise VapidError(f"aud {claims.get('aud')!r} is not {origin!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now or exp > now + 24 * 3600:
        raise VapidError("exp must be in the next 24 hours")
    sub = str(claims.get("sub", ""))
    if not (sub.startswith("mailto:") or sub.startswith("https:")):
        raise VapidError("sub must be a mailto: or https: contact")
    claims["k"] = parts["k"]
    return claims


@dataclass
class Subscription:
    token: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    endpoint: str

    def info(self) -> dict[str, Any]:
        """What the browser's `PushSubscription.toJSON()` gives the page."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64e(public), "auth": b64e(self.auth)}}


@dataclass
class Received:
    token: str
    text: str
    headers: dict[str, str]
    claims: dict[str, Any]
    size: int
    at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return json.loads(self.text)


class LocalPushService:
    """Run with `start()` (a thread with its own loop); `stop()` at teardown."""

    def __init__(self, *, expected_key: str | None = None, decrypt: bool = True, decrypt_every: int = 1) -> None:
        self.expected_key = expected_key
        self.decrypt = decrypt
        #: Benchmarks: decrypt one message in N (the others are still VAPID-checked).
        self.decrypt_every = decrypt_every
        #: Benchmarks: answer this many seconds after the request arrived (a push service
        #: across the internet: its round trip, not loopback's).
        self.answer_delay = 0.0
        #: Client (address, port) of every request, in order: which connections were reused.
        self.peers: list[tuple[str, int]] = []
        self.subscriptions: dict[str, Subscription] = {}
        self.received: list[Received] = []
        self.rejected: list[tuple[str, int, str]] = []
        self.scripts: dict[str, deque[Any]] = defaultdict(deque)
        self.default_answer: Any = 201
        self.max_body: int | None = None
        self.count = 0
        self._verified: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- control (from the test's thread) ---------------------------------------------

    def new_subscription(self) -> Subscription:
        token = secrets.token_urlsafe(12)
        sub = Subscription(
            token, ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16), f"{self.origin}/push/{token}"
        )
        self.subscriptions[token] = sub
        return sub

    def script(self, sub: Subscription | None, *answers: Any) -> None:
        """The next answers for `sub` (None: for every subscription, as the default)."""
        if sub is None:
            self.default_answer = answers[0]
        else:
            self.scripts[sub.token].extend(answers)

    def messages(self, sub: Subscription) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.token == sub.token]

    def start(self) -> LocalPushService:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._release = asyncio.Event()
            app = web.Application(client_max_size=1 << 20)
            app.router.add_post("/push/{token}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="local-push-service", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("local push service did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        def shutdown() -> None:
            assert self._release is not None
            self._release.set()
            loop.call_later(0.05, loop.stop)

        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    # --- the RFC 8030 endpoint ---------------------------------------------------------

    def _reject(self, token: str, status: int, why: str) -> web.Response:
        with self._lock:
            self.rejected.append((token, status, why))
        return web.Response(status=status, text=why)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        body = await request.read()
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        with self._lock:
            self.count += 1
            self.peers.append(tuple(peer[:2]) if peer else ("", 0))
            scripted = self.scripts[token].popleft() if self.scripts[token] else None
        sub = self.subscriptions.get(token)
        if sub is None:
            return self._reject(token, 404, "no such subscription")
        header = request.headers.get("Authorization", "")
        try:
            # Like a real push service, a token already verified is not verified again
            # (the sender reuses one signed JWT per push service for hours), but its
            # expiry is checked on every message.
            claims = self._verified.get(header) or verify_vapid(header, self.origin, time.time())
            if claims["exp"] <= time.time():
                raise VapidError("expired")
            self._verified[header] = claims
        except (VapidError, ValueError, KeyError) as exc:
            return self._reject(token, 401, f"VAPID: {exc}")
        if self.expected_key is not None and claims["k"] != self.expected_key:
            return self._reject(token, 403, "VAPID key does not match the subscription's applicationServerKey")
        if not request.headers.get("TTL", "").isdigit():
            return self._reject(token, 400, "TTL header required (RFC 8030 §5.2)")
        if request.headers.get("Urgency", "normal") not in ("very-low", "low", "normal", "high"):
            return self._reject(token, 400, "bad Urgency")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._reject(token, 415, "Content-Encoding must be aes128gcm (RFC 8291)")
        answer = scripted if scripted is not None else self.default_answer
        if self.max_body is not None and len(body) > self.max_body:
            return self._reject(token, 413, "payload too large")
        if answer == "hang":
            assert self._release is not None
            await self._release.wait()
            return web.Response(status=503)
        retry_after = None
        if isinstance(answer, tuple):
            answer, retry_after = answer
        if answer != 201:
            response = web.Response(status=int(answer), text=f"scripted {answer}")
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            with self._lock:
                self.rejected.append((token, int(answer), "scripted"))
            return response
        text = ""
        if self.decrypt and self.count % max(1, self.decrypt_every) == 0:
            plain = http_ece.decrypt(body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm")
            text = plain.decode()
        with self._lock:
            self.received.append(Received(token, text, dict(request.headers), claims, len(body)))
        return web.Response(status=201, headers={"Location": f"{self.origin}/message/{secrets.token_hex(6)}"})
