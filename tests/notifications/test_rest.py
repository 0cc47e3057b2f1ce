"""REST: the merged list with cursor pagination and filters, read/dismiss/read-all, errors."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient

from tests.notifications.conftest import ClockedApi

pytestmark = pytest.mark.django_db


@pytest.fixture
def http(make_user):  # type: ignore[no-untyped-def]
    user = make_user()
    client = HttpClient()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client


def test_cursor_pages_merge_personal_notifications_and_announcements(http, notes: ClockedApi, clock) -> None:
    user = http.user
    expected = []
    for i in range(7):
        clock.advance(1)
        if i in (2, 5):
            expected.append(f"a:{notes.broadcast({'title': f'ann {i}'}).pk}")
        else:
            expected.append(f"n:{notes.send(user.pk, {'type': 'payment_received', 'title': f'p {i}'}).notification.pk}")
    seen, url = [], "/api/notifications/?limit=3"
    while url:
        page = http.get(url).json()
        assert len(page["results"]) <= 3
        seen += [item["id"] for item in page["results"]]
        url = page["next"]
    assert seen == expected[::-1]  # newest first, each once


def test_filters_by_type_and_read_state(http, notes: ClockedApi) -> None:
    user = http.user
    a = notes.send(user.pk, {"type": "payment_received", "title": "paid"}).notification
    notes.send(user.pk, {"type": "security_warning", "title": "login", "priority": "urgent"})
    ann = notes.broadcast({"title": "news"})
    notes.mark_read(user.pk, f"n:{a.pk}")
    ids = lambda q: [i["id"] for i in http.get(f"/api/notifications/?{q}").json()["results"]]  # noqa: E731
    assert ids("type=payment_received") == [f"n:{a.pk}"]
    assert ids("type=system_announcement") == [f"a:{ann.pk}"]
    assert ids("read=true") == [f"n:{a.pk}"]
    assert len(ids("read=false")) == 2
    assert http.get("/api/notifications/unread-count/").json() == {"unread_count": 2}


def test_actions_and_their_errors(http, notes: ClockedApi, make_user) -> None:
    user = http.user
    mine = notes.send(user.pk, {"type": "payment_received", "title": "paid"}).notification
    theirs = notes.send(make_user().pk, {"type": "payment_received", "title": "theirs"}).notification
    assert http.post(f"/api/notifications/n:{mine.pk}/read/").json() == {"unread_count": 0}
    assert http.post(f"/api/notifications/n:{theirs.pk}/read/").status_code == 404
    assert http.post(f"/api/notifications/n:{theirs.pk}/dismiss/").json()["code"] == "not_found"
    assert http.post("/api/notifications/garbage/read/").json()["code"] == "bad_request"
    assert http.post(f"/api/notifications/n:{mine.pk}/dismiss/").json() == {"unread_count": 0}
    assert http.post("/api/notifications/read-all/").json() == {"unread_count": 0}
    theirs.refresh_from_db()
    assert theirs.read_at is None and theirs.dismissed_at is None
    for query in ("type=nope", "read=maybe", "cursor=!!!", "limit=0", "limit=x", "limit=1000"):
        response = http.get(f"/api/notifications/?{query}")
        assert response.status_code == 400 and response.json()["code"] == "bad_request", query
    assert HttpClient().get("/api/notifications/").status_code in (401, 403)
