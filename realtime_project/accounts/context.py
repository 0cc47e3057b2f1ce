"""Template context of the account pages (and the dashboard's sign-in link)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .adapter import signup_open


def accounts(request: HttpRequest) -> dict[str, Any]:
    return {"signup_open": signup_open()}
