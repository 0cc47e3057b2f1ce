"""The notifications channel through the real consumer (in-process): delivery to every
connection of a user, read-state sync, priority order, offline catch-up, snapshots."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from notifications import api
from tests.support.ws import Client

from .conftest import note

pytestmark = pytest.mark.django_db(transaction=True)


async def subscribed(user: Any, channel: str = "notifications", **extra: Any) -> tuple[Client, dict[str, Any]]:
    client = Client(user=user)
    assert await client.connect()
    reply = await client.request({"type": "subscribe", "id": "s", "channel": channel, **extra})
    assert reply["type"] == "subscribed", reply
    return client, reply


async def act(client: Client, frame: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send an action; return (its reply, the event it caused on this connection).

    The event is published before the handler returns, so it may arrive first."""
    await client.send(frame)
    frames = [await client.recv(), await client.recv()]
    reply = next(f for f in frames if f["type"] == "reply")
    event = next(f for f in frames if f["type"] == "message")
    return reply, event


async def messages(client: Client, count: int) -> list[dict[str, Any]]:
    out = [await client.recv() for _ in range(count)]
    assert all(m["type"] == "message" for m in out), out
    return out


async def test_every_connection_of_the_user_gets_it_and_others_do_not(make_user) -> None:
    user, other = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    phone, first = await subscribed(user)
    laptop, _ = await subscribed(user)
    stranger, _ = await subscribed(other)
    assert (await phone.recv())["data"]["event"] == "snapshot"  # durable: starts from the DB
    assert (await laptop.recv())["data"] == {"event": "snapshot", "unread_count": 0, "notifications": []}
    await stranger.recv()
    result = await database_sync_to_async(api.send)(user.pk, note(data={"ip": "10.0.0.1"}))
    for client in (phone, laptop):
        [message] = await messages(client, 1)
        assert message["channel"] == "notifications" and message["seq"] == first["seq"] + 1
        event = message["data"]
        assert event["event"] == "created" and event["unread_count"] == 1
        n = event["notification"]
        assert n["id"] == f"n:{result.notification.pk}" and n["type"] == "security_warning"
        assert n["priority"] == "high" and n["read_at"] is None and n["data"] == {"ip": "10.0.0.1"}
        assert isinstance(n["created_at"], int)
    assert await stranger.nothing()
    for c in (phone, laptop, stranger):
        await c.close()


async def test_read_state_follows_the_user_to_other_connections(make_user) -> None:
    user = await database_sync_to_async(make_user)()
    sent = [await database_sync_to_async(api.send)(user.pk, note(title=f"n{i}")) for i in range(3)]
    ids = [f"n:{r.notification.pk}" for r in sent]
    phone, _ = await subscribed(user)
    laptop, _ = await subscribed(user)
    snapshot = (await laptop.recv())["data"]
    assert snapshot["unread_count"] == 3 and [n["id"] for n in snapshot["notifications"]] == ids[::-1]
    await phone.recv()

    reply, echo = await act(phone, {"type": "notifications.mark_read", "id": 1, "notification_id": ids[0]})
    assert reply == {"type": "reply", "id": 1, "request": "notifications.mark_read", "data": {"unread_count": 2}}
    assert (await laptop.recv())["data"] == {"event": "read", "ids": [ids[0]], "unread_count": 2}
    assert echo["data"]["event"] == "read"  # the acting connection's channel sees it too

    reply, _ = await act(laptop, {"type": "notifications.dismiss", "id": 2, "notification_id": ids[1]})
    assert reply["data"] == {"unread_count": 1}
    assert (await phone.recv())["data"] == {"event": "dismissed", "ids": [ids[1]], "unread_count": 1}

    reply, _ = await act(phone, {"type": "notifications.mark_all_read", "id": 3})
    assert reply["data"] == {"unread_count": 0}
    assert (await laptop.recv())["data"] == {"event": "read_all", "unread_count": 0}
    for c in (phone, laptop):
        await c.close()


