"""Router middleware: auth_required, the intake charge and RateLimit (injected clock, flood close 4429), metrics."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from prometheus_client import REGISTRY

from realtime_project.gateway import middleware
from realtime_project.gateway.conf import gateway_settings
from realtime_project.gateway.connections import Connection
from realtime_project.gateway.errors import (
    BadRequest,
    CloseCode,
    ErrorCode,
    RateLimited,
    Unauthenticated,
    UnknownType,
)
from realtime_project.gateway.heartbeat import Heartbeat
from realtime_project.gateway.middleware import RateLimit, auth_required, charge, intake_cost
from realtime_project.gateway.namespaces import ANONYMOUS, Principal
from realtime_project.gateway.ratelimit import TokenBucket
from realtime_project.gateway.router import Request, Router
from tests.support.clock import FakeClock


async def _discard(_: Any) -> None:
    return None


def make_connection(
    clock: FakeClock, *, rate: float = 20, burst: float = 40, principal: Principal = ANONYMOUS
) -> Connection:
    now = clock.monotonic()
    return Connection(
        send_text=_discard,
        close_transport=_discard,
        heartbeat=Heartbeat(25, 10, started_at=now),
        bucket=TokenBucket.full(rate, burst, now),
        queue_limit=100,
        connected_at=now,
        principal=principal,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def build_router(*middlewares: Any) -> tuple[Router, list[str]]:
    r = Router()
    handled: list[str] = []
    for mw in middlewares:
        r.use(mw)

    @r.register("app.open")
    async def open_handler(request: Request) -> str:
        handled.append(request.type)
        return "ok"

    @r.register("app.private", auth=True)
    async def private_handler(request: Request) -> str:
        handled.append(request.type)
        return "secret"

    @r.register("app.costly", cost=10)
    async def costly(request: Request) -> str:
        handled.append(request.type)
        return "costly"

    @r.register("app.free", cost=0)
    async def free(request: Request) -> str:
        handled.append(request.type)
        return "free"

    def schema(frame: dict[str, Any]) -> Any:
        raise BadRequest("always invalid")

    @r.register("app.validated", auth=True, schema=schema)
    async def validated(request: Request) -> str:
        handled.append(request.type)
        return "never"

    return r, handled


class TestAuthRequired:
    async def test_anonymous_is_refused_on_auth_routes(self, clock: FakeClock) -> None:
        r, handled = build_router(auth_required)
        with pytest.raises(Unauthenticated) as exc:
            await r.dispatch(Request(make_connection(clock), {"type": "app.private"}))
        assert exc.value.code is ErrorCode.UNAUTHENTICATED
        assert "app.private" in exc.value.message
        assert handled == []

    async def test_auth_is_checked_before_the_schema(self, clock: FakeClock) -> None:
        r, _ = build_router(auth_required)
        with pytest.raises(Unauthenticated):
            await r.dispatch(Request(make_connection(clock), {"type": "app.validated"}))
        with pytest.raises(BadRequest):
            await r.dispatch(Request(make_connection(clock, principal=Principal(1)), {"type": "app.validated"}))

    async def test_signed_in_user_passes(self, clock: FakeClock) -> None:
        r, handled = build_router(auth_required)
        conn = make_connection(clock, principal=Principal(42))
        assert await r.dispatch(Request(conn, {"type": "app.private"})) == "secret"
        assert handled == ["app.private"]

    async def test_open_routes_need_no_user(self, clock: FakeClock) -> None:
        r, _ = build_router(auth_required)
        assert await r.dispatch(Request(make_connection(clock), {"type": "app.open"})) == "ok"

    async def test_unknown_types_pass_through_to_unknown_type(self, clock: FakeClock) -> None:
        r, _ = build_router(auth_required)
        with pytest.raises(UnknownType):
            await r.dispatch(Request(make_connection(clock), {"type": "app.nope"}))

    async def test_principal_change_takes_effect(self, clock: FakeClock) -> None:
        r, _ = build_router(auth_required)
        conn = make_connection(clock)
        with pytest.raises(Unauthenticated):
            await r.dispatch(Request(conn, {"type": "app.private"}))
        conn.principal = Principal(5)
        assert await r.dispatch(Request(conn, {"type": "app.private"})) == "secret"


def charge_now(conn: Connection, clock: FakeClock, cost: float = 1.0, close_after: int = 100) -> None:
    charge(conn, cost, clock.monotonic(), close_after)


class TestIntakeCharge:
    """`charge`: what the consumer takes from every frame before decoding it."""

    def test_burst_then_rate_limited_with_retry_after(self, clock: FakeClock) -> None:
        conn = make_connection(clock, rate=4, burst=3)
        for _ in range(3):
            charge_now(conn, clock)
        with pytest.raises(RateLimited) as exc:
            charge_now(conn, clock)
        assert exc.value.code is ErrorCode.RATE_LIMITED
        assert exc.value.details == {"retry_after_ms": 251}  # one token at 4/s = 250 ms, rounded up
        assert exc.value.close_code is None
        assert conn.rejected_streak == 1
        assert not conn.closing

    def test_refill_with_the_injected_clock(self, clock: FakeClock) -> None:
        conn = make_connection(clock, rate=2, burst=1)
        charge_now(conn, clock)
        with pytest.raises(RateLimited):
            charge_now(conn, clock)
        clock.advance(0.25)
        with pytest.raises(RateLimited) as exc:
            charge_now(conn, clock)
        assert exc.value.details == {"retry_after_ms": 251}
        clock.advance(0.25)
        charge_now(conn, clock)
        assert conn.rejected_streak == 0

    def test_flood_asks_for_close_4429_at_the_threshold(self, clock: FakeClock) -> None:
        conn = make_connection(clock, rate=1, burst=1)
        charge_now(conn, clock, close_after=5)
        for streak in range(1, 5):
            with pytest.raises(RateLimited) as exc:
                charge_now(conn, clock, close_after=5)
            assert conn.rejected_streak == streak
            assert exc.value.close_code is None
            assert exc.value.message == "too many frames; slow down"
        # The 5th rejection in a row: still an error frame, then the consumer closes with 4429.
        with pytest.raises(RateLimited) as exc:
            charge_now(conn, clock, close_after=5)
        assert exc.value.close_code == CloseCode.RATE_LIMITED == 4429
        assert exc.value.message == "too many frames; closing"
        assert exc.value.details == {"retry_after_ms": 1001}
        # The charge itself leaves the connection open: the error frame must go out first.
        assert conn.close_code is None and conn.queued == 0

    def test_accepted_frame_resets_the_streak(self, clock: FakeClock) -> None:
        conn = make_connection(clock, rate=1, burst=1)
        for _ in range(4):
            charge_now(conn, clock, close_after=3)
            for _ in range(2):
                with pytest.raises(RateLimited) as exc:
                    charge_now(conn, clock, close_after=3)
                assert exc.value.close_code is None  # never 3 rejections in a row
            clock.advance(1.0)
        assert conn.rejected_streak == 2

    def test_buckets_are_per_connection(self, clock: FakeClock) -> None:
        a, b = make_connection(clock, rate=1, burst=1), make_connection(clock, rate=1, burst=1)
        charge_now(a, clock)
        with pytest.raises(RateLimited):
            charge_now(a, clock)
        charge_now(b, clock)

    def test_zero_cost_takes_nothing(self, clock: FakeClock) -> None:
        conn = make_connection(clock, rate=1, burst=1)
        for _ in range(10):
            charge_now(conn, clock, cost=0)
        assert conn.bucket.tokens == 1

    @pytest.mark.parametrize(
        ("size", "cost"),
        [(0, 1.0), (4095, 1.0), (4096, 2.0), (60 * 1024, 16.0), (64 * 1024, 17.0), (1 << 20, 40.0)],
    )
    def test_intake_cost_grows_with_size_up_to_the_burst(self, size: int, cost: float) -> None:
        settings = gateway_settings()
        assert (settings.rate_limit_burst, settings.rate_limit_bytes_per_token) == (40.0, 4096)
        assert intake_cost(size, settings) == pytest.approx(cost)

    def test_largest_frames_pass_on_a_full_bucket_but_a_flood_of_them_is_refused(self, clock: FakeClock) -> None:
        settings = gateway_settings()
        conn = make_connection(clock, rate=20, burst=40)
        big = intake_cost(60 * 1024, settings)
        charge_now(conn, clock, big)
        charge_now(conn, clock, big)
        with pytest.raises(RateLimited):
            charge_now(conn, clock, big)  # the third 60 KB frame in a burst
        clock.advance(1.0)  # 20 tokens back: one more
        charge_now(conn, clock, big)


class TestRateLimitMiddleware:
    """The extra cost of costly frame types, once routed (1 token was paid at intake)."""

    async def test_route_cost_above_one_is_charged_the_difference(self, clock: FakeClock) -> None:
        r, handled = build_router(RateLimit(clock=clock))
        conn = make_connection(clock, rate=10, burst=15)
        assert await r.dispatch(Request(conn, {"type": "app.costly"})) == "costly"  # 9 extra
        assert conn.bucket.tokens == pytest.approx(6)
        with pytest.raises(RateLimited) as exc:
            await r.dispatch(Request(conn, {"type": "app.costly"}))
        assert exc.value.details == {"retry_after_ms": 301}  # 3 tokens missing at 10/s
        assert handled == ["app.costly"]

    async def test_ordinary_free_and_unknown_types_cost_nothing_more(self, clock: FakeClock) -> None:
        r, _ = build_router(RateLimit(clock=clock))
        conn = make_connection(clock, rate=1, burst=1)
        for _ in range(50):
            assert await r.dispatch(Request(conn, {"type": "app.open"})) == "ok"
            assert await r.dispatch(Request(conn, {"type": "app.free"})) == "free"
            with pytest.raises(UnknownType):
                await r.dispatch(Request(conn, {"type": "app.nope"}))
        assert conn.bucket.tokens == 1

    async def test_flood_threshold_applies(self, clock: FakeClock) -> None:
        limiter = RateLimit(clock=clock, close_after=2)
        assert RateLimit(clock=clock).close_after == 100
        r, _ = build_router(limiter)
        conn = make_connection(clock, rate=1, burst=10)
        await r.dispatch(Request(conn, {"type": "app.costly"}))
        codes = []
        for _ in range(3):
            with pytest.raises(RateLimited) as exc:
                await r.dispatch(Request(conn, {"type": "app.costly"}))
            codes.append(exc.value.close_code)
        assert codes == [None, 4429, 4429]

    async def test_rejected_frames_never_reach_later_middleware(self, clock: FakeClock) -> None:
        seen: list[str] = []

        async def spy(request: Request, call_next: Any) -> Any:
            seen.append(request.type)
            return await call_next(request)

        r, _ = build_router(RateLimit(clock=clock), spy)
        conn = make_connection(clock, rate=1, burst=10)
        await r.dispatch(Request(conn, {"type": "app.costly"}))
        with pytest.raises(RateLimited):
            await r.dispatch(Request(conn, {"type": "app.costly"}))
        assert seen == ["app.costly"]


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestMetrics:
    async def test_counts_known_types_and_times_handlers(self, clock: FakeClock) -> None:
        r = Router()
        r.use(middleware.metrics)
        kind = f"m{secrets.token_hex(4)}.act"  # a label no other test touches

        @r.register(kind)
        async def handler(request: Request) -> str:
            return "ok"

        before = _sample("realtime_frames_in_total", {"type": kind})
        for _ in range(3):
            await r.dispatch(Request(make_connection(clock), {"type": kind}))
        assert _sample("realtime_frames_in_total", {"type": kind}) == before + 3
        assert _sample("realtime_handler_seconds_count", {"type": kind}) == 3
        assert _sample("realtime_handler_seconds_sum", {"type": kind}) >= 0

    async def test_failing_handler_is_counted_and_timed(self, clock: FakeClock) -> None:
        r = Router()
        r.use(middleware.metrics)
        kind = f"m{secrets.token_hex(4)}.fail"

        @r.register(kind)
        async def handler(request: Request) -> str:
            raise BadRequest("no")

        with pytest.raises(BadRequest):
            await r.dispatch(Request(make_connection(clock), {"type": kind}))
        assert _sample("realtime_frames_in_total", {"type": kind}) == 1
        assert _sample("realtime_handler_seconds_count", {"type": kind}) == 1

    async def test_unknown_types_share_one_label_and_are_not_timed(self, clock: FakeClock) -> None:
        r = Router()
        r.use(middleware.metrics)
        before = _sample("realtime_frames_in_total", {"type": "unknown"})
        before_timed = _sample("realtime_handler_seconds_count", {"type": "unknown"})
        names = [f"u{secrets.token_hex(4)}.x" for _ in range(4)]
        for name in names:
            with pytest.raises(UnknownType):
                await r.dispatch(Request(make_connection(clock), {"type": name}))
        assert _sample("realtime_frames_in_total", {"type": "unknown"}) == before + 4
        assert _sample("realtime_handler_seconds_count", {"type": "unknown"}) == before_timed
        assert all(REGISTRY.get_sample_value("realtime_frames_in_total", {"type": n}) is None for n in names)

    async def test_rate_limited_frames_are_still_counted_when_metrics_is_outermost(self, clock: FakeClock) -> None:
        # The order the gateway installs (apps.py): metrics, then rate limit, then auth.
        kind = f"m{secrets.token_hex(4)}.rl"
        r = Router()
        r.use(middleware.metrics)
        r.use(RateLimit(clock=clock))
        r.use(auth_required)
        r.register(kind, auth=True, cost=2)(_ok)
        conn = make_connection(clock, rate=1, burst=1)
        with pytest.raises(Unauthenticated):
            await r.dispatch(Request(conn, {"type": kind}))
        with pytest.raises(RateLimited):  # the refused frame still took the only token
            await r.dispatch(Request(conn, {"type": kind}))
        assert _sample("realtime_frames_in_total", {"type": kind}) == 2


async def _ok(request: Request) -> str:
    return "ok"
