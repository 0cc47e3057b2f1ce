"""A feed process taking over from another (the lease, docs/feeds.md): its alert engine
rebuilds the index and the previous tick from the database, so a crossing across the
takeover fires once, and one the old leader already fired does not fire again."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from alerts import engine as engine_module
from alerts.engine import AlertEngine
from notifications.models import Notification
from realtime_project.feeds import FeedRunner, feeds_elected
from tests.support.clock import FakeClock

from .conftest import HistoryPrices, batch

pytestmark = pytest.mark.django_db


class LastPublished(HistoryPrices):
    """Prices whose last published row (what the old leader persisted) can be set."""

    def __init__(self) -> None:
        super().__init__()
        self.quotes: dict[str, tuple[float, int | None]] = {}

    def latest_quotes(self) -> dict[str, tuple[float, int | None]]:
        return dict(self.quotes)


def fired(user: Any) -> list[float]:
    return [n.data["price"] for n in Notification.objects.filter(user=user, type="price_alert").order_by("id")]


def cross_rule(user: Any, clock: FakeClock, prices: LastPublished) -> None:
    AlertEngine(prices=prices, clock=clock).register_alert(
        user_id=user.pk, kind="price_cross", symbol="BTC", threshold="100", mode="repeat", cooldown=0
    )


def test_a_crossing_across_the_takeover_fires_once(clock: FakeClock, make_user: Any) -> None:
    user, prices = make_user(), LastPublished()
    cross_rule(user, clock, prices)
    old = AlertEngine(prices=prices, clock=clock)
    t0 = batch(clock, BTC=99)
    assert old.evaluate(t0).fired == []
    prices.quotes = {"BTC": (99.0, t0["timestamp"])}  # the old leader's last published price; then it dies

    new = AlertEngine(prices=prices, clock=clock)  # the standby's engine, never used so far
    assert new.rebuild() == 1
    assert new.stats()["armed"] == 1 and new.last_prices == {"BTC": 99.0}
    clock.advance(1)
    assert len(new.evaluate(batch(clock, BTC=101)).fired) == 1  # 99 -> 101 across the takeover
    assert fired(user) == [101]


def test_a_crossing_the_old_leader_fired_is_not_fired_again(clock: FakeClock, make_user: Any) -> None:
    user, prices = make_user(), LastPublished()
    cross_rule(user, clock, prices)
    old = AlertEngine(prices=prices, clock=clock)
    t0 = batch(clock, BTC=99)
    old.evaluate(t0)
    prices.quotes = {"BTC": (99.0, t0["timestamp"])}  # persisted; the next price was not
    clock.advance(1)
    assert len(old.evaluate(batch(clock, BTC=101)).fired) == 1  # fired, then the leader dies

    new = AlertEngine(prices=prices, clock=clock)
    new.rebuild()
    clock.advance(1)
    assert new.evaluate(batch(clock, BTC=102)).fired == []  # 99 -> 102: the same crossing
    clock.advance(1)
    assert len(new.evaluate(batch(clock, BTC=98)).fired) == 1  # a new one fires
    assert fired(user) == [101, 98]


@pytest.mark.django_db(transaction=True)  # the rebuild reads on a thread of its own
def test_the_feeds_elected_signal_rebuilds_the_process_engine(
    clock: FakeClock, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, prices = make_user(), LastPublished()
    process_engine = AlertEngine(prices=prices, clock=clock)
    engine_module.ENGINE.set(process_engine)
    cross_rule(user, clock, prices)  # made elsewhere while this process stood by
    assert process_engine.stats()["armed"] == 0
    feeds_elected.send(sender=FeedRunner, token="7.host:1:abc")
    assert process_engine.wait_rebuilt(10)
    assert process_engine.stats()["armed"] == 1


@pytest.mark.django_db(transaction=True)  # the rebuild reads on a thread of its own
def test_a_takeover_does_not_wait_for_the_index_and_no_batch_sees_a_stale_one(
    clock: FakeClock, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, prices = make_user(), LastPublished()
    cross_rule(user, clock, prices)
    t0 = batch(clock, BTC=99)
    prices.quotes = {"BTC": (99.0, t0["timestamp"])}  # the old leader's last published price
    new = AlertEngine(prices=prices, clock=clock)
    loading, release = threading.Event(), threading.Event()
    real_load = new.load

    def slow_load(now: Any = None) -> int:
        loading.set()
        assert release.wait(10)
        return real_load(now)

    monkeypatch.setattr(new, "load", slow_load)
    rebuilding = new.rebuild_in_background()  # what feeds_elected runs: returns with the load blocked
    assert loading.wait(10) and rebuilding.is_alive()
    prices.quotes = {"BTC": (101.0, t0["timestamp"] + 1000)}  # the new leader's first price, published
    clock.advance(1)
    result: list[Any] = []
    evaluating = threading.Thread(target=lambda: result.append(new.evaluate(batch(clock, BTC=101))))
    evaluating.start()
    assert not new.wait_rebuilt(0) and not result  # the batch waits for the index
    release.set()
    evaluating.join(10)
    assert new.wait_rebuilt(0)
    # The previous tick was read before the takeover's prices: 99 -> 101 fires, once.
    assert len(result[0].fired) == 1
    assert fired(user) == [101]
