"""Errors of the alerts app; each carries a stable code and the offending field."""

from __future__ import annotations


class AlertError(Exception):
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRule(AlertError, ValueError):
    """A malformed or meaningless rule field."""


class RuleLimitExceeded(AlertError):
    code = "rule_limit"


class RuleNotFound(AlertError, LookupError):
    """Unknown id, or another user's rule (indistinguishable on purpose)."""

    code = "not_found"
