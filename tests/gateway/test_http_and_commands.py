"""HTTP endpoints of the gateway, the management commands and the embedded scheduler."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient
from rest_framework.authtoken.models import Token

from realtime_project.gateway.auth import check_ticket
from realtime_project.gateway.errors import Unauthenticated

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> Any:
    return get_user_model().objects.create_user("dora", password="pw")


def test_healthz_is_liveness_only(client: HttpClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_database_layer_connections_and_apps(client: HttpClient) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["database"]["ok"] is True
    assert body["channel_layer"] == {"ok": True, "backend": "memory"}
    assert {"connections", "users", "channels"} <= set(body["connections"])
    assert body["cluster"]["ok"] is True
    assert isinstance(body["apps"], dict)


def test_readyz_is_503_when_a_critical_app_check_fails(client: HttpClient) -> None:
    from realtime_project.gateway import health

    health.register_check("broken", lambda: {"ok": False, "why": "test"}, critical=True)
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["apps"]["broken"] == {"ok": False, "why": "test", "critical": True}
    finally:
        health._checks.pop("broken")


def test_readyz_redis_backend_checks_redis(client: HttpClient, redis_settings: Any) -> None:
    body = client.get("/readyz").json()
    assert body["channel_layer"] == {"ok": True, "backend": "redis"}
    assert body["cluster"]["ok"] is True


def test_metrics_exposes_prometheus_text(client: HttpClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    for name in (
        "realtime_connections",
        "realtime_frames_in_total",
        "realtime_errors_total",
        "realtime_publish_to_send_seconds",
    ):
        assert name in text


def test_openapi_schema_and_docs_page(client: HttpClient) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = json.loads(schema.content)
    assert "/api/ws-ticket/" in spec["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_ws_ticket_requires_authentication(client: HttpClient, user: Any) -> None:
    assert client.post("/api/ws-ticket/").status_code in (401, 403)
    client.force_login(user)
    response = client.post("/api/ws-ticket/")
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == 60 and body["url"] == f"/ws/?ticket={body['ticket']}"
    assert check_ticket(body["ticket"]) == user.pk
    with pytest.raises(Unauthenticated, match="already used"):
        check_ticket(body["ticket"])


def test_ws_ticket_with_drf_token(client: HttpClient, user: Any) -> None:
    token = Token.objects.create(user=user)
    response = client.post("/api/ws-ticket/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 201


def test_publish_command_refuses_embedded_mode() -> None:
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("publish", "prices:BTC", "{}")


def test_publish_command_publishes_and_validates(settings: Any, redis_settings: Any) -> None:
    settings.EMBEDDED = False
    out = StringIO()
    call_command("publish", "prices:BTC", '{"price": 1}', stdout=out)
    assert "seq=1" in out.getvalue()
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("publish", "prices:BTC", "{nope")
    with pytest.raises(CommandError, match="unknown channel namespace"):
        call_command("publish", "nosuch:BTC", "{}")


def test_demo_user_and_setup_schedule_commands() -> None:
    from django_celery_beat.models import PeriodicTask

    out = StringIO()
    call_command("demo_user", stdout=out)
    assert "demo" in out.getvalue()
    assert get_user_model().objects.get(username="demo").is_staff
    call_command("setup_schedule", stdout=StringIO())
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    from realtime_project.scheduling import declared_specs

    assert {spec.name for spec in declared_specs()} <= names
    # Staff changes stick: a second run creates nothing and keeps an edited interval.
    task = PeriodicTask.objects.order_by("pk").first()
    if task is not None:
        task.enabled = False
        task.save()
        call_command("setup_schedule", stdout=StringIO())
        task.refresh_from_db()
        assert task.enabled is False


def test_embedded_scheduler_runs_due_tasks_from_the_database(transactional_db: None) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from realtime_project.celery import app
    from realtime_project.scheduling import EmbeddedScheduler

    calls: list[int] = []

    @app.task(name="tests.record_call")
    def record_call(value: int) -> None:
        calls.append(value)

    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="rec", task="tests.record_call", interval=every, kwargs='{"value": 7}')
    scheduler = EmbeddedScheduler()
    try:
        assert scheduler.run_due() == ["rec"]
        scheduler._running["rec"].result(timeout=5)
        assert calls == [7]
        assert scheduler.run_due() == []  # not due again for 60 s
        entry = PeriodicTask.objects.get(name="rec")
        assert entry.total_run_count == 1 and entry.last_run_at is not None
        PeriodicTask.objects.filter(name="rec").update(enabled=False)
        assert scheduler.run_due() == []
    finally:
        scheduler.stop()
