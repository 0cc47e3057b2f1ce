"""PriceAggregator: median, freshness, outliers, minimum sources, TWAP, labels (hand-computed)."""

from __future__ import annotations

import math

import pytest

from prices.aggregation import PriceAggregator
from prices.payloads import price_update
from prices.quotes import Quote, QuoteRejected
from prices.twap import Twap
from tests.support.clock import FakeClock

T0 = 1_764_100_000.0  # seconds


def agg(clock: FakeClock, **kw: float) -> PriceAggregator:
    a = PriceAggregator(
        stale_after=kw.get("stale_after", 60.0),
        outlier_bound=kw.get("outlier_bound", 0.02),
        min_sources=int(kw.get("min_sources", 2)),
        twap_window=kw.get("twap_window", 30.0),
        clock=clock,
    )
    a.start(["a", "b", "c", "d", "sim"])
    return a


def q(source: str, price: float, t: float = T0, symbol: str = "BTC", **kw: object) -> Quote:
    return Quote(symbol, source, price, int(t * 1000), **kw)  # type: ignore[arg-type]


def test_median_without_one_equals_the_median_of_the_others() -> None:
    import random
    from bisect import bisect_left
    from statistics import median

    from prices.aggregation import _median_without

    rng = random.Random(1)
    for _ in range(2000):
        values = [rng.choice([1.0, 2.0, 3.0, 4.5, 7.25]) for _ in range(rng.randint(2, 7))]
        ordered = sorted(values)
        for i, value in enumerate(values):
            assert _median_without(ordered, bisect_left(ordered, value)) == median(values[:i] + values[i + 1 :])


def test_median_of_fresh_quotes_and_sources_listed() -> None:
    clock = FakeClock(wall=T0)
    a = agg(clock)
    for source, price in (("a", 100.0), ("b", 101.0), ("c", 100.5)):
        a.on_price(q(source, price))
    p = a.get_price("BTC")
    assert p is not None
    assert p.price == 100.5
    assert p.sources == ("a", "b", "c")
    assert (p.stale, p.degraded, p.source) == (False, False, "aggregate")
    assert p.timestamp == int(T0 * 1000)


def test_even_count_takes_the_mean_of_the_middle_two() -> None:
    a = agg(FakeClock(wall=T0))
    for source, price in (("a", 100.0), ("b", 101.0), ("c", 100.4), ("d", 100.8)):
        a.on_price(q(source, price))
    assert a.get_price("BTC").price == pytest.approx(100.6)  # (100.4 + 100.8) / 2


def test_quote_older_than_stale_after_is_excluded() -> None:
    clock = FakeClock(wall=T0)
    a = agg(clock, stale_after=60)
    a.on_price(q("a", 100.0, t=T0 - 61))  # 61 s old: not fresh
    a.on_price(q("b", 200.0, t=T0 - 60))  # exactly 60 s: still fresh
    a.on_price(q("c", 202.0, t=T0))
    p = a.get_price("BTC")
    assert p.price == 201.0 and p.sources == ("b", "c")


def test_outlier_is_dropped_and_counted_once_against_its_source() -> None:
    a = agg(FakeClock(wall=T0), outlier_bound=0.02)
    for source, price in (("a", 100.0), ("b", 101.0), ("c", 100.5), ("d", 110.0)):
        a.on_price(q(source, price))
    # d: median of others (100, 100.5, 101) = 100.5; |110 - 100.5| / 100.5 = 9.45 % > 2 %.
    # a: median(101, 100.5, 110) = 101; |100 - 101| / 101 = 0.99 % -> kept.
    p = a.get_price("BTC")
    assert p.price == 100.5 and p.sources == ("a", "b", "c") and p.rejected == ("d",)
    assert not p.degraded
    a.get_price("BTC")  # the same quote judged again is not counted twice
    assert a.take_outliers() == {"d": 1}
    assert a.take_outliers() == {}
    a.on_price(q("d", 111.0, t=T0))  # a new bad quote from d counts again
    a.get_price("BTC")
    assert a.take_outliers() == {"d": 1}


def test_outlier_bound_is_exclusive() -> None:
    a = agg(FakeClock(wall=T0), outlier_bound=0.02)
    for source, price in (("a", 100.0), ("b", 100.0), ("c", 102.0)):
        a.on_price(q(source, price))
    # c: |102 - 100| / 100 = 2 % exactly: not more than the bound, kept.
    p = a.get_price("BTC")
    assert p.sources == ("a", "b", "c") and p.price == 100.0


