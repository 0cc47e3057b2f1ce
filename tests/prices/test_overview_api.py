"""Market overview, REST endpoints, Python API, tasks, pruning, readiness and admin."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from prices import api
from prices.models import Candle, LatestPrice, MarketOverview, Source, Symbol
from prices.services.overview import market_overview_refresh
from prices.services.tick import TICKER, PriceTicker
from prices.tasks import TICK_LOCK, market_overview, prune_history, tick

from .fakes import FakeExchanges, Fault

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticked(live_prices: Any, exchanges: FakeExchanges) -> FakeExchanges:
    Source.objects.update(poll_interval=0, max_requests=40)
    exchanges.set_price("BTC", 100_000.0, change=2.0)
    exchanges.set_price("ETH", 3_500.0, change=-4.0)
    exchanges.set_price("SOL", 240.0, change=7.5)
    exchanges.set_price("BNB", 650.0, change=-0.5)
    TICKER.set(PriceTicker())
    assert tick.apply().get()["published"] == 4
    return exchanges


# --- market overview --------------------------------------------------------------------


def test_overview_from_coingecko_binance_and_movers(ticked: FakeExchanges) -> None:
    now = time.time()
    ticked.market.trades["BTCUSDT"] = [
        {"id": 1, "price": "100000.1", "qty": "0.5", "quoteQty": "1", "time": int(now * 1000) - 5, "isBuyerMaker": True}
    ]
    ticked.market.trades["ETHUSDT"] = [
        {"id": 2, "price": "3500.5", "qty": "2", "quoteQty": "1", "time": int(now * 1000), "isBuyerMaker": False}
    ]
    payload = market_overview_refresh(now=now)
    assert payload is not None
    assert payload["total_market_cap"] == 2_721_226_850_772.63 and payload["btc_dominance"] == 50.4465
    assert payload["source"] == "coingecko" and payload["timestamp"] == int(now * 1000)
    assert [g["symbol"] for g in payload["top_gainers"]] == ["SOL", "BTC"]
    assert [g["symbol"] for g in payload["top_losers"]] == ["ETH", "BNB"]
    assert payload["recent_trades"] == [
        {"symbol": "ETH", "price": 3500.5, "qty": 2.0, "side": "buy", "time": int(now * 1000), "venue": "binance"},
        {
            "symbol": "BTC",
            "price": 100000.1,
            "qty": 0.5,
            "side": "sell",
            "time": int(now * 1000) - 5,
            "venue": "binance",
        },
    ]
    # Unchanged: not published again; /global is cached (10 min upstream) and not refetched.
    global_hits = ticked.hits("/coingecko/global")
    assert market_overview_refresh(now=now + 1) is None and ticked.hits("/coingecko/global") == global_hits
    assert MarketOverview.objects.get().payload == payload


def test_overview_survives_failures_and_records_health(ticked: FakeExchanges) -> None:
    ticked.fault("/coingecko/global", Fault(status=429, body=b"{}", headers={"Retry-After": "30"}))
    ticked.fault("/binance/api/v3/trades", Fault(status=503, body=b""))
    payload = market_overview_refresh()
    assert payload is not None and payload["total_market_cap"] is None and payload["recent_trades"] == []
    assert payload["top_gainers"]  # movers still come from our own prices
    assert Source.objects.get(slug="coingecko").last_error == "rate_limited"
    assert Source.objects.get(slug="binance").last_error == "http_503"


def test_overview_offline_uses_the_simulated_market(settings: Any) -> None:
    settings.PRICES = {"SIMULATED": True, "LIVE_SOURCES": False}
    payload = market_overview_refresh()
    assert payload is not None and payload["source"] == "simulated"
    assert 0 < payload["btc_dominance"] < 100 and len(payload["recent_trades"]) == 20
    assert market_overview.apply().get() is True  # the simulated market moves: published again


# --- REST -------------------------------------------------------------------------------


def test_latest_prices_and_one_symbol(ticked: FakeExchanges, client: Client) -> None:
    body = client.get("/api/prices/").json()
    assert [p["symbol"] for p in body["prices"]] == ["BNB", "BTC", "ETH", "SOL"]
    btc = client.get("/api/prices/btc/").json()
    assert btc == LatestPrice.objects.get(symbol__symbol="BTC").payload and btc["price"] == 100_000.0
    missing = client.get("/api/prices/ADA/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert client.get("/api/prices/not-a-symbol!/").status_code == 404


def test_history_endpoint_and_bad_parameters(ticked: FakeExchanges, client: Client) -> None:
    body = client.get("/api/prices/BTC/history/").json()
    assert body["symbol"] == "BTC" and body["interval"] == "1m" and len(body["candles"]) == 1
    candle = body["candles"][0]
    assert candle["open"] == candle["close"] == 100_000.0 and candle["time"] % 60_000 == 0
    now_ms = int(time.time() * 1000)
    later = client.get(f"/api/prices/BTC/history/?start={now_ms + 120_000}&end={now_ms + 240_000}")
    assert later.json()["candles"] == []
    assert client.get(f"/api/prices/BTC/history/?start={now_ms + 120_000}").status_code == 400  # after "now"
    for query in ("limit=0", "limit=5000", "limit=abc", "start=-1", f"start={now_ms}&end={now_ms - 1}", "end=x"):
        resp = client.get(f"/api/prices/BTC/history/?{query}")
        assert resp.status_code == 400, query
        assert resp.json()["code"] == "bad_request"
    unknown = client.get("/api/prices/NOPE/history/")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


def test_market_overview_endpoint(ticked: FakeExchanges, client: Client) -> None:
    assert client.get("/api/prices/market/overview/").status_code == 404
    market_overview_refresh()
    body = client.get("/api/prices/market/overview/").json()
    assert body["source"] == "coingecko" and "top_gainers" in body


def test_source_health_is_staff_only(ticked: FakeExchanges, client: Client) -> None:
    assert client.get("/api/prices/sources/").status_code == 403
    staff = get_user_model().objects.create_user("staff", password="x" * 12, is_staff=True)
    client.force_login(staff)
    body = client.get("/api/prices/sources/").json()
    assert body["ok"] is True and body["sources"]["binance"]["ok"] is True


# --- Python API, tasks, pruning, readiness, admin ------------------------------------------


def test_python_api(ticked: FakeExchanges) -> None:
    assert api.latest_price("btc")["price"] == 100_000.0  # type: ignore[index]
    assert set(api.latest_prices()) == {"BNB", "BTC", "ETH", "SOL"}
    assert "BTC" in api.known_symbols() and "ADA" in api.known_symbols()
    assert api.price_at("BTC", datetime.now(UTC)) == Decimal("100000")
    assert api.price_at("BTC", datetime.now(UTC) + timedelta(minutes=3)) == Decimal("100000")
    assert api.price_at("BTC", datetime.now(UTC) - timedelta(minutes=10)) is None
    assert api.price_at("ADA", datetime.now(UTC)) is None
    Symbol.objects.filter(symbol="BTC").update(active=False)
    assert api.latest_price("BTC") is None and "BTC" not in api.known_symbols()


def test_tick_task_skips_while_another_tick_runs(live_prices: Any) -> None:
    cache.add(TICK_LOCK, 1, 30)
    try:
        assert tick.apply().get() is None
    finally:
        cache.delete(TICK_LOCK)


def test_prune_history_keeps_the_retention(ticked: FakeExchanges, settings: Any) -> None:
    btc = Symbol.objects.get(symbol="BTC")
    old = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=8)
    Candle.objects.create(symbol=btc, start=old, open=1, high=1, low=1, close=1)
    assert prune_history.apply().get() == 1
    assert Candle.objects.filter(symbol=btc).count() == 1


@pytest.mark.django_db(transaction=True)  # /readyz reads from another thread
def test_readiness_check_in_readyz(ticked: FakeExchanges, client: Client) -> None:
    body = client.get("/readyz").json()
    prices = body["apps"]["prices"]
    assert prices["ok"] is True and prices["sources"]["kraken"]["ok"] is True
    assert prices["sources"]["simulated"]["enabled"] is False
    Source.objects.update(enabled=False)
    assert client.get("/readyz").json()["apps"]["prices"]["ok"] is False


def test_admin_shows_health_and_actions_work(ticked: FakeExchanges, client: Client) -> None:
    admin = get_user_model().objects.create_superuser("admin", password="x" * 12)
    client.force_login(admin)
    page = client.get("/admin/prices/source/")
    assert page.status_code == 200 and b"ok" in page.content
    ids = list(Source.objects.filter(slug__in=["kraken"]).values_list("pk", flat=True))
    Source.objects.filter(slug="kraken").update(
        consecutive_failures=3, backoff_until=datetime.now(UTC) + timedelta(hours=1)
    )
    resp = client.post("/admin/prices/source/", {"action": "reset_health", "_selected_action": ids})
    assert resp.status_code == 302
    kraken = Source.objects.get(slug="kraken")
    assert kraken.consecutive_failures == 0 and kraken.backoff_until is None
    client.post("/admin/prices/source/", {"action": "disable", "_selected_action": ids})
    assert not Source.objects.get(slug="kraken").enabled
    assert client.get(f"/admin/prices/source/{ids[0]}/change/").status_code == 200
    assert client.get("/admin/prices/symbol/").status_code == 200
    assert client.get(f"/admin/prices/symbol/{Symbol.objects.get(symbol='BTC').pk}/change/").status_code == 200
    assert client.get("/admin/prices/symbolmapping/?q=XXBTZUSD").status_code == 200
