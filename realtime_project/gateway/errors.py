"""Error and close codes of protocol v1, shared with the client (docs/protocol.md).

One enum for error codes, one for close codes; the TypeScript client mirrors both.
Exception text never reaches a client: only `code` and the `message` given here.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    """Stable snake_case error codes carried by `{"type":"error"}` frames."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    FORBIDDEN = "forbidden"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    ALREADY_SUBSCRIBED = "already_subscribed"
    NOT_SUBSCRIBED = "not_subscribed"
    SUBSCRIPTION_LIMIT = "subscription_limit"
    UNSUPPORTED = "unsupported"
    UNAVAILABLE = "unavailable"


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server uses (RFC 6455 range plus 4xxx of our own)."""

    NORMAL = 1000
    INVALID_DATA = 1007
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    UNAUTHENTICATED = 4401
    HEARTBEAT_TIMEOUT = 4408
    SLOW_CONSUMER = 4409
    RATE_LIMITED = 4429


class GatewayError(Exception):
    """An error that becomes an `error` frame. Subclasses set the default code."""

    code: ErrorCode = ErrorCode.INTERNAL
    default_message: str = "internal error"
    #: The client's `id` when the frame was rejected before it was fully decoded (e.g. a
    #: malformed `type`): the error echoes it.
    frame_id: str | int | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        code: ErrorCode | None = None,
        details: dict[str, Any] | None = None,
        close_code: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.details = details
        #: When set, the connection is closed with this code after the error frame.
        self.close_code = close_code
        super().__init__(self.message)


class BadRequest(GatewayError):
    code = ErrorCode.BAD_REQUEST
    default_message = "malformed frame"


class UnknownType(GatewayError):
    code = ErrorCode.UNKNOWN_TYPE
    default_message = "unknown message type"


class Forbidden(GatewayError):
    code = ErrorCode.FORBIDDEN
    default_message = "not allowed"


class Unauthenticated(GatewayError):
    code = ErrorCode.UNAUTHENTICATED
    default_message = "authentication required"


class NotFound(GatewayError):
    code = ErrorCode.NOT_FOUND
    default_message = "not found"


class TooLarge(GatewayError):
    code = ErrorCode.TOO_LARGE
    default_message = "frame too large"


class RateLimited(GatewayError):
    code = ErrorCode.RATE_LIMITED
    default_message = "rate limit exceeded"


class Unavailable(GatewayError):
    code = ErrorCode.UNAVAILABLE
    default_message = "temporarily unavailable"


class TooManyConnections(RateLimited):
    """Over `MAX_CONNECTIONS_PER_USER` on this gateway: the connection is closed with 4429."""

    default_message = "too many connections for this user"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, close_code=CloseCode.RATE_LIMITED)
