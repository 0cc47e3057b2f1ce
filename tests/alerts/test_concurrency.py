"""Two evaluations of one batch at once (real threads, separate DB connections) fire once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from alerts.engine import AlertEngine
from alerts.models import AlertRule
from notifications.models import Notification

from .conftest import batch

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(engines: list[AlertEngine], tick: dict) -> list[int]:  # type: ignore[type-arg]
    barrier = threading.Barrier(len(engines))
    fired: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(engine: AlertEngine) -> None:
        try:
            engine.sync()
            taken = engine.match(tick)
            barrier.wait(timeout=10)  # both have matched; now both claim at once
            result = engine.trigger_alert(taken, batch_ts=int(tick["timestamp"]))
            with lock:
                fired.extend(r.pk for r in result.fired)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return fired


@pytest.mark.parametrize("mode,cooldown", [("once", 0), ("repeat", 0), ("repeat", 3600)])
def test_two_workers_fire_a_rule_once(clock, history, make_user, mode: str, cooldown: int) -> None:
    users = [make_user() for _ in range(3)]
    rules = [
        AlertEngine(prices=history, clock=clock).register_alert(
            user_id=u.pk, kind="price_above", symbol="BTC", threshold=str(100 + i), mode=mode, cooldown=cooldown
        )
        for i, u in enumerate(users)
    ]
    engines = [AlertEngine(prices=history, clock=clock) for _ in range(2)]
    fired = run_together(engines, batch(clock, BTC=200.0))
    assert sorted(fired) == sorted(r.pk for r in rules)  # each rule exactly once overall
    assert Notification.objects.filter(type="price_alert").count() == 3
    assert all(r.trigger_count == 1 for r in AlertRule.objects.all())


def test_concurrent_creates_respect_the_per_user_limit(clock, history, make_user, settings) -> None:
    settings.ALERTS = {"MAX_RULES_PER_USER": 2}
    user = make_user()
    barrier = threading.Barrier(5)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        from alerts.errors import RuleLimitExceeded

        try:
            barrier.wait(timeout=10)
            AlertEngine(prices=history, clock=clock).register_alert(
                user_id=user.pk, kind="price_above", symbol="BTC", threshold="1"
            )
            result = "created"
        except RuleLimitExceeded:
            result = "limit"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["created", "created", "limit", "limit", "limit"]
    assert AlertRule.objects.filter(user=user).count() == 2
