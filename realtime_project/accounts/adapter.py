"""allauth adapter: the sign-up switch (`ACCOUNTS_SIGNUP_OPEN`)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


def signup_open() -> bool:
    """New accounts may be created (password sign-up page, first Sign-In with Ethereum)."""
    return bool(getattr(settings, "ACCOUNTS_SIGNUP_OPEN", True))


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]  # allauth ships no types
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return signup_open()
