"""Push goes to users without an open socket (or urgent), decided by the gateways' presence."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from notifications import api
from notifications.models import Delivery
from realtime_project.gateway.api import online_user_ids
from tests.support.ws import Client

from .conftest import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def states(notification_id: int) -> list[tuple[str, str]]:
    return list(Delivery.objects.filter(notification_id=notification_id, channel="push").values_list("state", "reason"))


async def test_an_open_socket_means_no_push_unless_urgent(delivery_settings, push_service, make_user) -> None:
    user, away = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    here_sub, away_sub = push_service.new_subscription(), push_service.new_subscription()
    await database_sync_to_async(subscribe)(user, here_sub)
    await database_sync_to_async(subscribe)(away, away_sub)
    client = Client(user=user)
    assert await client.connect()
    send = database_sync_to_async(api.send)
    # Sent for real: after commit the (eager, embedded) task checks presence and pushes.
    seen = (await send(user.pk, {"type": "payment_received", "title": "Paid", "priority": "high"})).notification
    alarm = (
        await send(user.pk, {"type": "security_warning", "title": "New sign-in", "priority": "urgent"})
    ).notification
    told = (await send(away.pk, {"type": "payment_received", "title": "Paid too", "priority": "high"})).notification
    assert await database_sync_to_async(states)(seen.pk) == [("cancelled", "online")]
    assert await database_sync_to_async(states)(alarm.pk) == [("sent", "")]
    assert await database_sync_to_async(states)(told.pk) == [("sent", "")]
    assert [m.json["title"] for m in push_service.messages(here_sub)] == ["New sign-in"]
    assert [m.json["title"] for m in push_service.messages(away_sub)] == ["Paid too"]
    await client.close()


async def test_presence_across_gateways_comes_from_redis(redis_settings: Any, make_user) -> None:
    user, other = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    client = Client(user=user)
    assert await client.connect()
    for _ in range(100):  # the gateway refreshes presence within ~1 s of a connection
        if await asyncio.to_thread(online_user_ids, [user.pk, other.pk]):
            break
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(online_user_ids, [user.pk, other.pk]) == {user.pk}
    assert user.pk in await asyncio.to_thread(online_user_ids)
    await client.close()
