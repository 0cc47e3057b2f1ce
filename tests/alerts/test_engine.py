"""Alert semantics with hand-computed cases: level, crossing, cooldown, once, expiry,
percent window, portfolio; the index follows changes made by other engines."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from alerts.engine import AlertEngine
from alerts.models import AlertRule
from notifications.models import Notification

from .conftest import batch

pytestmark = pytest.mark.django_db


def alerts_of(user) -> list[Notification]:  # type: ignore[no-untyped-def]
    return list(Notification.objects.filter(user=user, type="price_alert").order_by("id"))


def test_price_above_fires_once_with_the_triggering_price(engine, clock, make_user) -> None:
    user = make_user()
    rule = engine.register_alert(user_id=user.pk, kind="price_above", symbol="btc", threshold="100000")
    assert rule.symbol == "BTC" and rule.mode == "once"
    assert engine.evaluate(batch(clock, BTC=99_999.99)).fired == []
    clock.advance(1)
    result = engine.evaluate(batch(clock, BTC=100_250.5))
    assert [r.pk for r in result.fired] == [rule.pk]
    [note] = alerts_of(user)
    assert note.priority == "high"
    assert note.data["price"] == 100_250.5 and note.data["threshold"] == 100_000.0
    assert note.data["rule_id"] == rule.pk
    assert note.title == "BTC above 100,000: 100,250.5"
    rule.refresh_from_db()
    assert not rule.active and rule.trigger_count == 1 and rule.last_trigger_price == Decimal("100250.5")
    clock.advance(1)
    assert engine.evaluate(batch(clock, BTC=101_000)).fired == []  # once: done
    assert len(alerts_of(user)) == 1


def test_price_below_is_inclusive(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(user_id=user.pk, kind="price_below", symbol="ETH", threshold="3000")
    assert len(engine.evaluate(batch(clock, ETH=3000.0)).fired) == 1


def test_crossing_fires_once_per_crossing_not_per_tick(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(user_id=user.pk, kind="price_cross", symbol="BTC", threshold="100", mode="repeat", cooldown=0)
    fired = []
    for price in [99, 101, 102, 103, 98, 97, 100, 100.5]:
        clock.advance(1)
        fired.append(len(engine.evaluate(batch(clock, BTC=price)).fired))
    # 99 (first tick: no previous) | 101 up-cross | 102, 103 above | 98 down-cross |
    # 97 below | 100 up-cross (100 counts as above) | 100.5 above
    assert fired == [0, 1, 0, 0, 1, 0, 1, 0]
    prices = [n.data["price"] for n in alerts_of(user)]
    assert prices == [101, 98, 100]
    assert [n.data["previous_price"] for n in alerts_of(user)] == [99, 103, 97]


def test_directed_crossing_only_fires_its_way(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(
        user_id=user.pk, kind="price_cross", symbol="BTC", threshold="100", direction="down", mode="repeat", cooldown=0
    )
    fired = []
    for price in [99, 101, 99, 101]:
        clock.advance(1)
        fired.append(len(engine.evaluate(batch(clock, BTC=price)).fired))
    assert fired == [0, 0, 1, 0]


def test_repeat_respects_cooldown(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(
        user_id=user.pk, kind="price_above", symbol="BTC", threshold="100", mode="repeat", cooldown=600
    )
    assert len(engine.evaluate(batch(clock, BTC=101)).fired) == 1
    clock.advance(599)
    assert engine.evaluate(batch(clock, BTC=102)).fired == []  # still cooling
    assert engine.stats()["cooling"] == 1
    clock.advance(1)  # 600 s after the first fire: re-armed, still above: fires
    assert len(engine.evaluate(batch(clock, BTC=103)).fired) == 1
    clock.advance(600)
    assert engine.evaluate(batch(clock, BTC=99)).fired == []  # re-armed but below
    assert [n.data["price"] for n in alerts_of(user)] == [101, 103]


def test_expired_rule_never_fires(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(
        user_id=user.pk,
        kind="price_above",
        symbol="BTC",
        threshold="100",
        expires_at=clock.now() + timedelta(minutes=5),
    )
    engine.evaluate(batch(clock, BTC=90))
    clock.advance(300)
    assert engine.evaluate(batch(clock, BTC=150)).fired == []
    assert engine.stats()["armed"] == 0
    assert alerts_of(user) == []


def test_expiry_is_enforced_in_the_claim_even_if_an_index_is_stale(clock, history, make_user) -> None:
    user = make_user()
    rule = AlertEngine(prices=history, clock=clock).register_alert(
        user_id=user.pk,
        kind="price_above",
        symbol="BTC",
        threshold="100",
        expires_at=clock.now() + timedelta(seconds=5),
    )
    engine = AlertEngine(prices=history, clock=clock)
    engine.sync()
    taken = engine.match(batch(clock, BTC=150))
    clock.advance(10)  # expired between match and claim
    assert engine.trigger_alert(taken, batch_ts=1).fired == []
    rule.refresh_from_db()
    assert rule.trigger_count == 0


def test_percent_move_within_the_window(engine, clock, history, make_user) -> None:
    user = make_user()
    history.record("ETH", clock.now() - timedelta(hours=1), "100")
    up5 = engine.register_alert(
        user_id=user.pk, kind="percent_move", symbol="ETH", threshold="5", direction="up", window=3600
    )
    up6 = engine.register_alert(
        user_id=user.pk, kind="percent_move", symbol="ETH", threshold="6", direction="up", window=3600
    )
    down5 = engine.register_alert(
        user_id=user.pk, kind="percent_move", symbol="ETH", threshold="5", direction="down", window=3600
    )
    either = engine.register_alert(user_id=user.pk, kind="percent_move", symbol="ETH", threshold="5.5", window=3600)
    result = engine.evaluate(batch(clock, ETH=105.5))  # (105.5 - 100) / 100 = +5.5 %
    assert {r.pk for r in result.fired} == {up5.pk, either.pk}
    note = next(n for n in alerts_of(user) if n.data["rule_id"] == up5.pk)
    assert note.data["change_percent"] == 5.5 and note.data["price"] == 105.5 and note.data["window"] == 3600
    assert note.title == "ETH moved +5.50% in 1 h: 105.5"
    clock.advance(60)
    history.record("ETH", clock.now() - timedelta(hours=1), "100")
    result = engine.evaluate(batch(clock, ETH=94.0))  # -6 %
    assert {r.pk for r in result.fired} == {down5.pk}
    assert up6.pk not in {n.data["rule_id"] for n in alerts_of(user)}


def test_percent_move_without_history_does_not_fire(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(user_id=user.pk, kind="percent_move", symbol="SOL", threshold="1", window=3600)
    assert engine.evaluate(batch(clock, SOL=500.0)).fired == []


def test_portfolio_value_above_and_below(engine, clock, history, holdings, make_user) -> None:
    user = make_user()
    holdings.by_user[user.pk] = [
        {"chain": 1, "address": "0x" + "a" * 40, "token": "native", "symbol": "ETH", "amount": Decimal("2")},
        {"chain": 1, "address": "0x" + "a" * 40, "token": "0xusdc", "symbol": "BTC", "amount": Decimal("0.1")},
    ]
    above = engine.register_alert(user_id=user.pk, kind="portfolio_above", threshold="15000")
    below = engine.register_alert(user_id=user.pk, kind="portfolio_below", threshold="5000")
    # 2 x 3000 + 0.1 x 100000 = 16000
    result = engine.evaluate(batch(clock, ETH=3000.0, BTC=100_000.0))
    assert [r.pk for r in result.fired] == [above.pk]
    assert alerts_of(user)[0].data["portfolio_value"] == 16_000.0
    clock.advance(10)  # inside PORTFOLIO_INTERVAL (30 s): not evaluated again
    assert engine.evaluate(batch(clock, ETH=1000.0, BTC=20_000.0)).fired == []
    clock.advance(30)  # 2 x 1000 + 0.1 x 20000 = 4000
    assert [r.pk for r in engine.evaluate(batch(clock, ETH=1000.0, BTC=20_000.0)).fired] == [below.pk]


def test_engines_follow_changes_made_elsewhere(clock, history, make_user) -> None:
    user = make_user()
    watcher = AlertEngine(prices=history, clock=clock)
    watcher.evaluate(batch(clock, BTC=90))  # loads an empty index
    writer = AlertEngine(prices=history, clock=clock)
    keep = writer.register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="100")
    gone = writer.register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="95")
    writer.delete_alert(user_id=user.pk, rule_id=gone.pk)
    clock.advance(1)
    assert [r.pk for r in watcher.evaluate(batch(clock, BTC=120)).fired] == [keep.pk]
    assert watcher.stats()["armed"] == 0


def test_a_rule_fired_by_another_engine_is_dropped_not_refired(clock, history, make_user) -> None:
    user = make_user()
    a = AlertEngine(prices=history, clock=clock)
    rule = a.register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="100")
    b = AlertEngine(prices=history, clock=clock)
    b.sync()
    a.sync()
    assert len(a.evaluate(batch(clock, BTC=101)).fired) == 1
    clock.advance(1)
    assert b.evaluate(batch(clock, BTC=102)).fired == []  # once: the claim fails, b forgets it
    assert b.stats()["armed"] == 0
    assert AlertRule.objects.get(pk=rule.pk).trigger_count == 1


def test_the_same_batch_twice_fires_once_even_without_cooldown(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="1", mode="repeat", cooldown=0)
    tick = batch(clock, BTC=5)
    assert len(engine.evaluate(tick).fired) == 1
    assert engine.evaluate(tick).fired == []
    clock.advance(1)
    assert len(engine.evaluate(batch(clock, BTC=5)).fired) == 1


def test_malformed_updates_in_a_batch_are_ignored(engine, clock, make_user) -> None:
    user = make_user()
    engine.register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="1")
    bad = {"updates": [{"symbol": "BTC", "price": None}, {"price": 5}, "x", {"symbol": "BTC", "price": -1}]}
    assert engine.evaluate({**bad, "timestamp": 1}).fired == []


def test_the_prices_subscriber_uses_the_process_engine(clock, make_user) -> None:
    from alerts import engine as engine_module
    from prices.api import PricesPublished

    user = make_user()
    engine_module.get_engine().register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="10")
    published = batch(clock, BTC=11.0)
    engine_module.on_prices_published(PricesPublished(tuple(published["updates"]), published["timestamp"]))
    assert len(alerts_of(user)) == 1


def test_a_failed_trigger_rolls_back_and_rearms(engine, clock, make_user, monkeypatch) -> None:
    from notifications import api as notifications_api

    user = make_user()
    rule = engine.register_alert(user_id=user.pk, kind="price_above", symbol="BTC", threshold="100")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(notifications_api, "send_many", broken)
    with pytest.raises(RuntimeError):
        engine.evaluate(batch(clock, BTC=101))
    rule.refresh_from_db()
    assert rule.active and rule.trigger_count == 0  # the claim rolled back with the notification
    assert engine.stats()["armed"] == 1  # and the index has it again
    monkeypatch.undo()
    clock.advance(1)
    assert [r.pk for r in engine.evaluate(batch(clock, BTC=101)).fired] == [rule.pk]


def test_admin_changes_go_through_the_service(make_user, clock, history) -> None:
    from django.test import Client as HttpClient
    from django.utils import timezone

    staff = make_user(is_staff=True, is_superuser=True)
    rule = AlertEngine(prices=history, clock=clock).register_alert(
        user_id=make_user().pk, kind="price_above", symbol="BTC", threshold="100"
    )
    http = HttpClient()
    http.force_login(staff)
    url = f"/admin/alerts/alertrule/{rule.pk}/change/"
    past = timezone.localtime(timezone.now() - timedelta(days=1))
    form = {"mode": "repeat", "cooldown": "00:10:00", "expires_at_0": past.strftime("%Y-%m-%d"),
            "expires_at_1": past.strftime("%H:%M:%S")}  # fmt: skip
    response = http.post(url, form)
    assert response.status_code == 200 and b"expires_at must be in the future" in response.content
    revision = AlertRule.objects.get(pk=rule.pk).revision
    response = http.post(url, {"mode": "repeat", "cooldown": "00:10:00", "expires_at_0": "", "expires_at_1": ""})
    assert response.status_code == 302
    changed = AlertRule.objects.get(pk=rule.pk)
    assert changed.mode == "repeat" and changed.cooldown == timedelta(minutes=10) and not changed.active
    assert changed.revision > revision  # other engines will see the change


def test_a_crossing_seen_by_two_workers_with_different_previous_ticks_fires_once(clock, history, make_user) -> None:
    """Ticks spread over two worker processes: B sees t1 and fires the up-cross; A's
    previous tick is t0, so at t2 it sees the same move (99 -> 102) and must not fire."""
    user = make_user()
    AlertEngine(prices=history, clock=clock).register_alert(
        user_id=user.pk, kind="price_cross", symbol="BTC", threshold="100", mode="repeat", cooldown=0
    )
    a, b = AlertEngine(prices=history, clock=clock), AlertEngine(prices=history, clock=clock)
    t0 = batch(clock, BTC=99)
    assert a.evaluate(t0).fired == [] and b.evaluate(t0).fired == []
    clock.advance(1)
    assert len(b.evaluate(batch(clock, BTC=101)).fired) == 1  # t1 on worker B
    clock.advance(1)
    assert a.evaluate(batch(clock, BTC=102)).fired == []  # t2 on worker A: same crossing
    clock.advance(1)
    assert b.evaluate(batch(clock, BTC=98)).fired != []  # a new (down) crossing fires
    assert len(alerts_of(user)) == 2
