"""Alerts never fire on a stale or degraded price (issue #11): a rule that would match
waits for a fresh one; crossings are judged from the last fresh price."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.readers import PricesAppReader
from notifications.models import Notification

from .conftest import batch

pytestmark = pytest.mark.django_db


def flagged(clock: Any, *, stale: bool = False, degraded: bool = False, **prices: float) -> dict[str, Any]:
    out = batch(clock, **prices)
    for update in out["updates"]:
        update.update(stale=stale, degraded=degraded)
        if stale:
            update["sources"] = []
    return out


@pytest.mark.parametrize("flag", ["stale", "degraded"])
def test_a_level_rule_waits_for_a_fresh_price(flag: str, engine, clock, make_user) -> None:
    user = make_user()
    rule = engine.register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="100000")
    # The case: `stale: true`, no sources, a price above the threshold.
    result = engine.evaluate(flagged(clock, BTC=120_000.0, **{flag: True}))
    assert result.fired == [] and result.matched == 0
    assert not Notification.objects.filter(user=user).exists()
    clock.advance(1)
    fired = engine.evaluate(batch(clock, BTC=100_500.0)).fired
    assert [r.pk for r in fired] == [rule.pk]
    assert Notification.objects.get(user=user).data["price"] == 100_500.0  # the fresh price, not the stale one


def test_crossings_are_judged_between_fresh_prices_only(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(user_id=user.pk, kind="price_cross", symbol="BTC", threshold="150", mode="repeat", cooldown=0)
    fired = []
    for price, flags in [(100, {}), (200, {"stale": True}), (90, {}), (210, {"degraded": True}), (160, {})]:
        clock.advance(1)
        fired.append(len(engine.evaluate(flagged(clock, BTC=price, **flags)).fired))
    # 100 fresh | 200 stale: ignored | 90: no crossing from 100 | 210 degraded: ignored | 160: up from 90
    assert fired == [0, 0, 0, 0, 1]


def test_portfolio_values_never_use_a_stale_price() -> None:
    from django.utils import timezone

    from prices.models import LatestPrice, Symbol

    btc, _ = Symbol.objects.get_or_create(symbol="BTC")
    eth, _ = Symbol.objects.get_or_create(symbol="ETH")
    now = timezone.now()
    LatestPrice.objects.create(symbol=btc, price=100, payload={"symbol": "BTC", "price": 100.0, "stale": False,
                                                               "degraded": False}, published_at=now)  # fmt: skip
    LatestPrice.objects.create(symbol=eth, price=5, payload={"symbol": "ETH", "price": 5.0, "stale": True,
                                                             "degraded": True}, published_at=now)  # fmt: skip
    prices = PricesAppReader().latest_prices()
    assert prices["BTC"] == 100 and "ETH" not in prices  # stale: a portfolio holding ETH has no value now
