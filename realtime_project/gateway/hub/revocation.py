"""Ending a signed-in socket whose session ended (protocol: docs/protocol.md "Sessions end").

The client is told why (`error` `unauthenticated`, `details.reason`) and the socket closes
with 4401 after the frames already queued; it reconnects with whatever credentials it
still has (anonymous after a sign-out).
"""

from __future__ import annotations

from typing import Final

from ..connections import Connection
from ..errors import CloseCode, ErrorCode, Unauthenticated
from ..metrics import ERRORS
from ..protocol import error_text

#: `details.reason` of the error frame -> its message.
REASONS: Final = {
    "signed_out": "signed out",
    "password_changed": "the password changed; sign in again",
    "deactivated": "this account was deactivated",
    "deleted": "this account was deleted",
    "token_revoked": "the API token was revoked",
    "session_ended": "the session ended; sign in again",
}


def end_session(conn: Connection, reason: str) -> int:
    """Tell `conn` its session ended and close it (4401); 1 if it was open, else 0."""
    if conn.closing:
        return 0
    if reason not in REASONS:
        reason = "session_ended"
    ERRORS.labels(ErrorCode.UNAUTHENTICATED.value).inc()
    conn.enqueue(error_text(Unauthenticated(REASONS[reason], details={"reason": reason}), None))
    conn.close(CloseCode.UNAUTHENTICATED)
    return 1