def test_two_disagreeing_sources_blame_nobody_and_flag_degraded() -> None:
    a = agg(FakeClock(wall=T0), min_sources=2)
    a.on_price(q("a", 100.0))
    a.on_price(q("b", 120.0))
    p = a.get_price("BTC")
    assert p.price == 110.0 and p.degraded and not p.stale and p.sources == ("a", "b")
    assert a.take_outliers() == {}


def test_worst_offender_goes_first_then_two_disagreeing_are_degraded() -> None:
    a = agg(FakeClock(wall=T0), outlier_bound=0.1)
    for source, price in (("a", 100.0), ("b", 200.0), ("c", 400.0)):
        a.on_price(q(source, price))
    # a vs median(200, 400)=300: 66 %; b vs median(100, 400)=250: 20 %; c vs 150: 166 %.
    # c is the worst: dropped. a and b still disagree (100 %): no one else can be blamed.
    p = a.get_price("BTC")
    assert p.price == 150.0 and p.degraded and p.rejected == ("c",) and p.sources == ("a", "b")
    assert a.take_outliers() == {"c": 1}


def test_one_bad_quote_among_three_does_not_condemn_the_good_ones() -> None:
    a = agg(FakeClock(wall=T0), outlier_bound=0.02, min_sources=2)
    for source, price in (("a", 100.0), ("b", 100.1), ("c", 150.0)):
        a.on_price(q(source, price))
    # All at once, a (vs mean(100.1, 150) = 125.05) would look like an outlier too.
    p = a.get_price("BTC")
    assert p.sources == ("a", "b") and p.rejected == ("c",) and not p.degraded
    assert p.price == pytest.approx(100.05)


def test_below_min_sources_is_degraded_not_stale() -> None:
    a = agg(FakeClock(wall=T0), min_sources=2)
    a.on_price(q("a", 100.0))
    p = a.get_price("BTC")
    assert p.price == 100.0 and p.degraded and not p.stale and p.sources == ("a",)
    a.on_price(q("b", 100.2))
    assert not a.get_price("BTC").degraded


def test_outlier_rejection_can_drop_below_min_sources() -> None:
    a = agg(FakeClock(wall=T0), min_sources=3)
    for source, price in (("a", 100.0), ("b", 100.1), ("c", 101.5)):
        a.on_price(q(source, price))
    p = a.get_price("BTC")
    # c vs median(100, 100.1) = 100.05: 1.45 %... within 2 %: kept; use a tighter bound.
    assert p.sources == ("a", "b", "c") and not p.degraded
    b = agg(FakeClock(wall=T0), min_sources=3, outlier_bound=0.01)
    for source, price in (("a", 100.0), ("b", 100.1), ("c", 101.5)):
        b.on_price(q(source, price))
    p = b.get_price("BTC")
    assert p.sources == ("a", "b") and p.degraded and p.price == pytest.approx(100.05)


def test_no_fresh_quote_repeats_last_price_as_stale() -> None:
    clock = FakeClock(wall=T0)
    a = agg(clock, stale_after=60)
    a.on_price(q("a", 100.0))
    a.on_price(q("b", 102.0))
    first = a.get_price("BTC")
    clock.advance(61)
    p = a.get_price("BTC")
    assert p.price == 101.0 and p.stale and p.degraded and p.sources == ()
    assert p.timestamp == first.timestamp  # the time of the last real aggregate


def test_never_quoted_symbol_has_no_price() -> None:
    a = agg(FakeClock(wall=T0))
    assert a.get_price("NOPE") is None
    assert a.aggregate(["NOPE", "BTC"]) == {}


def test_change_and_volume_are_medians_of_reporting_sources() -> None:
    a = agg(FakeClock(wall=T0))
    a.on_price(q("a", 100.0, change24h=1.0, volume24h=10.0))
    a.on_price(q("b", 100.0, change24h=3.0, volume24h=30.0))
    a.on_price(q("c", 100.0, change24h=None, volume24h=20.0))  # Kraken reports no 24 h change
    p = a.get_price("BTC")
    assert p.change24h == 2.0 and p.volume24h == 20.0


def test_outlier_change_and_volume_do_not_count() -> None:
    a = agg(FakeClock(wall=T0))
    a.on_price(q("a", 100.0, change24h=1.0))
    a.on_price(q("b", 100.0, change24h=2.0))
    a.on_price(q("c", 300.0, change24h=90.0))
    assert a.get_price("BTC").change24h == 1.5


