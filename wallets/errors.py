"""The wallets app's refusals: a stable code for clients, a message for humans."""

from __future__ import annotations


class WalletError(Exception):
    """A refused wallet operation; `code` is stable, the text is for humans."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
        if status:
            self.status = status
