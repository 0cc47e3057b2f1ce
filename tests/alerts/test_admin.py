"""Staff create alert rules in the admin (issue #12, finding 15), validated like the API's
and registered through the engine: the rule is live in the index at once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from alerts.engine import get_engine
from alerts.models import AlertRule

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "/admin/alerts/alertrule/add/"


@pytest.fixture(autouse=True)
def tracked_symbols() -> None:
    """Rules name tracked symbols (a transactional test's flush empties the seeded ones)."""
    from prices.models import Symbol

    for symbol in ("BTC", "ETH"):
        Symbol.objects.get_or_create(symbol=symbol)


@pytest.fixture
def staff_client() -> Client:
    staff = get_user_model().objects.create_user("op", password="pw-staff-123456", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    return client


def form(user: Any, **fields: Any) -> dict[str, Any]:
    base = {
        "user": user.pk,
        "kind": "price_above",
        "symbol": "btc",
        "threshold": "100000",
        "direction": "either",
        "window": "",
        "mode": "once",
        "cooldown": "",
        "expires_at_0": "",
        "expires_at_1": "",
    }
    return {**base, **fields}


def test_staff_create_a_rule_for_a_user(staff_client: Client) -> None:
    user = get_user_model().objects.create_user("uma", password="pw-uma-1234567")
    page = staff_client.get(ADD)
    assert page.status_code == 200 and 'name="threshold"' in page.content.decode()
    engine = get_engine()
    engine.load(engine.clock.now())
    response = staff_client.post(ADD, form(user))
    assert response.status_code == 302, response.content.decode()[-3000:]
    rule = AlertRule.objects.get(user=user)
    assert (rule.kind, rule.symbol, rule.threshold, rule.active) == ("price_above", "BTC", Decimal("100000"), True)
    # Registered through the engine: the index holds it (a price above the threshold takes it).
    assert rule.pk in {r.pk for r in engine.get_alerts(user.pk)}
    taken = engine.match({"updates": [{"symbol": "BTC", "price": 100001}], "ts": 0})
    assert [rule_id for t in taken for rule_id in t.ids] == [rule.pk]


def test_invalid_rules_are_form_errors(staff_client: Client, settings: Any) -> None:
    user = get_user_model().objects.create_user("vic", password="pw-vic-1234567")
    unknown = staff_client.post(ADD, form(user, symbol="NOPE"))
    assert unknown.status_code == 200 and "unknown symbol NOPE" in unknown.content.decode()
    no_window = staff_client.post(ADD, form(user, kind="percent_move", threshold="5"))
    assert "needs a window" in no_window.content.decode()
    settings.ALERTS = {"MAX_RULES_PER_USER": 1}
    assert staff_client.post(ADD, form(user)).status_code == 302
    over = staff_client.post(ADD, form(user, threshold="200000"))
    assert over.status_code == 200 and "the limit" in over.content.decode()
    assert AlertRule.objects.filter(user=user).count() == 1
