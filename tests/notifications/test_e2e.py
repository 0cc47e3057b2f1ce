"""End to end on real processes: two gateways sharing one Redis, and announcement
scheduling through a real Celery worker on a real Redis broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async
from django.utils import timezone

from notifications import api
from notifications.models import Announcement
from realtime_project.gateway.auth import issue_ticket
from tests.support.celery_worker import CeleryWorker
from tests.support.ws import recv_live

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.redis]


class Socket:
    """A real WebSocket client that answers server pings and skips them."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, base_url: str, user_id: int) -> Socket:
        ticket, _ = issue_ticket(user_id)
        socket = cls(await websockets.connect(f"{base_url}?ticket={ticket}"))
        assert (await socket.recv())["type"] == "welcome"
        return socket

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        return await recv_live(self.ws, timeout)

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send(json.dumps(frame))
        return await self.recv()

    async def subscribe(self, channel: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        reply = await self.request({"type": "subscribe", "id": channel, "channel": channel, **extra})
        assert reply["type"] == "subscribed", reply
        first = None if reply.get("recovered") else await self.recv()
        return reply, first

    async def close(self) -> None:
        await self.ws.close()


async def test_two_gateways_deliver_sync_read_state_and_recover(
    live_server_factory, redis_url, key_prefix, redis_settings, make_user
) -> None:
    user = await database_sync_to_async(make_user)()
    gw1 = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    gw2 = live_server_factory(server="daphne", redis=redis_url, key_prefix=key_prefix)
    phone = await Socket.open(gw1.ws_url, user.pk)
    laptop = await Socket.open(gw2.ws_url, user.pk)
    sub, snapshot = await phone.subscribe("notifications")
    assert snapshot is not None and snapshot["data"]["event"] == "snapshot"
    await laptop.subscribe("notifications")

    # Persisted here (this process), delivered through Redis by both gateways.
    sent = await database_sync_to_async(api.send)(
        user.pk, {"type": "payment_received", "title": "Paid", "priority": "high"}
    )
    nid = f"n:{sent.notification.pk}"
    on_phone, on_laptop = await phone.recv(), await laptop.recv()
    for message in (on_phone, on_laptop):
        assert message["data"]["event"] == "created" and message["data"]["notification"]["id"] == nid
    assert on_phone["seq"] == on_laptop["seq"] == sub["seq"] + 1

    # Read on the phone (gateway 1): the laptop (gateway 2) clears its badge.
    await phone.ws.send(json.dumps({"type": "notifications.mark_read", "id": 7, "notification_id": nid}))
    frames = [await phone.recv(), await phone.recv()]
    assert {"type": "reply", "id": 7, "request": "notifications.mark_read", "data": {"unread_count": 0}} in frames
    assert (await laptop.recv())["data"] == {"event": "read", "ids": [nid], "unread_count": 0}
    last = frames[0] if frames[0]["type"] == "message" else frames[1]

    # The laptop goes offline; two more arrive; it comes back on the other gateway.
    await laptop.close()
    for title in ("while away 1", "while away 2"):
        await database_sync_to_async(api.send)(user.pk, {"type": "payment_received", "title": title})
    assert [(await phone.recv())["data"]["notification"]["title"] for _ in range(2)] == ["while away 1", "while away 2"]
    back = await Socket.open(gw1.ws_url, user.pk)
    resumed, _ = await back.subscribe("notifications", since={"epoch": last["epoch"], "seq": last["seq"]})
    assert resumed["recovered"] is True
    replay = [await back.recv(), await back.recv()]
    assert [m["data"]["notification"]["title"] for m in replay] == ["while away 1", "while away 2"]
    with pytest.raises(asyncio.TimeoutError):
        await back.recv(timeout=0.5)  # nothing twice
    for socket in (phone, back):
        await socket.close()


@pytest.fixture
def celery_worker(redis_url: str, key_prefix: str) -> Iterator[str]:
    """A real worker on its own queue (never the default one other runs share)."""
    w = CeleryWorker(redis_url=redis_url, key_prefix=key_prefix, name="notif-e2e")
    yield w.queue
    w.stop()
    w.assert_clean_log()


@pytest.fixture
def broker(settings, redis_url: str, celery_worker: str):  # type: ignore[no-untyped-def]
    """Point this process's Celery app at the real broker and the worker's queue."""
    from realtime_project.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = redis_url, False
    app._after_fork()  # drop pooled connections/producers bound to the previous broker
    settings.NOTIFICATIONS = {"CELERY_QUEUE": celery_worker}
    yield
    if app._pool is not None:
        app._pool.force_close_all()
    app.conf.broker_url, app.conf.task_always_eager = saved
    app._after_fork()
    # kombu keeps producer pools in a process-wide registry keyed by broker URL: drop
    # them, or another app on the same broker would acquire from the closed pool.
    from kombu import pools

    pools.reset()


async def test_announcement_is_published_by_a_real_worker_at_publish_at(
    live_server_factory, redis_url, key_prefix, redis_settings, broker, make_user
) -> None:
    user = await database_sync_to_async(make_user)()
    gateway = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    socket = await Socket.open(gateway.ws_url, user.pk)
    _, snapshot = await socket.subscribe("announcements")
    assert snapshot is not None and snapshot["data"]["notifications"] == []

    from notifications.services.announcements import announcement_create

    publish_at = timezone.now() + timedelta(seconds=3)
    announcement = await database_sync_to_async(announcement_create)(
        title="Scheduled maintenance", body="Tonight", publish_at=publish_at, now=timezone.now()
    )
    await asyncio.sleep(1)
    assert (await database_sync_to_async(Announcement.objects.get)(pk=announcement.pk)).published_at is None
    message = await socket.recv(timeout=30)
    arrived = timezone.now()
    assert message["channel"] == "announcements" and message["data"]["event"] == "created"
    assert message["data"]["notification"]["id"] == f"a:{announcement.pk}"
    assert arrived >= publish_at - timedelta(milliseconds=50)
    stored = await database_sync_to_async(Announcement.objects.get)(pk=announcement.pk)
    assert stored.published_at is not None and stored.published_at >= publish_at
    assert await database_sync_to_async(api.unread_count)(user.pk) == 1
    await socket.close()
