"""The feed runner's admin page: staff only, shows each feed's supervision and health."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from realtime_project.feeds_health import CacheHealthStore

pytestmark = pytest.mark.django_db


def test_staff_see_each_feed_and_anonymous_users_are_sent_to_login(client: Client) -> None:
    assert client.get("/admin/feeds/").status_code == 302
    staff = get_user_model().objects.create_user("ops", password="pw", is_staff=True, is_superuser=True)
    client.force_login(staff)
    page = client.get("/admin/feeds/").content.decode()
    assert "No feed runner is running." in page
    CacheHealthStore().write(
        {
            "instance": "feedhost:42",
            "active": True,
            "ok": False,
            "updated_at": time.time(),
            "interval": 2.0,
            "feeds": {
                "prices": {"ok": False, "state": "backoff", "starts": 3, "restarts": 2, "failures": 2,
                           "last_error": "ConnectionClosed: gone", "health": {"connected": False, "reconnects": 7}},
            },
        }
    )  # fmt: skip
    page = client.get("/admin/feeds/").content.decode()
    assert "feedhost:42" in page and "some feeds are not ok" in page
    assert "ConnectionClosed: gone" in page and "&quot;reconnects&quot;: 7" in page
    assert 'href="/admin/feeds/"' in client.get("/admin/").content.decode()
