"""The Sources admin shows each venue's stream as the feed process reported it."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from prices.models import Source

pytestmark = pytest.mark.django_db


def test_sources_list_shows_stream_state_fallback_and_disagreements(client: Client) -> None:
    staff = get_user_model().objects.create_user("ops", password="pw", is_staff=True, is_superuser=True)
    client.force_login(staff)
    Source.objects.filter(slug="binance").update(
        stream_health={"ok": True, "reconnects": 3, "rest": "reconcile", "updated_at": time.time()},
        reconciliation={"disagreements": [{"symbol": "BTC", "stream": 1.0, "rest": 2.0}]},
    )
    Source.objects.filter(slug="kraken").update(
        stream_health={
            "ok": False,
            "state": "backoff",
            "last_error": "connect_failed: refused",
            "rest": "fallback",
            "updated_at": time.time(),
        }
    )
    Source.objects.filter(slug="okx").update(stream_health={"ok": True, "updated_at": time.time() - 600})
    page = client.get("/admin/prices/source/").content.decode()
    assert "live, 3 reconnects · REST disagrees on 1" in page
    assert "backoff: connect_failed: refused · REST fallback" in page
    assert "no report (feed process stopped?)" in page
    detail = client.get(f"/admin/prices/source/{Source.objects.get(slug='kraken').pk}/change/").content.decode()
    assert "connect_failed: refused" in detail and "Stream" in detail
