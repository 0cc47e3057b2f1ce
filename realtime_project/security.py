"""Production refuses to start on an insecure configuration (issue #12, finding 2).

With the public development key anyone signs a session cookie or a WebSocket ticket
offline and gets a socket as any user, staff included; with DEBUG on, error pages leak
settings and tracebacks. Both are refused with one line on stderr naming the variable,
before anything else starts (settings import time: every process of the product).
"""

from __future__ import annotations

import sys
from typing import NoReturn

#: Django's own bar for `check --deploy` (security.W009): at least 50 characters and at
#: least 5 distinct ones, and not one of Django's generated "insecure" keys.
MIN_LENGTH = 50
MIN_UNIQUE = 5


def secret_key_problem(secret_key: str, *, dev_key: str) -> str | None:
    """Why `secret_key` is not fit for production, or None."""
    if not secret_key:
        return "is not set"
    if secret_key == dev_key or secret_key.startswith("django-insecure"):
        return "is the public development key"
    if len(secret_key) < MIN_LENGTH or len(set(secret_key)) < MIN_UNIQUE:
        return f"is too weak (needs at least {MIN_LENGTH} characters, {MIN_UNIQUE} distinct)"
    return None


def refuse(message: str) -> NoReturn:
    """Stop the process with one line on stderr (no traceback) and exit status 78 (EX_CONFIG)."""
    sys.stderr.write(f"ImproperlyConfigured: {message}\n")
    sys.stderr.flush()
    raise SystemExit(78)


def refuse_insecure_production(*, secret_key: str, debug: bool, dev_key: str) -> None:
    problem = secret_key_problem(secret_key, dev_key=dev_key)
    if problem is not None:
        refuse(
            f"SECRET_KEY {problem}; production (REDIS_URL is set) needs a strong random one, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if debug:
        refuse("DEBUG must be off in production (REDIS_URL is set)")
