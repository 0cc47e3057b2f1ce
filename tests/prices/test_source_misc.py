"""The simulated market, HTTP helpers (Retry-After, JSON, session), bisection and the adapter registry."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from prices.sources.base import SourceConfig, UnknownSymbol
from prices.sources.batching import UnknownIds, fetch_isolating
from prices.sources.http import decode_json, parse_retry_after, shared_session
from prices.sources.registry import get_adapter
from prices.sources.simulated import SimulatedSource
from tests.support.clock import FakeClock

#: The simulated market's start (any fixed wall time).
T0 = 1_764_100_000.0


def sim(seed: int = 7, clock: FakeClock | None = None) -> SimulatedSource:
    return SimulatedSource(
        SourceConfig(slug="simulated", kind="simulated", base_url="", seed=seed), clock=clock or FakeClock(wall=T0)
    )


def test_simulated_is_seeded_labelled_and_moves_realistically() -> None:
    a_clock, b_clock = FakeClock(wall=T0), FakeClock(wall=T0)
    a, b = sim(clock=a_clock), sim(clock=b_clock)
    ask = {"BTC": "BTC", "ETH": "ETH", "NEW": "NEW"}
    paths: list[list[float]] = []
    for src, clock in ((a, a_clock), (b, b_clock)):
        prices = []
        for _ in range(50):
            clock.advance(2)
            prices += [q.price for q in src.fetch(ask).quotes]
        paths.append(prices)
    assert paths[0] == paths[1]  # same seed, same walk
    quotes = a.fetch(ask).quotes
    assert all(q.simulated and q.source == "simulated" and q.price > 0 for q in quotes)
    btc = [p for i, p in enumerate(paths[0]) if i % 3 == 0]
    steps = [abs(b2 / b1 - 1) for b1, b2 in itertools.pairwise(btc)]
    assert max(steps) < 0.005  # 60 % annual volatility: 2 s steps are basis points, not percent
    assert any(s > 0 for s in steps)
    # A symbol without a demo start price gets one derived from the seed.
    assert sim(seed=7).fetch({"NEW": "NEW"}).quotes[0].price == sim(seed=7).fetch({"NEW": "NEW"}).quotes[0].price
    assert sim(seed=7).fetch({"NEW": "NEW"}).quotes[0].price != sim(seed=8).fetch({"NEW": "NEW"}).quotes[0].price
    figures = a.global_stats()
    assert 0 < figures["btc_dominance"] < 100 and figures["total_market_cap"] > 1e12
    trades = a.trades("BTC", "BTC", 5)
    assert len(trades) == 5 and {t.side for t in trades} <= {"buy", "sell"}
    assert trades == sorted(trades, key=lambda t: -t.time)


def test_simulated_long_gap_is_not_one_huge_jump() -> None:
    clock = FakeClock(wall=T0)
    src = sim(clock=clock)
    (before,) = src.fetch({"BTC": "BTC"}).quotes
    clock.advance(30 * 86_400)  # the server was off for a month
    (after,) = src.fetch({"BTC": "BTC"}).quotes
    assert abs(after.price / before.price - 1) < 0.05


def test_parse_retry_after() -> None:
    assert parse_retry_after("119") == 119
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None and parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("99999999") == 3 * 86_400  # capped at Binance's longest ban


def test_fetch_isolating_finds_every_bad_id() -> None:
    calls: list[list[str]] = []

    def fetch(ids: list[str]) -> list[str]:
        calls.append(ids)
        if {"c", "f"} & set(ids):
            raise UnknownSymbol("unknown")
        return ids

    unknown: set[str] = set()
    problems: Counter[str] = Counter()
    results = fetch_isolating(list("abcdefgh"), fetch, unknown=unknown, problems=problems)
    assert sorted(x for r in results for x in r) == list("abdegh")
    assert unknown == {"c", "f"} and problems["unknown_symbol"] == 2
    assert len(calls) < 16


def test_unknown_ids_expire() -> None:
    clock = FakeClock(wall=T0)
    ids = UnknownIds(clock=clock, ttl=10)
    ids.add({"x"})
    assert ids.filter(["x", "y"]) == (["y"], 1)
    clock.advance(11)
    assert ids.filter(["x", "y"]) == (["x", "y"], 0)


def test_registry_reuses_adapter_until_config_changes() -> None:
    cfg = SourceConfig(slug="simulated", kind="simulated", base_url="")
    first = get_adapter(cfg)
    assert get_adapter(cfg) is first
    assert get_adapter(SourceConfig(slug="simulated", kind="simulated", base_url="", seed=9)) is not first
    with pytest.raises(ValueError):
        get_adapter(SourceConfig(slug="x", kind="nope", base_url=""))


def test_decode_json_reads_what_sources_send_and_refuses_the_rest() -> None:
    assert decode_json(b'{"a": [1, 2.5, "x", null]}') == {"a": [1, 2.5, "x", None]}
    # orjson refuses these; the standard library reads them as the sources meant them.
    nan = decode_json(b'{"lastPrice": NaN}')["lastPrice"]
    assert nan != nan
    assert decode_json(b"\xef\xbb\xbf[1]") == [1]
    assert decode_json('{"a": 1}'.encode("utf-16")) == {"a": 1}
    for bad in (b"", b"<html>Just a moment...</html>", b'{"a": ', b"\xff\xfe\xfa"):
        with pytest.raises(ValueError):
            decode_json(bad)


def test_session_reads_the_environment_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.kraken.com")
    session = shared_session()
    gecko = session.merge_environment_settings("https://api.coingecko.com/api/v3/x", {}, None, None, None)
    assert gecko["proxies"]["https"] == "http://proxy.example:3128"
    kraken = session.merge_environment_settings("https://api.kraken.com/0/public/Ticker", {}, None, None, None)
    assert "https" not in kraken["proxies"]  # NO_PROXY is honoured per host
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:3128")  # a running worker's environment is fixed
    again = session.merge_environment_settings("https://api.coingecko.com/api/v3/y", {}, None, None, None)
    assert again["proxies"]["https"] == "http://proxy.example:3128"
    explicit = session.merge_environment_settings(
        "https://api.coingecko.com/", {"https": "http://p:1"}, None, None, None
    )
    assert explicit["proxies"]["https"] == "http://p:1"  # explicit settings are not cached


@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")
def test_thread_pools_live_as_long_as_the_process() -> None:
    from prices.threads import thread_pool
    from tests.support.fork import in_forked_child

    pool = thread_pool("prices-test", 2)
    assert thread_pool("prices-test", 2) is pool  # every tick reuses the same threads
    assert pool.submit(lambda: 42).result(5) == 42

    def child_has_its_own() -> bool:  # a Celery prefork child: the parent's threads are not there
        child = thread_pool("prices-test", 2)
        return child is not pool and child.submit(lambda: 43).result(5) == 43

    assert in_forked_child(child_has_its_own)
