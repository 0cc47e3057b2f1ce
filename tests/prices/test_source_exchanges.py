"""Binance, Coinbase Exchange and Kraken adapters against the local fakes."""

from __future__ import annotations

import json
import time

import pytest

from prices.sources.base import BadResponse, Blocked, RateLimited, SourceUnavailable
from prices.sources.binance import BinanceSource
from prices.sources.coinbase import CoinbaseSource
from prices.sources.kraken import KrakenSource

from .conftest import config
from .fakes import FakeExchanges, Fault

# --- Binance --------------------------------------------------------------------------


def test_binance_ticker_strings_ms_and_quote_volume(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 97012.5, change=-2.5, volume=12.0)
    exchanges.set_price("ETH", 3500.0)
    result = BinanceSource(config(exchanges, "binance")).fetch({"BTC": "BTCUSDT", "ETH": "ETHUSDT"})
    btc = next(q for q in result.quotes if q.symbol == "BTC")
    assert btc.price == 97012.5 and btc.change24h == -2.5
    assert btc.volume24h == pytest.approx(12.0 * 97012.5)  # quoteVolume
    assert btc.timestamp == int(exchanges.market.binance["BTCUSDT"].updated * 1000)
    path, query, _ = exchanges.requests[-1]
    assert path == "/binance/api/v3/ticker/24hr" and query["symbols"] == ['["BTCUSDT","ETHUSDT"]']
    assert result.requests == 1


def test_binance_invalid_symbol_is_isolated_by_bisection_then_skipped(exchanges: FakeExchanges) -> None:
    for s in ("BTC", "ETH", "SOL", "BNB"):
        exchanges.set_price(s, 10.0)
    src = BinanceSource(config(exchanges, "binance"))
    ask = {"BTC": "BTCUSDT", "ETH": "ETHUSDT", "SOL": "SOLUSDT", "BNB": "BNBUSDT", "XXX": "XXXUSDT"}
    result = src.fetch(ask)
    assert sorted(q.symbol for q in result.quotes) == ["BNB", "BTC", "ETH", "SOL"]
    assert result.problems["unknown_symbol"] == 1 and result.problems["missing_symbol"] == 0
    assert result.requests <= 1 + 2 * 3  # O(log n) requests, not one per symbol
    again = src.fetch(ask)
    assert again.requests == 1 and again.problems["skipped_unknown"] == 1
    assert len(again.quotes) == 4


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limited"), (418, "banned")])
def test_binance_429_and_418_honour_retry_after(exchanges: FakeExchanges, status: int, code: str) -> None:
    body = json.dumps({"code": -1003, "msg": "Too many requests"}).encode()
    exchanges.fault("/binance/", Fault(status=status, body=body, headers={"Retry-After": "120"}))
    with pytest.raises(RateLimited) as err:
        BinanceSource(config(exchanges, "binance")).fetch({"BTC": "BTCUSDT"})
    assert err.value.retry_after == 120 and err.value.code == code


def test_binance_451_is_permanent(exchanges: FakeExchanges) -> None:
    body = b'{"code": 0, "msg": "Service unavailable from a restricted location according to \'b. Eligibility\'"}'
    exchanges.fault("/binance/", Fault(status=451, body=body))
    with pytest.raises(Blocked) as err:
        BinanceSource(config(exchanges, "binance")).fetch({"BTC": "BTCUSDT"})
    assert err.value.permanent and err.value.code == "blocked"


def test_binance_garbage_rows_other_symbols_and_wrong_shape(exchanges: FakeExchanges) -> None:
    rows = [
        {"symbol": "BTCUSDT", "lastPrice": "NaN", "closeTime": 1499869899040},
        {"symbol": "ETHUSDT", "lastPrice": "3500.1"},  # no closeTime
        {"symbol": "DOGEUSDT", "lastPrice": "0.1", "closeTime": 1499869899040},  # not asked
        "garbage",
    ]
    exchanges.fault("/binance/api/v3/ticker", Fault(body=json.dumps(rows).encode()))
    result = BinanceSource(config(exchanges, "binance")).fetch({"BTC": "BTCUSDT", "ETH": "ETHUSDT"})
    # NaN parses as a float: the aggregator rejects it (invalid_price) where every quote is checked.
    assert [(q.symbol, q.price != q.price) for q in result.quotes] == [("BTC", True)]
    assert result.problems["malformed"] == 2 and result.problems["unexpected_symbol"] == 1
    exchanges.fault("/binance/api/v3/ticker", Fault(body=b'{"symbol": "BTCUSDT"}'))
    with pytest.raises(BadResponse):
        BinanceSource(config(exchanges, "binance")).fetch({"BTC": "BTCUSDT"})


