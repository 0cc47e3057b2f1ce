"""Admission of WebSocket handshakes: connection limits per client address and in all.

The outermost layer of the WebSocket stack (`realtime_project/asgi.py`), so a refused
handshake costs no session lookup, no database work and no hub state: 2,000 sockets
from one address must not queue in front of a signed-in user's handshake (issue #12).
A connection counts from its handshake until the application returns, so handshakes
still in progress count too.

Refusal (docs/protocol.md "Limits"): where the server can answer the upgrade with an
HTTP response (the ASGI "WebSocket Denial Response" extension: uvicorn) it is
**HTTP 429** (too many from this address) or **HTTP 503** (the gateway is full), with
`Retry-After` and a JSON body carrying the `code`; otherwise (daphne) the socket opens
and closes at once with **4429** or **1013** (try again later).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .conf import gateway_settings
from .errors import CloseCode
from .metrics import CONNECTIONS_REFUSED
from .protocol import dumps

logger = logging.getLogger("realtime.gateway")

#: Seconds a refused client is asked to wait (Retry-After).
RETRY_AFTER_SECONDS = 5

PER_ADDRESS = "too_many_connections_from_address"
GATEWAY_FULL = "gateway_full"

#: reason -> (HTTP status, close code when no HTTP response can be sent)
REFUSALS: dict[str, tuple[int, int]] = {
    PER_ADDRESS: (429, CloseCode.RATE_LIMITED),
    GATEWAY_FULL: (503, CloseCode.TRY_AGAIN_LATER),
}


@dataclass
class ConnectionCounter:
    """Open connections of this process, in all and per client address (pure)."""

    total: int = 0
    by_address: dict[str, int] = field(default_factory=dict)

    def admit(self, address: str | None, *, per_address: int, total: int) -> str | None:
        """Count a new connection, or return why it is refused (counting nothing).

        A limit of 0 is no limit; a connection without an address (a test communicator,
        a Unix socket) is only counted in the total.
        """
        if total and self.total >= total:
            return GATEWAY_FULL
        if address is not None:
            current = self.by_address.get(address, 0)
            if per_address and current >= per_address:
                return PER_ADDRESS
            self.by_address[address] = current + 1
        self.total += 1
        return None

    def release(self, address: str | None) -> None:
        self.total -= 1
        if address is None:
            return
        left = self.by_address.get(address, 0) - 1
        if left > 0:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)


#: The process's counter (one event loop per gateway process).
counter = ConnectionCounter()


def client_address(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    if client and client[0]:
        return str(client[0])
    return None


class ConnectionLimitMiddleware:
    """Refuse a handshake over `MAX_CONNECTIONS_PER_ADDRESS` or `MAX_CONNECTIONS`."""

    def __init__(self, inner: Any, counter: ConnectionCounter = counter) -> None:
        self.inner = inner
        self.counter = counter

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        settings = gateway_settings()
        address = client_address(scope)
        reason = self.counter.admit(
            address, per_address=settings.max_connections_per_address, total=settings.max_connections
        )
        if reason is not None:
            CONNECTIONS_REFUSED.labels(reason).inc()
            logger.info("refused WebSocket from %s: %s", address, reason)
            await refuse(scope, receive, send, reason)
            return None
        try:
            return await self.inner(scope, receive, send)
        finally:
            self.counter.release(address)


async def refuse(scope: dict[str, Any], receive: Any, send: Any, reason: str) -> None:
    status, close_code = REFUSALS[reason]
    message = await receive()
    if message.get("type") != "websocket.connect":
        return  # the client went away first
    if "websocket.http.response" in scope.get("extensions", {}):
        body = dumps({"code": reason, "retry_after": RETRY_AFTER_SECONDS}).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": close_code})
