"""allauth adapter: the sign-up switch (`ACCOUNTS_SIGNUP_OPEN`), mail failures survived."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest

logger = logging.getLogger("realtime.accounts")


def signup_open() -> bool:
    """New accounts may be created (password sign-up page, first Sign-In with Ethereum)."""
    return bool(getattr(settings, "ACCOUNTS_SIGNUP_OPEN", True))


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]  # allauth ships no types
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return signup_open()

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """Send an account email; an unreachable mail server is reported to the user and
        logged (one line, no address), never a 500 in the middle of a sign-up or reset."""
        try:
            super().send_mail(template_prefix, email, context)
        except (OSError, smtplib.SMTPException) as exc:
            kind = template_prefix.rsplit("/", 1)[-1]
            logger.error("account email %s not sent: %s: %s", kind, type(exc).__name__, exc)
            request = getattr(allauth_context, "request", None)
            if request is not None:
                messages.error(request, "We could not send the email just now; please try again in a few minutes.")
