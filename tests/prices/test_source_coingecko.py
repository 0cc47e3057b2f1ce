"""CoinGecko adapter against the local fake: shapes, nulls, errors in HTTP 200, 429, HTML, truncation."""

from __future__ import annotations

import json
import time

import pytest

from prices.sources.base import BadResponse, RateLimited, SourceUnavailable
from prices.sources.coingecko import CoinGeckoSource

from .conftest import config
from .fakes import CLOUDFLARE_HTML, FakeExchanges, Fault, reset_mid_body, truncated

ASK = {"BTC": "bitcoin", "ETH": "ethereum"}


def source(exchanges: FakeExchanges, **extra: object) -> CoinGeckoSource:
    return CoinGeckoSource(config(exchanges, "coingecko", **extra))  # type: ignore[arg-type]


def test_simple_price_parsed_with_percent_change_and_seconds(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 67187.33, change=3.637, volume=465_000)
    exchanges.set_price("ETH", 3500.5, change=-1.25)
    result = source(exchanges).fetch(ASK)
    quotes = {q.symbol: q for q in result.quotes}
    btc = quotes["BTC"]
    assert btc.price == 67187.33 and btc.change24h == 3.637 and btc.source == "coingecko"
    assert btc.volume24h == pytest.approx(465_000 * 67187.33)
    assert btc.timestamp == int(exchanges.market.coingecko["bitcoin"].updated) * 1000  # seconds -> ms
    assert quotes["ETH"].change24h == -1.25
    assert result.requests == 1 and not +result.problems
    path, query, headers = exchanges.requests[-1]
    assert path == "/coingecko/simple/price"
    assert query["ids"] == ["bitcoin,ethereum"] and query["vs_currencies"] == ["usd"]
    assert query["include_24hr_change"] == ["true"] and query["include_last_updated_at"] == ["true"]
    assert "x-cg-demo-api-key" not in {k.lower() for k in headers}


def test_api_key_header_demo_and_pro(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 1.0)
    source(exchanges, api_key="demo-key").fetch({"BTC": "bitcoin"})
    assert {k.lower(): v for k, v in exchanges.requests[-1][2].items()}["x-cg-demo-api-key"] == "demo-key"
    source(exchanges, api_key="pro-key", pro=True).fetch({"BTC": "bitcoin"})
    assert {k.lower(): v for k, v in exchanges.requests[-1][2].items()}["x-cg-pro-api-key"] == "pro-key"


def test_unknown_ids_are_absent_and_counted(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 100.0)
    result = source(exchanges).fetch({"BTC": "bitcoin", "NOPE": "no-such-coin"})
    assert [q.symbol for q in result.quotes] == ["BTC"]
    assert result.problems["missing_symbol"] == 1


def test_nulls_other_symbol_and_garbage_rows(exchanges: FakeExchanges) -> None:
    body = {
        "bitcoin": {"usd": None, "usd_24h_change": None, "last_updated_at": None},
        "ethereum": {"usd": "not a number", "last_updated_at": 1711356300},
        "dogecoin": {"usd": 0.1, "last_updated_at": 1711356300},  # not asked for
        "solana": {"usd": 150.0, "usd_24h_vol": None, "usd_24h_change": None},
    }
    exchanges.fault("/coingecko/simple/price", Fault(body=json.dumps(body).encode()))
    result = source(exchanges).fetch({"BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana"})
    assert [(q.symbol, q.price, q.change24h, q.volume24h) for q in result.quotes] == [("SOL", 150.0, None, None)]
    assert abs(result.quotes[0].timestamp - time.time() * 1000) < 5000  # no last_updated_at: receive time
    assert result.problems == {"missing_price": 1, "malformed": 1, "unexpected_symbol": 1, "missing_symbol": 0}