def test_twap_hand_computed() -> None:
    clock = FakeClock(wall=T0)
    a = agg(clock, twap_window=30)
    a.on_price(q("a", 100.0))
    assert a.get_price("BTC").twap == 100.0  # one sample: the price itself
    clock.set(T0 + 10)
    a.on_price(q("a", 110.0, t=clock.time()))
    a.get_price("BTC")
    clock.set(T0 + 20)
    a.on_price(q("a", 120.0, t=clock.time()))
    a.get_price("BTC")
    clock.set(T0 + 30)
    # (100*10 + 110*10 + 120*10) / 30 = 110
    assert a.get_price("BTC").twap == pytest.approx(110.0)
    clock.set(T0 + 45)
    # window [15, 45]: 110 for 5 s, 120 for 25 s -> (550 + 3000) / 30 = 118.333…
    assert a.get_price("BTC").twap == pytest.approx(3550 / 30)


def test_twap_direct() -> None:
    t = Twap(15)
    t.add(0, 100)
    t.add(10, 110)
    t.add(20, 120)
    # window [15, 30]: 110 for 5, 120 for 10 -> 1750 / 15
    assert t.value(30) == pytest.approx(1750 / 15)
    assert len(t) == 2  # the sample at 0 was evicted; 10 is the anchor
    t.add(20, 90)  # same instant: the newer value replaces the older
    assert t.value(30) == pytest.approx((110 * 5 + 90 * 10) / 15)
    t.add(5, 1)  # out of order: ignored
    assert t.value(30) == pytest.approx((110 * 5 + 90 * 10) / 15)
    assert Twap(5).value(1) is None
    with pytest.raises(ValueError):
        Twap(0)


def test_twap_clock_stepping_back_is_safe() -> None:
    t = Twap(10)
    t.add(100, 50)
    t.add(105, 60)
    assert t.value(90) == pytest.approx(50.0)  # now clamped to the last sample


def test_simulated_quotes_never_mix_with_real_ones() -> None:
    clock = FakeClock(wall=T0)
    a = agg(clock, min_sources=1)
    a.on_price(q("sim", 50.0, simulated=True))
    p = a.get_price("BTC")
    assert p.source == "simulated" and p.price == 50.0 and p.sources == ("sim",)
    a.on_price(q("a", 100.0))
    p = a.get_price("BTC")
    assert p.source == "aggregate" and p.price == 100.0 and p.sources == ("a",)


@pytest.mark.parametrize(
    ("price", "code"),
    [
        (math.nan, "invalid_price"),
        (math.inf, "invalid_price"),
        (-1.0, "invalid_price"),
        (0.0, "invalid_price"),
        (1e13, "invalid_price"),
        (True, "invalid_price"),
    ],
)
def test_bad_prices_are_rejected_and_do_not_poison(price: float, code: str) -> None:
    a = agg(FakeClock(wall=T0))
    a.on_price(q("a", 100.0))
    a.on_price(q("b", 100.0))
    with pytest.raises(QuoteRejected) as err:
        a.on_price(q("c", price))
    assert err.value.code == code
    p = a.get_price("BTC")
    assert p.price == 100.0 and p.sources == ("a", "b")


def test_future_timestamp_rejected_beyond_tolerance() -> None:
    a = agg(FakeClock(wall=T0))  # tolerance 5 s
    a.on_price(q("a", 100.0, t=T0 + 5))
    with pytest.raises(QuoteRejected) as err:
        a.on_price(q("b", 100.0, t=T0 + 6))
    assert err.value.code == "future_timestamp"
    with pytest.raises(QuoteRejected) as err:
        a.on_price(Quote("BTC", "b", 100.0, -5))
    assert err.value.code == "invalid_timestamp"


def test_unknown_source_rejected_and_removed_source_leaves_at_once() -> None:
    a = agg(FakeClock(wall=T0), min_sources=1)
    with pytest.raises(QuoteRejected) as err:
        a.on_price(q("zzz", 100.0))
    assert err.value.code == "unknown_source"
    a.on_price(q("a", 100.0))
    a.on_price(q("b", 102.0))
    a.remove_source("b")
    assert a.get_price("BTC").sources == ("a",)
    assert "b" not in a.sources
    a.add_source("b")
    assert "b" in a.sources


def test_bad_optional_fields_are_dropped_not_the_quote() -> None:
    a = agg(FakeClock(wall=T0), min_sources=1)
    stored = a.on_price(q("a", 100.0, change24h=math.nan, volume24h=-5.0))
    assert stored.change24h is None and stored.volume24h is None
    assert a.on_price(q("a", 100.0, t=T0 + 1, change24h=-100.0)).change24h is None


