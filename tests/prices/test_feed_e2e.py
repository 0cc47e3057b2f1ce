"""End to end: four fake venues → a real `manage.py feeds` process → Redis → a real gateway
→ a WebSocket client. Outliers are flagged, REST reconciliation flags disagreement, all
venues down goes stale and REST polling takes over, alerts hold on a degraded price."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets
from django.contrib.auth import get_user_model

from alerts.engine import AlertEngine
from notifications.models import Notification
from prices.models import Source, Symbol
from tests.support.feeds_process import FeedsProcess
from tests.support.servers import ops_request
from tests.support.ws import recv_live

from .fakes import FakeExchanges, Fault
from .venues import FakeVenue

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.e2e,
]

BTC = {"binance": "BTCUSDT", "coinbase": "BTC-USD", "kraken": "BTC/USD", "okx": "BTC-USDT"}


async def next_update(
    ws: Any, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30
) -> dict[str, Any]:
    """The first `prices:BTC` update matching `predicate` (a bound for a hung test, not a timing claim)."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            frame = await recv_live(ws, timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if frame.get("channel") == "prices:BTC":
            seen.append(frame["data"])
            if predicate(frame["data"]):
                return frame["data"]  # type: ignore[no-any-return]
    raise AssertionError(f"{what}: never seen; last updates {seen[-3:]}")


async def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} never happened")


@pytest.fixture
def venues() -> Iterator[dict[str, FakeVenue]]:
    fakes = {kind: FakeVenue(kind).start() for kind in BTC}
    yield fakes
    for fake in fakes.values():
        fake.stop()


def tick_all(venues: dict[str, FakeVenue], price: float, only: tuple[str, ...] = tuple(BTC)) -> None:
    for kind in only:
        venues[kind].tick(BTC[kind], price)


