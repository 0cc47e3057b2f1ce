"""With the real prices app: its `PricesPublished` events run the engine; its history feeds
percent windows; its symbols validate rules (no injected source here)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from alerts.engine import AlertEngine, on_prices_published
from alerts.subscriptions import SUBSCRIPTION
from notifications.models import Notification
from prices.api import PricesPublished
from realtime_project.events import bus

from .conftest import batch

pytestmark = pytest.mark.django_db


def test_the_engine_subscribes_to_price_publications(make_user, clock, monkeypatch) -> None:
    from alerts import engine as engine_module

    [sub] = [s for s in bus.subscriptions(PricesPublished) if s.name == SUBSCRIPTION]  # AlertsConfig.ready
    assert sub.handler is on_prices_published and sub.merge is PricesPublished.merge
    engine_module.ENGINE.set(AlertEngine(clock=clock))
    user = make_user()
    engine_module.get_engine().register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="50000")
    event = PricesPublished(tuple(batch(clock, BTC=50_001.0)["updates"]), int(clock.now().timestamp() * 1000))
    on_prices_published(event)  # what the subscription's thread runs
    assert Notification.objects.get(user=user).data["price"] == 50_001.0


def test_percent_window_reads_the_prices_apps_candles(make_user, clock) -> None:
    from prices.models import Candle, Symbol

    eth, _ = Symbol.objects.get_or_create(symbol="ETH")
    minute = (clock.now() - timedelta(hours=1)).replace(second=0, microsecond=0)
    Candle.objects.create(symbol=eth, start=minute, open=100, high=100, low=100, close=Decimal("100"))
    engine = AlertEngine(clock=clock)  # the default, database-backed sources
    assert "ETH" in engine.prices.known_symbols()
    user = make_user()
    rule = engine.register_alert(
        user_id=user.pk, kind="percent_move", symbol="ETH", threshold="5", direction="up", window=3600
    )
    fired = engine.evaluate(batch(clock, ETH=105.5)).fired
    assert [r.pk for r in fired] == [rule.pk]
    assert Notification.objects.get(user=user).data["change_percent"] == 5.5
