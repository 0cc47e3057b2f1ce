"""The server's VAPID key (RFC 8292): from settings, or generated and kept for embedded mode.

The signed `Authorization: vapid t=…,k=…` header is cached per push service origin
(`aud`) and re-signed an hour before it expires: an ECDSA signature per message would
cost more than the message's encryption.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from py_vapid import Vapid02

from ..conf import notification_settings

logger = logging.getLogger("notifications.push")

#: RFC 8292 §2: `exp` at most 24 h ahead; sign for 12 h, renew when 1 h is left.
TOKEN_LIFETIME = 12 * 3600
RENEW_BEFORE = 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class VapidKey:
    def __init__(self, vapid: Vapid02, subject: str) -> None:
        self.vapid = vapid
        self.subject = subject
        raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        #: The `applicationServerKey` browsers subscribe with (base64url, 65 bytes).
        self.public_key = b64url(raw)
        self._headers: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def authorization(self, audience: str, now: float | None = None) -> str:
        """`vapid t=<JWT>,k=<public key>` for a push service origin (`https://host[:port]`)."""
        now = time.time() if now is None else now
        with self._lock:
            cached = self._headers.get(audience)
            if cached is not None and cached[0] - now > RENEW_BEFORE:
                return cached[1]
            exp = int(now) + TOKEN_LIFETIME
            header = self.vapid.sign({"aud": audience, "exp": exp, "sub": self.subject})["Authorization"]
            self._headers[audience] = (exp, header)
            return str(header)


def _default_key_file() -> Path:
    return Path(settings.BASE_DIR) / "var" / "vapid-private.pem"


@functools.lru_cache(maxsize=4)
def _load(private_key: str, key_file: str, generate: bool, subject: str) -> VapidKey | None:
    if private_key:
        text = private_key.strip()
        vapid = Vapid02.from_pem(text.encode()) if text.startswith("-----") else Vapid02.from_raw(text.encode())
        return VapidKey(vapid, subject)
    path = Path(key_file) if key_file else _default_key_file()
    if path.is_file():
        return VapidKey(Vapid02.from_file(str(path)), subject)
    if not generate:
        logger.warning("no VAPID key (NOTIFICATIONS_VAPID_PRIVATE_KEY): Web Push is disabled")
        return None
    vapid = Vapid02()
    vapid.generate_keys()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(vapid.private_pem())
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, path)  # first writer wins; a concurrent process reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("generated a VAPID key for embedded mode in %s", path)
    return VapidKey(Vapid02.from_file(str(path)), subject)


def vapid_key() -> VapidKey | None:
    """The server's key, or None when push is not configured (production without a key)."""
    conf = notification_settings()
    embedded = bool(getattr(settings, "EMBEDDED", False))
    return _load(conf.vapid_private_key, conf.vapid_key_file, embedded, conf.vapid_subject)
