"""Router middleware shipped with the gateway: auth-required, rate limit, metrics.

Middleware keeps no state on itself: per-connection state (the token bucket) lives on
the connection, so one middleware instance serves every connection.
"""

from __future__ import annotations

import time
from typing import Any

from .clock import SYSTEM_CLOCK, Clock
from .errors import CloseCode, RateLimited, Unauthenticated
from .metrics import FRAMES_IN, HANDLER_LATENCY
from .router import CallNext, Request


async def auth_required(request: Request, call_next: CallNext) -> Any:
    """Routes registered with `auth=True` need an authenticated connection."""
    route = request.route
    if route is not None and route.auth and not request.principal.authenticated:
        raise Unauthenticated(f"sign in to use {route.type}")
    return await call_next(request)


class RateLimit:
    """Token bucket per connection; a client that keeps flooding is closed (4429)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, close_after: int = 100) -> None:
        self.clock = clock
        self.close_after = close_after

    async def __call__(self, request: Request, call_next: CallNext) -> Any:
        conn = request.connection
        cost = request.route.cost if request.route is not None else 1.0
        if cost and not conn.bucket.take(self.clock.monotonic(), cost):
            conn.rejected_streak += 1
            flooding = conn.rejected_streak >= self.close_after
            raise RateLimited(
                "too many frames; closing" if flooding else "too many frames; slow down",
                details={"retry_after_ms": int(conn.bucket.retry_after(cost) * 1000) + 1},
                close_code=CloseCode.RATE_LIMITED if flooding else None,
            )
        conn.rejected_streak = 0
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