def test_newest_quote_per_source_wins_and_older_ones_are_ignored() -> None:
    a = agg(FakeClock(wall=T0), min_sources=1)
    a.on_price(q("a", 100.0, t=T0 - 5))
    a.on_price(q("a", 90.0, t=T0 - 10))  # older: ignored
    assert a.get_price("BTC").price == 100.0
    a.on_price(q("a", 105.0, t=T0 - 1))
    assert a.get_price("BTC").price == 105.0


def test_price_update_is_the_wire_payload() -> None:
    a = agg(FakeClock(wall=T0))
    a.on_price(q("a", 100.0, change24h=1.0, volume24h=5.0))
    a.on_price(q("b", 100.0))
    assert price_update(a.get_price("BTC")) == {  # type: ignore[arg-type]
        "symbol": "BTC",
        "price": 100.0,
        "change24h": 1.0,
        "volume24h": 5.0,
        "timestamp": int(T0 * 1000),
        "sources": ["a", "b"],
        "source": "aggregate",
        "stale": False,
        "degraded": False,
        "twap": 100.0,
        "quoted_at": int(T0 * 1000),  # the newest quote's own time
    }


def test_touch_keeps_a_live_venues_quote_fresh_and_expire_drops_it_at_once() -> None:
    clock = FakeClock(wall=T0)
    a = agg(clock)
    a.on_price(q("a", 100.0))
    a.on_price(q("b", 102.0))
    clock.advance(200)  # beyond STALE_AFTER (120 s) with no new quote
    a.touch("a", ["BTC"], int(clock.time() * 1000))  # a's stream is alive: its last quote still holds
    price = a.get_price("BTC")
    assert price is not None and price.sources == ("a",) and price.price == 100.0
    assert price.quoted_at == int(T0 * 1000)  # still the venue's own time of the value
    a.expire("a", ["BTC"])  # a's stream went silent
    price = a.get_price("BTC")
    assert price is not None and price.stale and price.sources == ()
    assert a.quote_of("BTC", "b") == 102.0 and a.quote_of("BTC", "zzz") is None


def test_start_forgets_everything_and_invalid_config() -> None:
    a = agg(FakeClock(wall=T0))
    a.on_price(q("a", 100.0))
    a.start(["a"])
    assert a.get_price("BTC") is None and a.sources == {"a"}
    with pytest.raises(ValueError):
        PriceAggregator(min_sources=0, clock=FakeClock())


def test_twap_update_equals_add_then_value() -> None:
    import random

    rng = random.Random(3)
    a, b = Twap(30), Twap(30)
    now = 0.0
    for _ in range(5000):
        now += rng.choice([0, 0.5, 1, 2, 7])
        price = rng.choice([100.0, 101.0, 102.0])
        a.add(now, price)
        expected = a.value(now)
        assert expected is not None
        assert b.update(now, price) == pytest.approx(expected, rel=1e-12)


def _naive_twap(samples: list[tuple[float, float]], now: float, window: float) -> float | None:
    """The TWAP by definition: integrate the step function over [now - window, now]."""
    if not samples:
        return None
    now = max(now, samples[-1][0])
    start = now - window
    area = 0.0
    for (t, p), nxt in zip(samples, [*samples[1:], (now, 0.0)], strict=True):
        lo, hi = max(t, start), min(nxt[0], now)
        if hi > lo:
            area += p * (hi - lo)
    begin = max(start, samples[0][0])
    return samples[-1][1] if now - begin <= 0 else area / (now - begin)


def test_twap_matches_the_definition_under_random_use() -> None:
    """update/add/value in any mix (same instants, out-of-order samples, a clock stepping
    back) against the integral computed from scratch."""
    import random

    rng = random.Random(11)
    for window in (5.0, 30.0):
        twap = Twap(window)
        samples: list[tuple[float, float]] = []  # what the TWAP must remember
        now = 0.0
        for _ in range(3000):
            op = rng.random()
            now += rng.choice([0.0, 0.5, 1.0, 2.0, 7.0])
            t = now - rng.choice([0.0, 0.0, 0.0, 3.0]) if op < 0.3 else now
            price = rng.choice([100.0, 101.0, 102.5])
            if op < 0.45:
                twap.add(t, price)
            elif op < 0.9:
                got = twap.update(t, price)
            if op < 0.9:
                if samples and t < samples[-1][0]:
                    pass  # out of order: ignored
                elif samples and t == samples[-1][0]:
                    samples[-1] = (t, price)  # the newer value replaces the older one
                elif not samples or samples[-1][1] != price:
                    samples.append((t, price))
            expected = _naive_twap(samples, t if op < 0.9 else now, window)
            if 0.45 <= op < 0.9:
                assert got == pytest.approx(expected if expected is not None else price, rel=1e-9)
            value = twap.value(now)
            assert value == pytest.approx(_naive_twap(samples, now, window), rel=1e-9)
            assert twap.last == (samples[-1] if samples else None)
            while len(samples) > 2 and samples[1][0] < now - window - 10:
                del samples[0]  # long out of every window asked about: keeps the check O(window)


