"""Operational endpoints (issue #12, finding 10): /healthz is public; /readyz details and
/metrics need the ops token or a staff session in production, and a load balancer's
unauthenticated probe still gets the bare readiness status and code."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db(transaction=True)  # /readyz reads from another thread

TOKEN = "s3cr3t-ops-token"


@pytest.fixture
def production(settings: Any) -> Any:
    with override_settings(PRODUCTION=True, REALTIME={**settings.REALTIME, "OPS_TOKEN": TOKEN}):
        yield


def test_anonymous_probes_get_health_and_a_bare_readiness_only(production: None) -> None:
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert client.get("/readyz", HTTP_AUTHORIZATION="Bearer wrong").json() == {"status": "ready"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 403 and metrics.json()["code"] == "forbidden"
    assert b"realtime_connections" not in metrics.content
    signed_in = get_user_model().objects.create_user(username="user", password="pw")
    client.force_login(signed_in)  # a signed-in user who is not staff: no details either
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/metrics").status_code == 403


def test_the_ops_token_and_staff_sessions_get_the_details(production: None) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    body = client.get("/readyz").json()
    assert body["status"] == "ready" and {"gateway", "database", "connections", "apps"} <= set(body)
    assert b"realtime_connections" in client.get("/metrics").content
    staff = get_user_model().objects.create_user(username="ops", password="pw", is_staff=True)
    session = Client()
    session.force_login(staff)
    assert "database" in session.get("/readyz").json()
    assert session.get("/metrics").status_code == 200


def test_without_a_configured_token_no_bearer_passes(settings: Any) -> None:
    with override_settings(PRODUCTION=True, REALTIME={**settings.REALTIME, "OPS_TOKEN": ""}):
        client = Client(HTTP_AUTHORIZATION="Bearer ")
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/metrics").status_code == 403


def test_embedded_mode_serves_details_to_a_developer() -> None:
    assert "database" in Client().get("/readyz").json()
    assert Client().get("/metrics").status_code == 200