async def test_bad_actions_get_coded_errors_and_change_nothing(make_user) -> None:
    owner, intruder = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    pk = (await database_sync_to_async(api.send)(owner.pk, note())).notification.pk
    client, _ = await subscribed(intruder)
    await client.recv()
    for frame, code in [
        ({"notification_id": f"n:{pk}"}, "not_found"),  # another user's
        ({"notification_id": "n:99999"}, "not_found"),  # unknown
        ({"notification_id": "a:99999"}, "not_found"),
        ({"notification_id": "zz"}, "bad_request"),
        ({}, "bad_request"),
    ]:
        for action in ("notifications.mark_read", "notifications.dismiss"):
            error = await client.request({"type": action, "id": 9, **frame})
            assert error["type"] == "error" and error["code"] == code and error["id"] == 9, error
    assert await client.nothing()
    assert await database_sync_to_async(api.unread_count)(owner.pk) == 1
    await client.close()
    anonymous = Client()
    assert await anonymous.connect()
    assert (await anonymous.request({"type": "notifications.mark_all_read", "id": 1}))["code"] == "unauthenticated"
    assert (await anonymous.request({"type": "subscribe", "id": 2, "channel": "notifications"}))[
        "code"
    ] == "unauthenticated"
    await anonymous.close()


async def test_a_flush_is_delivered_in_priority_order(make_user) -> None:
    user = await database_sync_to_async(make_user)()
    client, _ = await subscribed(user)
    await client.recv()
    batch = [(user.pk, {"type": "marketplace_update", "title": p, "priority": p}) for p in ("medium", "high", "urgent")]
    batch.append((user.pk, {"type": "security_warning", "title": "urgent 2", "priority": "urgent"}))
    await database_sync_to_async(api.send_many)(batch)
    received = [m["data"]["notification"]["title"] for m in await messages(client, 4)]
    assert received == ["urgent", "urgent 2", "high", "medium"]
    await client.close()


async def test_an_offline_user_catches_up_exactly_on_reconnect(make_user) -> None:
    user = await database_sync_to_async(make_user)()
    client, _ = await subscribed(user)
    await client.recv()
    await database_sync_to_async(api.send)(user.pk, note(title="seen"))
    seen = (await messages(client, 1))[0]
    await client.close()  # offline
    for title in ("missed 1", "missed 2"):
        await database_sync_to_async(api.send)(user.pk, note(title=title))
    back, resumed = await subscribed(user, since={"epoch": seen["epoch"], "seq": seen["seq"]})
    assert resumed["recovered"] is True
    replay = await messages(back, 2)
    assert [m["data"]["notification"]["title"] for m in replay] == ["missed 1", "missed 2"]
    assert [m["seq"] for m in replay] == [seen["seq"] + 1, seen["seq"] + 2]
    assert await back.nothing()  # nothing twice
    await back.close()

    # History lost (another epoch): the durable snapshot rebuilds from the database.
    fresh, lost = await subscribed(user, since={"epoch": "gone", "seq": 1})
    assert lost["recovered"] is False
    snap = (await fresh.recv())["data"]
    assert snap["event"] == "snapshot" and snap["unread_count"] == 3
    assert [n["title"] for n in snap["notifications"]] == ["missed 2", "missed 1", "seen"]
    await fresh.close()


async def test_announcements_channel_snapshot_carries_the_users_read_state(make_user) -> None:
    reader, other = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    listener, _ = await subscribed(other, "announcements")
    assert (await listener.recv())["data"]["notifications"] == []
    announcement = await database_sync_to_async(api.broadcast)({"title": "Hello all"})
    live = (await messages(listener, 1))[0]
    assert live["channel"] == "announcements" and live["data"]["event"] == "created"
    assert live["data"]["notification"]["id"] == f"a:{announcement.pk}"
    await database_sync_to_async(api.mark_read)(reader.pk, f"a:{announcement.pk}")
    client, _ = await subscribed(reader, "announcements")
    snap = (await client.recv())["data"]
    assert snap["unread_count"] == 0 and snap["notifications"][0]["read_at"] is not None
    for c in (client, listener):
        await c.close()