async def test_streams_to_a_browser_socket_with_outliers_outages_fallback_and_alerts(
    live_server_factory: Any,
    redis_settings: Any,
    redis_url: str,
    key_prefix: str,
    exchanges: FakeExchanges,
    venues: dict[str, FakeVenue],
) -> None:
    def configure() -> None:
        Symbol.objects.exclude(symbol="BTC").update(active=False)  # one symbol keeps the story readable
        for kind, url in exchanges.base_urls().items():
            Source.objects.filter(kind=kind).update(base_url=url, poll_interval=1.0)
        Source.objects.filter(kind__in=["coingecko", "simulated"]).update(enabled=False)

    await asyncio.to_thread(configure)
    for kind, fake in venues.items():
        fake.set_price(BTC[kind], 97_000.0)
    exchanges.set_price("BTC", 97_000.0)
    gateway = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    feeds = FeedsProcess(
        redis=redis_url,
        key_prefix=key_prefix,
        extra={
            "FEEDS_ONLY": "prices",
            "FEEDS_HEALTH_INTERVAL": "0.5",
            "PRICES_LIVE_SOURCES": "1",
            "PRICES_SIMULATED": "0",
            "PRICES_STREAM_URLS": json.dumps({kind: fake.url for kind, fake in venues.items()}),
            "PRICES_RECONCILE_INTERVAL": "1",
            "PRICES_STREAM_BACKOFF_CAP": "0.5",
        },
    ).start()
    try:
        async with websockets.connect(gateway.ws_url) as ws:
            assert (await recv_live(ws, timeout=20))["type"] == "welcome"
            await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "prices:BTC"}))
            assert (await recv_live(ws, timeout=20))["type"] == "subscribed"

            # 1. Every venue streams: the aggregate of the four.
            await eventually(lambda: all(f.subscribed() == {BTC[k]} for k, f in venues.items()), "four subscriptions")
            tick_all(venues, 97_010.0)
            first = await next_update(ws, lambda u: u["price"] == 97_010.0 and len(u["sources"]) == 4, "four venues")
            assert first["sources"] == ["binance", "coinbase", "kraken", "okx"] and first["source"] == "aggregate"
            assert not first["stale"] and not first["degraded"] and first["quoted_at"] > 0

            # 2. A venue 5 % away is an outlier: left out of the aggregate, counted in its health.
            venues["kraken"].tick("BTC/USD", 101_860.0)
            tick_all(venues, 97_020.0, only=("binance", "coinbase", "okx"))
            update = await next_update(ws, lambda u: u["price"] == 97_020.0, "the aggregate without kraken")
            assert update["sources"] == ["binance", "coinbase", "okx"] and not update["degraded"]
            await eventually(lambda: Source.objects.get(slug="kraken").outliers >= 1, "kraken's outlier counted")

            # 3. Reconciliation: OKX's REST disagrees with its stream beyond the outlier band.
            exchanges.market.okx["BTC-USDT"].price = 90_000.0
            row = await eventually(
                lambda: (r := Source.objects.get(slug="okx")).reconciliation.get("disagreements") and r,
                "a flagged disagreement",
            )
            assert row.reconciliation["disagreements"][0]["symbol"] == "BTC"
            assert row.reconciliation["disagreements"][0]["rest"] == 90_000.0
            exchanges.market.okx["BTC-USDT"].price = 97_020.0
            venues["kraken"].tick("BTC/USD", 97_020.0)

            # 4. Alerts hold on a degraded price: three venues go down, OKX alone says 99,000.
            user = await asyncio.to_thread(lambda: get_user_model().objects.create_user("watcher", password=None))
            await asyncio.to_thread(
                lambda: AlertEngine().register_alert(
                    user_id=user.pk, kind="price_above", symbol="BTC", threshold="98000"
                )
            )
            for prefix in ("/binance", "/coinbase", "/kraken"):
                exchanges.fault(prefix, Fault(status=503, body=b""))
            for kind in ("binance", "coinbase", "kraken"):
                venues[kind].down(True)
            tick_all(venues, 99_000.0, only=("okx",))
            degraded = await next_update(ws, lambda u: u["price"] == 99_000.0, "OKX alone")
            assert degraded["degraded"] and degraded["sources"] == ["okx"]
            await asyncio.sleep(1.0)  # give a wrong evaluation the chance to fire
            assert not await asyncio.to_thread(lambda: Notification.objects.filter(user=user).exists())

            # 5. All venues down: stale and flagged; REST polling takes over once REST answers.
            exchanges.fault("/okx", Fault(status=503, body=b""))
            venues["okx"].down(True)
            stale = await next_update(ws, lambda u: u["stale"], "the stale aggregate")
            assert stale["degraded"] and stale["sources"] == [] and stale["price"] == 99_000.0
            assert not await asyncio.to_thread(lambda: Notification.objects.filter(user=user).exists())
            exchanges.set_price("BTC", 99_000.0)
            exchanges.clear_faults()
            fresh = await next_update(ws, lambda u: not u["stale"] and not u["degraded"], "REST taking over")
            assert fresh["price"] == 99_000.0 and len(fresh["sources"]) >= 2
            note = await eventually(
                lambda: Notification.objects.filter(user=user).first(), "the alert on a fresh price"
            )
            assert note.data["price"] == 99_000.0

            # 6. The venues come back: streaming again, REST only reconciles.
            for fake in venues.values():
                fake.down(False)
            await eventually(
                lambda: all(
                    (h := Source.objects.get(slug=k).stream_health).get("ok") and h.get("rest") == "reconcile"
                    for k in BTC
                ),
                "four live streams, REST back to reconciliation",
            )

            def all_connected() -> dict[str, Any] | None:
                body = json.loads(_get(f"{gateway.http_url}/readyz"))
                feed = body["apps"]["feeds"]["feeds"]["prices"]
                venues = feed["health"]["venues"]
                return body if set(venues) == set(BTC) and all(v["connected"] for v in venues.values()) else None

            body = await eventually(all_connected, "every venue connected in /readyz")
            feed = body["apps"]["feeds"]["feeds"]["prices"]
            assert feed["state"] == "running" and feed["restarts"] == 0
            venues_health = feed["health"]["venues"]
            assert venues_health["binance"]["reconnects"] >= 1 and venues_health["kraken"]["errors"]
            assert body["apps"]["prices"]["sources"]["okx"]["stream"]["ok"] is True
    finally:
        feeds.stop()
    log = feeds.read_log()
    assert "Traceback" not in log, log[-4000:]
    assert feeds.proc is not None and feeds.proc.returncode == 0


def _get(url: str) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(ops_request(url), timeout=5) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.read().decode()
