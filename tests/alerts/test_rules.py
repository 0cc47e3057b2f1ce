"""Rule CRUD over REST and the socket; every bad input gets a clear error and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client as HttpClient
from django.test import override_settings
from django.utils import timezone

from alerts.models import AlertRule
from tests.support.ws import Client

from .conftest import HistoryPrices

GOOD = {"kind": "price_above", "symbol": "BTC", "threshold": 100}

BAD: list[tuple[dict[str, Any], str]] = [
    ({"kind": "price_above", "symbol": "NOPE", "threshold": 1}, "symbol"),  # unknown symbol
    ({"kind": "price_above", "symbol": "B-T-C", "threshold": 1}, "symbol"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": -5}, "threshold"),  # negative price
    ({"kind": "price_below", "symbol": "BTC", "threshold": 0}, "threshold"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": "abc"}, "threshold"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": True}, "threshold"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": "1e40"}, "threshold"),
    ({"kind": "percent_move", "symbol": "BTC", "threshold": 5, "window": 0}, "window"),  # zero window
    ({"kind": "percent_move", "symbol": "BTC", "threshold": 5}, "window"),
    ({"kind": "percent_move", "symbol": "BTC", "threshold": -5, "window": 3600}, "threshold"),
    ({"kind": "percent_move", "symbol": "BTC", "threshold": 5000, "window": 3600}, "threshold"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": 1, "cooldown": 10**9}, "cooldown"),  # absurd cooldown
    ({"kind": "price_above", "symbol": "BTC", "threshold": 1, "cooldown": -1}, "cooldown"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": 1, "window": 3600}, "window"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": 1, "direction": "up"}, "direction"),
    ({"kind": "price_cross", "symbol": "BTC", "threshold": 1, "direction": "sideways"}, "direction"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": 1, "mode": "twice"}, "mode"),
    ({"kind": "moon", "symbol": "BTC", "threshold": 1}, "kind"),
    ({"kind": "portfolio_above", "symbol": "BTC", "threshold": 1}, "symbol"),
    ({"kind": "portfolio_below", "threshold": -1}, "threshold"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": 1, "expires_at": 1000}, "expires_at"),  # in the past
    ({"kind": "price_above", "symbol": "BTC", "threshold": 1, "expires_at": "tomorrow"}, "expires_at"),
    ({"kind": "price_above", "symbol": "BTC"}, "threshold"),
    ({"kind": "price_above", "symbol": "BTC", "threshold": 1, "colour": "red"}, "colour"),
]


@pytest.fixture
def known_symbols(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process engine validates against the prices app (its fallback list here)."""
    from alerts import engine as engine_module

    engine_module.ENGINE.set(engine_module.AlertEngine(prices=HistoryPrices({"BTC", "ETH"})))


@pytest.mark.django_db
@pytest.mark.parametrize("body,field", BAD)
def test_rest_rejects_bad_rules_and_writes_nothing(make_user, known_symbols, body, field) -> None:
    http = HttpClient()
    http.force_login(make_user())
    response = http.post("/api/alerts/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request"
    assert response.json()["details"]["field"] == field
    assert AlertRule.objects.count() == 0


@pytest.mark.django_db
def test_rest_crud_and_other_users_rules_are_not_found(make_user, known_symbols) -> None:
    owner, other = make_user(), make_user()
    http = HttpClient()
    http.force_login(owner)
    created = http.post("/api/alerts/", {**GOOD, "mode": "repeat", "cooldown": 60}, content_type="application/json")
    assert created.status_code == 201
    rule = created.json()["rule"]
    assert rule["symbol"] == "BTC" and rule["threshold"] == 100.0 and rule["cooldown"] == 60 and rule["active"]
    assert [r["id"] for r in http.get("/api/alerts/").json()["rules"]] == [rule["id"]]
    patched = http.patch(f"/api/alerts/{rule['id']}/", {"active": False}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["rule"]["active"] is False
    bad_patch = http.patch(f"/api/alerts/{rule['id']}/", {"threshold": 5}, content_type="application/json")
    assert bad_patch.status_code == 400

    intruder = HttpClient()
    intruder.force_login(other)
    assert intruder.get(f"/api/alerts/{rule['id']}/").status_code == 404
    assert intruder.delete(f"/api/alerts/{rule['id']}/").status_code == 404
    assert AlertRule.objects.get(pk=rule["id"]).deleted_at is None

    assert http.delete(f"/api/alerts/{rule['id']}/").json() == {"deleted": True}
    assert http.get("/api/alerts/").json()["rules"] == []
    assert http.delete(f"/api/alerts/{rule['id']}/").status_code == 404
    assert HttpClient().get("/api/alerts/").status_code in (401, 403)


@pytest.mark.django_db
@override_settings(ALERTS={"MAX_RULES_PER_USER": 2})
def test_per_user_limit(make_user, known_symbols) -> None:
    user = make_user()
    http = HttpClient()
    http.force_login(user)
    for _ in range(2):
        assert http.post("/api/alerts/", GOOD, content_type="application/json").status_code == 201
    over = http.post("/api/alerts/", GOOD, content_type="application/json")
    assert over.status_code == 409 and over.json()["code"] == "rule_limit"
    assert AlertRule.objects.filter(user=user).count() == 2
    # Deleting one makes room again.
    first = AlertRule.objects.filter(user=user).first()
    assert first is not None
    http.delete(f"/api/alerts/{first.pk}/")
    assert http.post("/api/alerts/", GOOD, content_type="application/json").status_code == 201


@pytest.mark.django_db(transaction=True)
async def test_socket_actions_are_acknowledged_by_id(make_user, known_symbols) -> None:
    user, other = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    client = Client(user=user)
    assert await client.connect()
    reply = await client.request({"type": "alerts.create", "id": "c1", **GOOD, "expires_at": _in_an_hour_ms()})
    assert reply["type"] == "reply" and reply["id"] == "c1" and reply["request"] == "alerts.create"
    rule = reply["data"]["rule"]
    assert rule["kind"] == "price_above" and rule["expires_at"] is not None
    listed = await client.request({"type": "alerts.list", "id": 2})
    assert [r["id"] for r in listed["data"]["rules"]] == [rule["id"]]

    bad = await client.request({"type": "alerts.create", "id": 3, "kind": "price_above", "symbol": "X", "threshold": 1})
    assert bad["type"] == "error" and bad["code"] == "bad_request" and bad["id"] == 3
    assert bad["details"]["field"] == "symbol"
    bad_id = await client.request({"type": "alerts.delete", "id": 4, "rule_id": "1"})
    assert bad_id["code"] == "bad_request"

    intruder = Client(user=other)
    assert await intruder.connect()
    denied = await intruder.request({"type": "alerts.delete", "id": 5, "rule_id": rule["id"]})
    assert denied["type"] == "error" and denied["code"] == "not_found"
    await intruder.close()

    deleted = await client.request({"type": "alerts.delete", "id": 6, "rule_id": rule["id"]})
    assert deleted["data"] == {"deleted": True}
    assert (await client.request({"type": "alerts.list", "id": 7}))["data"]["rules"] == []
    await client.close()

    anonymous = Client()
    assert await anonymous.connect()
    refused = await anonymous.request({"type": "alerts.list", "id": 8})
    assert refused["code"] == "unauthenticated"
    await anonymous.close()


def _in_an_hour_ms() -> int:
    return int((timezone.now() + timedelta(hours=1)).timestamp() * 1000)