def test_binance_trades_buyer_maker_means_sell(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 1.0)
    exchanges.market.trades["BTCUSDT"] = [
        {
            "id": 1,
            "price": "4.00000100",
            "qty": "12.0",
            "quoteQty": "48.0",
            "time": 1499865549590,
            "isBuyerMaker": True,
        },
        {"id": 2, "price": "4.1", "qty": "1.5", "quoteQty": "6.15", "time": 1499865549591, "isBuyerMaker": False},
        {"id": 3, "price": "oops", "qty": "1", "time": 1, "isBuyerMaker": False},
    ]
    trades = BinanceSource(config(exchanges, "binance")).trades("BTC", "BTCUSDT", 50)
    assert [(t.price, t.qty, t.side, t.time) for t in trades] == [
        (4.000001, 12.0, "sell", 1499865549590),
        (4.1, 1.5, "buy", 1499865549591),
    ]
    assert exchanges.requests[-1][1] == {"symbol": ["BTCUSDT"], "limit": ["50"]}


# --- Coinbase -------------------------------------------------------------------------


def test_coinbase_ticker_and_stats_change_from_open(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 6250.02, change=15.4, volume=53687.77)
    result = CoinbaseSource(config(exchanges, "coinbase")).fetch({"BTC": "BTC-USD"})
    (q,) = result.quotes
    assert q.price == 6250.02 and q.source == "coinbase"
    assert q.change24h == pytest.approx(15.4, rel=1e-6)  # (last - open) / open
    assert q.volume24h == pytest.approx(53687.77 * 6250.02)  # base units x price
    assert abs(q.timestamp - exchanges.market.coinbase["BTC-USD"].updated * 1000) < 1000
    assert result.requests == 2
    paths = [p for p, _, _ in exchanges.requests]
    assert paths == ["/coinbase/products/BTC-USD/ticker", "/coinbase/products/BTC-USD/stats"]


def test_coinbase_round_robin_within_request_budget_and_cached_stats(exchanges: FakeExchanges) -> None:
    for s in ("BTC", "ETH", "SOL"):
        exchanges.set_price(s, 10.0)
    src = CoinbaseSource(config(exchanges, "coinbase", max_requests=4))
    ask = {"BTC": "BTC-USD", "ETH": "ETH-USD", "SOL": "SOL-USD"}
    first = src.fetch(ask)  # 2 products x (ticker + stats) = 4 requests
    assert sorted(q.symbol for q in first.quotes) == ["BTC", "ETH"] and first.requests == 4
    second = src.fetch(ask)  # SOL (2 requests), then BTC and ETH with cached stats (1 each)
    assert sorted(q.symbol for q in second.quotes) == ["BTC", "ETH", "SOL"] and second.requests == 4
    assert [p for p, _, _ in exchanges.requests[4:]].count("/coinbase/products/BTC-USD/stats") == 0
    assert all(q.change24h is not None for q in second.quotes)


def test_coinbase_unknown_product_404_is_counted_and_skipped(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 10.0)
    src = CoinbaseSource(config(exchanges, "coinbase"))
    result = src.fetch({"BTC": "BTC-USD", "BNB": "BNB-USD"})
    assert [q.symbol for q in result.quotes] == ["BTC"] and result.problems["unknown_symbol"] == 1
    assert src.fetch({"BTC": "BTC-USD", "BNB": "BNB-USD"}).problems["skipped_unknown"] == 1


