"""Router middleware shipped with the gateway: auth-required, rate limit, metrics;
and the rate limiter's intake charge, which the consumer applies to every frame.

Middleware keeps no state on itself: per-connection state (the token bucket) lives on
the connection, so one middleware instance serves every connection.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..clock import SYSTEM_CLOCK, Clock
from .conf import GatewaySettings
from .errors import CloseCode, RateLimited, Unauthenticated
from .metrics import FRAMES_IN, HANDLER_LATENCY
from .router import CallNext, Request

if TYPE_CHECKING:
    from .connections import Connection

#: What every frame pays at intake besides its size (`intake_cost`).
INTAKE_TOKENS = 1.0


async def auth_required(request: Request, call_next: CallNext) -> Any:
    """Routes registered with `auth=True` need an authenticated connection."""
    route = request.route
    if route is not None and route.auth and not request.principal.authenticated:
        raise Unauthenticated(f"sign in to use {route.type}")
    return await call_next(request)


def intake_cost(size: int, settings: GatewaySettings) -> float:
    """Tokens a client frame of `size` bytes pays at intake: 1, plus 1 per whole
    `RATE_LIMIT_BYTES_PER_TOKEN` bytes (a small frame costs exactly 1, so the burst is a
    number of frames), at most the burst (a largest frame passes on a full bucket, and a
    flood of large frames empties it in a few frames)."""
    return min(settings.rate_limit_burst, INTAKE_TOKENS + size // settings.rate_limit_bytes_per_token)


def charge(conn: Connection, cost: float, now: float, close_after: int) -> None:
    """Take `cost` tokens from the connection's bucket, or raise `RateLimited`; the
    `close_after`-th refusal in a row asks for close 4429 (after the error frame)."""
    if cost <= 0:
        return
    if not conn.bucket.take(now, cost):
        conn.rejected_streak += 1
        flooding = conn.rejected_streak >= close_after
        raise RateLimited(
            "too many frames; closing" if flooding else "too many frames; slow down",
            details={"retry_after_ms": int(conn.bucket.retry_after(cost) * 1000) + 1},
            close_code=CloseCode.RATE_LIMITED if flooding else None,
        )
    conn.rejected_streak = 0


class RateLimit:
    """The extra cost of costly frame types (`Route.cost` above the 1 token every frame
    already paid at intake, in the consumer); a client that keeps flooding is closed (4429)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, close_after: int = 100) -> None:
        self.clock = clock
        self.close_after = close_after

    async def __call__(self, request: Request, call_next: CallNext) -> Any:
        route = request.route
        if route is not None and route.cost > INTAKE_TOKENS:
            charge(request.connection, route.cost - INTAKE_TOKENS, self.clock.monotonic(), self.close_after)
        return await call_next(request)


async def metrics(request: Request, call_next: CallNext) -> Any:
    """Count frames by type (known types only, so labels stay bounded) and time handlers."""
    label = request.type if request.route is not None else "unknown"
    FRAMES_IN.labels(label).inc()
    start = time.perf_counter()
    try:
        return await call_next(request)
    finally:
        if request.route is not None:
            HANDLER_LATENCY.labels(label).observe(time.perf_counter() - start)