def _reference(
    quotes: list[Quote], now: float, *, stale_after: float, bound: float, min_sources: int
) -> tuple[float, tuple[str, ...], tuple[str, ...], bool, float | None, float | None, str] | None:
    """The aggregation rules of docs/prices.md, written the obvious way."""
    import statistics

    fresh = [q for q in quotes if q.timestamp >= int((now - stale_after) * 1000)]
    pool = [q for q in fresh if not q.simulated] or [q for q in fresh if q.simulated]
    if not pool:
        return None
    accepted, rejected = list(pool), []
    while len(accepted) >= 3:
        devs = []
        for q in accepted:
            ref = statistics.median([o.price for o in accepted if o is not q])
            devs.append(abs(q.price - ref) / ref)
        worst = max(range(len(accepted)), key=devs.__getitem__)
        if devs[worst] <= bound:
            break
        rejected.append(accepted.pop(worst))
    a = [q.price for q in accepted]
    degraded = len(accepted) < min_sources or (len(a) == 2 and abs(a[0] - a[1]) > bound * min(a))
    changes = [q.change24h for q in accepted if q.change24h is not None]
    volumes = [q.volume24h for q in accepted if q.volume24h is not None]
    return (
        statistics.median(a),
        tuple(sorted(q.source for q in accepted)),
        tuple(sorted(q.source for q in rejected)),
        degraded,
        statistics.median(changes) if changes else None,
        statistics.median(volumes) if volumes else None,
        "aggregate" if not pool[0].simulated else "simulated",
    )


def test_aggregate_matches_the_rules_written_the_obvious_way() -> None:
    """Random books (stale quotes, outliers, simulated sources, missing change/volume,
    sources removed and re-added) against a plain implementation of the rules."""
    import random

    rng = random.Random(5)
    clock = FakeClock(wall=T0)
    a = agg(clock, stale_after=60, outlier_bound=0.02, min_sources=2)
    latest: dict[tuple[str, str], Quote] = {}
    symbols = [f"S{i}" for i in range(40)]
    for _ in range(60):
        clock.advance(2)
        for symbol in symbols:
            base = 100.0 + symbols.index(symbol)
            for source in ("a", "b", "c", "d", "sim"):
                if rng.random() < 0.5:
                    continue
                price = base * rng.uniform(0.99, 1.01) * (rng.choice([1.0, 1.0, 1.0, 1.3, 0.7]))
                quote = Quote(
                    symbol,
                    source,
                    price,
                    int((clock.time() - rng.choice([0, 0, 30, 70])) * 1000),
                    rng.choice([None, 1.0, 2.5, -3.0]),
                    rng.choice([None, 10.0, 20.0]),
                    source == "sim",
                )
                stored = a.on_price(quote)
                old = latest.get((symbol, source))
                if (
                    old is None
                    or stored.timestamp > old.timestamp
                    or (stored.timestamp == old.timestamp and stored.price != old.price)
                ):
                    latest[(symbol, source)] = stored
        if rng.random() < 0.1:
            gone = rng.choice(["a", "b", "c", "d"])
            a.remove_source(gone)
            for key in [k for k in latest if k[1] == gone]:
                del latest[key]
            a.add_source(gone)
        results = a.aggregate(symbols)
        for symbol in symbols:
            expected = _reference(
                [q for (s, _), q in latest.items() if s == symbol],
                clock.time(),
                stale_after=60,
                bound=0.02,
                min_sources=2,
            )
            got = results.get(symbol)
            if expected is None:
                assert got is None or got.stale
                continue
            assert got is not None and not got.stale
            assert (got.price, got.sources, got.rejected, got.degraded, got.change24h, got.volume24h, got.source) == (
                expected
            )
