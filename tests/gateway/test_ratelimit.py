"""Token bucket: refill, burst cap, retry_after (explicit times, no event loop)."""

from __future__ import annotations

import pytest

from realtime_project.gateway.ratelimit import TokenBucket

T0 = 500.0


class TestConstruction:
    def test_full_bucket(self) -> None:
        b = TokenBucket.full(rate=20, burst=40, now=T0)
        assert (b.rate, b.burst, b.tokens, b.updated_at) == (20, 40, 40, T0)

    @pytest.mark.parametrize(("rate", "burst"), [(0, 10), (-1, 10), (1, 0.5), (1, 0), (1, -3)])
    def test_invalid_settings(self, rate: float, burst: float) -> None:
        with pytest.raises(ValueError, match="rate must be > 0 and burst >= 1"):
            TokenBucket.full(rate=rate, burst=burst, now=T0)


class TestTake:
    def test_burst_then_empty(self) -> None:
        b = TokenBucket.full(rate=20, burst=40, now=T0)
        assert all(b.take(T0) for _ in range(40))
        assert b.take(T0) is False
        assert b.tokens == 0

    def test_failed_take_costs_nothing(self) -> None:
        b = TokenBucket.full(rate=1, burst=2, now=T0)
        b.take(T0)
        b.take(T0)
        for _ in range(10):
            assert b.take(T0) is False
        assert b.tokens == 0
        assert b.take(T0 + 1.0) is True

    def test_refill_at_rate(self) -> None:
        b = TokenBucket.full(rate=10, burst=5, now=T0)
        for _ in range(5):
            b.take(T0)
        assert b.take(T0 + 0.05) is False  # half a token
        assert b.tokens == pytest.approx(0.5)
        assert b.take(T0 + 0.1) is True
        assert b.tokens == pytest.approx(0.0, abs=1e-9)

    def test_sustained_rate(self) -> None:
        # Binary-exact times (1/16 s) so the count is exact: 16 frames/s at 8/s for 10 s.
        b = TokenBucket.full(rate=8, burst=1, now=T0)
        b.take(T0)
        accepted = sum(b.take(T0 + i / 16) for i in range(1, 161))
        assert accepted == 80

    def test_refill_is_capped_at_burst(self) -> None:
        b = TokenBucket.full(rate=100, burst=3, now=T0)
        b.take(T0)
        assert b.take(T0 + 3600) is True
        assert b.tokens == pytest.approx(2.0)
        assert sum(b.take(T0 + 3600) for _ in range(10)) == 2

    def test_time_going_backwards_refills_nothing(self) -> None:
        b = TokenBucket.full(rate=10, burst=2, now=T0)
        b.take(T0)
        b.take(T0)
        assert b.take(T0 - 5) is False
        assert b.updated_at == T0
        assert b.tokens == 0

    def test_cost(self) -> None:
        b = TokenBucket.full(rate=1, burst=10, now=T0)
        assert b.take(T0, cost=7) is True
        assert b.take(T0, cost=4) is False
        assert b.tokens == pytest.approx(3)
        assert b.take(T0, cost=3) is True

    def test_zero_cost_always_passes(self) -> None:
        b = TokenBucket.full(rate=1, burst=1, now=T0)
        b.take(T0)
        assert b.take(T0, cost=0) is True

    def test_cost_above_burst_never_passes(self) -> None:
        b = TokenBucket.full(rate=1000, burst=5, now=T0)
        assert b.take(T0 + 10_000, cost=6) is False


class TestRetryAfter:
    def test_zero_when_tokens_available(self) -> None:
        b = TokenBucket.full(rate=2, burst=4, now=T0)
        assert b.retry_after() == 0.0
        assert b.retry_after(cost=4) == 0.0

    def test_time_for_the_missing_tokens(self) -> None:
        b = TokenBucket.full(rate=4, burst=4, now=T0)
        for _ in range(4):
            b.take(T0)
        assert b.retry_after() == pytest.approx(0.25)
        assert b.retry_after(cost=3) == pytest.approx(0.75)

    def test_retry_after_is_enough(self) -> None:
        b = TokenBucket.full(rate=3, burst=1, now=T0)
        b.take(T0)
        b.take(T0 + 0.1)  # refills 0.3, not enough
        wait = b.retry_after()
        assert wait == pytest.approx(0.7 / 3)
        assert b.take(T0 + 0.1 + wait * 0.99) is False
        assert b.take(T0 + 0.1 + wait + 1e-9) is True
