"""`EMAIL_URL` -> Django's email settings (one variable, like DATABASE_URL)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

SMTP = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE = "django.core.mail.backends.console.EmailBackend"


def email_settings(url: str) -> dict[str, Any]:
    """Settings for `smtp://`, `smtp+tls://` (STARTTLS), `smtps://` (TLS) or `console://`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "console":
        return {"EMAIL_BACKEND": CONSOLE}
    if scheme not in ("smtp", "smtp+tls", "smtps"):
        raise ValueError(f"EMAIL_URL: unsupported scheme {parts.scheme!r} (smtp, smtp+tls, smtps, console)")
    return {
        "EMAIL_BACKEND": SMTP,
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": parts.port or {"smtp": 25, "smtp+tls": 587, "smtps": 465}[scheme],
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": scheme == "smtp+tls",
        "EMAIL_USE_SSL": scheme == "smtps",
        "EMAIL_TIMEOUT": 10,
    }
