"""Durable publications (the outbox): what a user was told is never lost to a Redis
outage, a Redis restart or a process dying between commit and publish, and never sent
twice. Real Redis (a private one where it is stopped), real PostgreSQL, a real gateway
and a real feed process for the end-to-end case."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import pytest
import redis as redis_sync
import websockets
from django.db import transaction
from django.utils import timezone

from notifications import api as notifications_api
from realtime_project.gateway import outbox
from realtime_project.gateway.api import publish_on_commit, validate_channel
from realtime_project.gateway.models import PendingPublication
from tests.support.feeds_process import FeedsProcess
from tests.support.redis_server import RedisServer, use_private_redis
from tests.support.ws import recv_live

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

LATER = timedelta(seconds=outbox.GRACE_SECONDS + 1)


@pytest.fixture
def on_private_redis(settings: Any, private_redis: RedisServer, key_prefix: str) -> RedisServer:
    use_private_redis(settings, private_redis, key_prefix)
    return private_redis


@pytest.fixture
def user(db: None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username="olga", password=None)


def history(redis_url: str, key_prefix: str, channel: str) -> list[str]:
    client = redis_sync.Redis.from_url(redis_url, decode_responses=True)
    try:
        return list(client.lrange(f"{key_prefix}:h:{{{channel}}}:l", 0, -1))
    finally:
        client.close()


def note(title: str) -> dict[str, Any]:
    return {"type": "security_warning", "title": title, "priority": "high"}


def test_a_notification_sent_while_redis_is_down_goes_out_once_when_it_is_back(
    on_private_redis: RedisServer, key_prefix: str, user: Any
) -> None:
    channel = f"notifications:{user.pk}"
    on_private_redis.stop()
    result = notifications_api.send(user.pk, note("while Redis was down"))  # committed; the publish failed
    assert result.created
    pending = PendingPublication.objects.get()
    assert [channel_ for channel_, _ in pending.items] == [channel]

    assert outbox.flush(now=timezone.now() + LATER).failed == 1  # still down: kept, retried later
    pending.refresh_from_db()
    assert pending.attempts == 1 and pending.last_error and pending.due_at > timezone.now()

    on_private_redis.start()  # empty: a new epoch
    sent = outbox.flush(now=timezone.now() + timedelta(minutes=5))
    assert (sent.sent, sent.failed) == (1, 0) and not PendingPublication.objects.exists()
    entries = history(on_private_redis.url, key_prefix, channel)
    assert len(entries) == 1 and entries[0].startswith("1|")
    event = json.loads(entries[0].partition("|")[2])
    assert event["notification"]["title"] == "while Redis was down"
    assert outbox.flush(now=timezone.now() + timedelta(minutes=5)).sent == 0


def test_a_publication_sent_but_never_confirmed_is_not_sent_again(
    redis_settings: Any, redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process died after publishing, before deleting its outbox row."""

    def die(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(outbox, "confirm", die)
    with transaction.atomic():
        publish_on_commit("notifications:7", {"n": 1}, durable=True)
    assert PendingPublication.objects.count() == 1
    monkeypatch.undo()
    assert outbox.flush(now=timezone.now() + LATER).sent == 1  # same key: the first result
    assert not PendingPublication.objects.exists()
    assert [e.partition("|")[0] for e in history(redis_url, key_prefix, "notifications:7")] == ["1"]


def test_a_publication_whose_process_died_before_publishing_goes_out_after_the_grace(
    redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    """kill -9 between commit and publish: the row committed with the data; no send."""
    with transaction.atomic():
        outbox.add([(validate_channel("wallet:0xabc"), '{"n":1}')], "commit:dead-worker")
    assert outbox.flush().claimed == 0  # within the grace its own process may still send it
    assert outbox.flush(now=timezone.now() + LATER).sent == 1
    assert history(redis_url, key_prefix, "wallet:0xabc") == ['1|{"n":1}']


def test_a_rolled_back_transaction_leaves_nothing_to_send(redis_settings: Any) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_on_commit("notifications:7", {"n": 1}, durable=True)
        raise RuntimeError("rollback")
    assert not PendingPublication.objects.exists()


def test_flush_keeps_order_and_stops_at_the_first_failure(on_private_redis: RedisServer, key_prefix: str) -> None:
    on_private_redis.stop()
    for n in range(3):
        with transaction.atomic():
            publish_on_commit("notifications:9", {"n": n}, durable=True)
    assert outbox.flush(now=timezone.now() + LATER).failed == 3
    on_private_redis.start()
    assert outbox.flush(now=timezone.now() + timedelta(minutes=5)).sent == 3
    entries = history(on_private_redis.url, key_prefix, "notifications:9")
    assert entries == ['1|{"n":0}', '2|{"n":1}', '3|{"n":2}']


@pytest.mark.e2e
async def test_a_subscriber_gets_a_notification_made_during_a_redis_restart_exactly_once(
    on_private_redis: RedisServer, live_server_factory: Any, key_prefix: str, user: Any
) -> None:
    """A gateway and the active feed process (its outbox feed) on a Redis that restarts:
    the subscriber keeps its socket and gets the notification made while Redis was down,
    once, with no manual step."""
    from realtime_project.gateway.auth import issue_ticket

    server = live_server_factory(server="uvicorn", redis=on_private_redis.url, key_prefix=key_prefix)
    feeds = FeedsProcess(
        redis=on_private_redis.url, key_prefix=key_prefix, extra={"FEEDS_ONLY": "gateway.outbox"}
    ).start()
    try:
        ticket, _ = issue_ticket(user.pk)
        async with websockets.connect(f"{server.ws_url}?ticket={ticket}") as ws:
            assert (await recv_live(ws))["type"] == "welcome"
            await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": "notifications"}))
            assert (await recv_live(ws))["type"] == "subscribed"
            assert (await recv_live(ws)).get("snapshot") is True

            on_private_redis.stop()
            await asyncio.to_thread(notifications_api.send, user.pk, note("told during the outage"))
            assert await PendingPublication.objects.acount() == 1
            on_private_redis.start()

            got = await recv_live(ws, timeout=30)
            assert got["type"] == "message" and got["data"]["notification"]["title"] == "told during the outage"
            assert got["seq"] == 1  # the new epoch's first publication
            await asyncio.to_thread(notifications_api.send, user.pk, note("after"))
            after = await recv_live(ws)
            assert (after["seq"], after["data"]["notification"]["title"]) == (2, "after")  # nothing twice
            deadline = time.monotonic() + 10
            while await PendingPublication.objects.acount() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert await PendingPublication.objects.acount() == 0
    finally:
        feeds.stop()
    assert "outbox: 1 pending publication(s) sent" in feeds.read_log()