def test_coinbase_429_and_malformed_ticker(exchanges: FakeExchanges) -> None:
    exchanges.fault("/coinbase/", Fault(status=429, body=b'{"message":"Public rate limit exceeded"}', times=1))
    with pytest.raises(RateLimited):
        CoinbaseSource(config(exchanges, "coinbase")).fetch({"BTC": "BTC-USD"})
    exchanges.fault("/coinbase/products/BTC-USD/ticker", Fault(body=b'{"price": "1.0", "time": "yesterday"}'))
    exchanges.set_price("BTC", 10.0)
    result = CoinbaseSource(config(exchanges, "coinbase")).fetch({"BTC": "BTC-USD"})
    assert result.quotes == [] and result.problems["malformed"] == 1


def test_coinbase_trades_side_is_the_makers(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 10.0)
    exchanges.market.trades["BTC-USD"] = [
        {"time": "2020-03-20T00:36:59.860Z", "trade_id": 86327327, "price": "6225.32", "size": "0.0647", "side": "sell"}
    ]
    (trade,) = CoinbaseSource(config(exchanges, "coinbase")).trades("BTC", "BTC-USD", 10)
    assert trade.side == "buy" and trade.price == 6225.32 and trade.time == 1584664619860


# --- Kraken ---------------------------------------------------------------------------


def test_kraken_ticker_canonical_pairs(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 30303.2, volume=4412.736)
    before = int(time.time() * 1000)
    result = KrakenSource(config(exchanges, "kraken")).fetch({"BTC": "XXBTZUSD"})
    (q,) = result.quotes
    assert q.price == 30303.2 and q.change24h is None  # `o` is the UTC-midnight open, not 24 h ago
    assert q.volume24h == pytest.approx(4412.736 * 30303.2)  # v[1] x p[1]
    assert q.timestamp >= before  # no time in the body: receive time
    assert exchanges.requests[-1][1]["pair"] == ["XXBTZUSD"]


def test_kraken_unknown_pair_in_http_200_is_isolated(exchanges: FakeExchanges) -> None:
    exchanges.set_price("BTC", 10.0)
    exchanges.set_price("ETH", 20.0)
    src = KrakenSource(config(exchanges, "kraken"))
    result = src.fetch({"BTC": "XXBTZUSD", "ETH": "XETHZUSD", "BAD": "NOPEUSD"})
    assert sorted(q.symbol for q in result.quotes) == ["BTC", "ETH"]
    assert result.problems["unknown_symbol"] == 1
    assert src.fetch({"BTC": "XXBTZUSD", "BAD": "NOPEUSD"}).problems["skipped_unknown"] == 1


@pytest.mark.parametrize(
    ("error", "exc", "code"),
    [
        ("EGeneral:Too many requests", RateLimited, "rate_limited"),
        ("EService:Unavailable", SourceUnavailable, "unavailable"),
        ("EService:Busy", SourceUnavailable, "busy"),
        ("EGeneral:Internal error", BadResponse, "api_error"),
    ],
)
def test_kraken_errors_inside_http_200(exchanges: FakeExchanges, error: str, exc: type, code: str) -> None:
    exchanges.fault("/kraken/", Fault(body=json.dumps({"error": [error]}).encode()))
    with pytest.raises(exc) as err:
        KrakenSource(config(exchanges, "kraken")).fetch({"BTC": "XXBTZUSD"})
    assert err.value.code == code


def test_kraken_other_pair_and_malformed_rows(exchanges: FakeExchanges) -> None:
    body = {
        "error": [],
        "result": {
            "XXBTZUSD": {"c": ["30303.2"], "v": ["1", "2"]},  # no p
            "XETHZUSD": {"c": ["2000.0", "1"], "v": ["1", "2"], "p": ["2000", "2000"]},  # not asked
        },
    }
    exchanges.fault("/kraken/", Fault(body=json.dumps(body).encode()))
    result = KrakenSource(config(exchanges, "kraken")).fetch({"BTC": "XXBTZUSD"})
    assert result.quotes == []
    assert result.problems["malformed"] == 1 and result.problems["unexpected_symbol"] == 1