def test_429_json_with_retry_after(exchanges: FakeExchanges) -> None:
    body = json.dumps({"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}).encode()
    exchanges.fault("/coingecko/", Fault(status=429, body=body, headers={"retry-after": "119"}))
    with pytest.raises(RateLimited) as err:
        source(exchanges).fetch(ASK)
    assert err.value.retry_after == 119 and err.value.code == "rate_limited"


def test_error_object_inside_http_200(exchanges: FakeExchanges) -> None:
    body = json.dumps({"status": {"error_code": 429, "error_message": "rate limit"}}).encode()
    exchanges.fault("/coingecko/", Fault(status=200, body=body))
    with pytest.raises(RateLimited) as err:
        source(exchanges).fetch(ASK)
    assert err.value.retry_after == 60  # no header: a sane minimum
    exchanges.fault("/coingecko/", Fault(body=json.dumps({"status": {"error_code": 10002}}).encode()))
    with pytest.raises(BadResponse) as bad:
        source(exchanges).fetch(ASK)
    assert bad.value.code == "error_10002"


def test_cloudflare_html_page(exchanges: FakeExchanges) -> None:
    exchanges.fault("/coingecko/", Fault(status=403, body=CLOUDFLARE_HTML, headers={"Content-Type": "text/html"}))
    with pytest.raises(BadResponse) as err:
        source(exchanges).fetch(ASK)
    assert err.value.code == "malformed_html"
    exchanges.fault("/coingecko/", Fault(status=429, body=CLOUDFLARE_HTML, headers={"Content-Type": "text/html"}))
    with pytest.raises(RateLimited) as limited:
        source(exchanges).fetch(ASK)
    assert limited.value.retry_after is None


def test_truncated_json_and_reset_body(exchanges: FakeExchanges) -> None:
    exchanges.fault("/coingecko/", Fault(raw=truncated(json.dumps({"bitcoin": {"usd": 1.0}}).encode())))
    with pytest.raises(BadResponse) as err:
        source(exchanges).fetch(ASK)
    assert err.value.code == "malformed_json"
    exchanges.fault("/coingecko/", Fault(raw=reset_mid_body))
    with pytest.raises(SourceUnavailable):
        source(exchanges).fetch(ASK)


def test_5xx_timeout_and_connection_refused(exchanges: FakeExchanges) -> None:
    exchanges.fault("/coingecko/", Fault(status=503, body=b"", headers={"Retry-After": "7"}, times=1))
    with pytest.raises(SourceUnavailable) as err:
        source(exchanges).fetch(ASK)
    assert err.value.code == "http_503" and err.value.retry_after == 7
    exchanges.fault("/coingecko/", Fault(delay=1.0, times=1))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as slow:
        source(exchanges, read_timeout=0.5).fetch(ASK)
    assert slow.value.code == "timeout" and time.monotonic() - started < 0.95
    dead = CoinGeckoSource(
        config(exchanges, "coingecko").__class__(slug="cg", kind="coingecko", base_url="http://127.0.0.1:9")
    )
    with pytest.raises(SourceUnavailable) as refused:
        dead.fetch(ASK)
    assert refused.value.code == "connection"


def test_empty_result_and_wrong_shape(exchanges: FakeExchanges) -> None:
    result = source(exchanges).fetch(ASK)  # nothing is listed: {}
    assert result.quotes == [] and result.problems["missing_symbol"] == 2
    exchanges.fault("/coingecko/", Fault(body=b"[1, 2, 3]"))
    with pytest.raises(BadResponse):
        source(exchanges).fetch(ASK)


def test_global_figures(exchanges: FakeExchanges) -> None:
    figures = source(exchanges).global_stats()
    assert figures == {
        "total_market_cap": 2_721_226_850_772.63,
        "total_volume": 69_327_091_133.5489,
        "btc_dominance": 50.4465,
    }
    assert exchanges.requests[-1][0] == "/coingecko/global"
    exchanges.fault("/coingecko/global", Fault(body=json.dumps({"data": {"total_market_cap": {}}}).encode()))
    with pytest.raises(BadResponse):
        source(exchanges).global_stats()
