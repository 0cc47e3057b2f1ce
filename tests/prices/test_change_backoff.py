"""Change-driven publishing decisions and source backoff (pure)."""

from __future__ import annotations

import pytest

from prices.aggregation import AggregatedPrice
from prices.backoff import backoff_seconds
from prices.change import ChangeFilter


def price(p: float, *, stale: bool = False, degraded: bool = False) -> AggregatedPrice:
    return AggregatedPrice("BTC", p, 0, ("a",), stale=stale, degraded=degraded)


def test_first_deviation_heartbeat_and_flags() -> None:
    f = ChangeFilter(deviation_bps=10, heartbeat=60)  # 0.1 %
    assert f.reason(price(100.0), 0) == "first"
    f.mark(price(100.0), 0)
    assert f.reason(price(100.09), 10) is None  # 9 bps
    assert f.reason(price(100.10), 10) == "deviation"  # 10 bps exactly
    assert f.reason(price(99.90), 10) == "deviation"
    assert f.reason(price(100.0), 59.9) is None
    assert f.reason(price(100.0), 60) == "heartbeat"
    assert f.reason(price(100.0, degraded=True), 1) == "flags"
    assert f.reason(price(100.0, stale=True, degraded=True), 1) == "flags"
    f.mark(price(100.1), 10)
    assert f.last("BTC") is not None and f.last("BTC").price == 100.1  # type: ignore[union-attr]
    assert f.reason(price(100.1), 69) is None  # heartbeat counts from the last publication
    with pytest.raises(ValueError):
        ChangeFilter(deviation_bps=1, heartbeat=0)


def test_backoff_exponential_capped_retry_after_and_permanent() -> None:
    assert backoff_seconds(0, base=2, cap=600) == 0
    assert [backoff_seconds(n, base=2, cap=600) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff_seconds(20, base=2, cap=600) == 600
    assert backoff_seconds(10_000, base=2, cap=600) == 600  # no overflow
    assert backoff_seconds(1, base=2, cap=600, retry_after=119) == 119  # Retry-After wins when longer
    assert backoff_seconds(5, base=2, cap=600, retry_after=3) == 32
    assert backoff_seconds(1, base=2, cap=600, retry_after=7200) == 7200  # a 418 ban beyond the cap
    assert backoff_seconds(1, base=2, cap=600, permanent=86_400) == 86_400
