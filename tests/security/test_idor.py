"""Insecure direct object references (issue #12, finding 9 and the IDOR sweep): every
endpoint that names an object by id, in every app, over REST and over the socket, answers
another user exactly as it answers for an object that does not exist, and changes nothing.

Alice owns one object of each kind; Mallory, signed in, tries each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import AlertRule
from notifications.models import Notification, PushSubscription
from realtime_project.gateway.auth import issue_ticket
from tests.support.ws import Client
from wallets.models import Chain, Wallet, WatchedTransaction

pytestmark = pytest.mark.django_db(transaction=True)

ALICE_ADDRESS = "0x" + "A1" * 20
TX_HASH = "0x" + "ab" * 32


@dataclass
class World:
    alice: Any
    mallory: Any
    rule: AlertRule
    notification: Notification
    device: PushSubscription
    wallet: Wallet
    tx: WatchedTransaction
    chain_id: int


def _world() -> World:
    users = get_user_model().objects
    alice = users.create_user(username="alice", password="pw")
    mallory = users.create_user(username="mallory", password="pw")
    rule = AlertRule.objects.create(user=alice, kind="price_above", symbol="BTC", threshold=Decimal("100000"))
    notification = Notification.objects.create(
        user=alice, type="price_alert", title="BTC above 100k", created_at=timezone.now()
    )
    device = PushSubscription.objects.create(
        user=alice, endpoint="https://push.example/alice", p256dh="k" * 87, auth="a" * 22, created_at=timezone.now()
    )
    from wallets.addresses import checksum

    wallet = Wallet.objects.create(user=alice, address=checksum(ALICE_ADDRESS), watch_only=True)
    chain = Chain.objects.create(chain_id=31999, name="idor", rpc_url="http://127.0.0.1:9", required_confirmations=1)
    tx = WatchedTransaction.objects.create(chain=chain, hash=TX_HASH, required=1, found="api")
    tx.watchers.add(alice)
    return World(alice, mallory, rule, notification, device, wallet, tx, chain.chain_id)


@pytest.fixture
def world() -> World:
    return _world()


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_rest_object_endpoints_refuse_another_users_objects(world: World) -> None:
    m = api(world.mallory)
    tx_url = f"/api/wallets/transactions/{world.chain_id}/{TX_HASH}/"
    attempts = [
        ("get", f"/api/alerts/{world.rule.pk}/", None),
        ("patch", f"/api/alerts/{world.rule.pk}/", {"active": False}),
        ("delete", f"/api/alerts/{world.rule.pk}/", None),
        ("post", f"/api/notifications/n:{world.notification.pk}/read/", None),
        ("post", f"/api/notifications/n:{world.notification.pk}/dismiss/", None),
        ("delete", f"/api/notifications/push/subscriptions/{world.device.pk}/", None),
        ("delete", f"/api/wallets/{world.wallet.pk}/", None),
        ("get", tx_url, None),
        ("delete", tx_url, None),
    ]
    for method, url, body in attempts:
        response = getattr(m, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code, response.content)
        assert response.json()["code"] == "not_found", (method, url)
    # The same answer as for objects that do not exist at all.
    assert m.get("/api/alerts/999999/").status_code == 404
    assert m.get(f"/api/wallets/transactions/{world.chain_id}/0x{'cd' * 32}/").status_code == 404
    # Activity of an address Mallory did not link.
    assert m.get("/api/wallets/activity/", {"address": world.wallet.address}).status_code == 403
    # Push unsubscribe by endpoint only ever removes the caller's own device.
    assert m.post("/api/notifications/push/unsubscribe/", {"endpoint": world.device.endpoint}).status_code == 204

    # Nothing changed.
    world.rule.refresh_from_db()
    world.notification.refresh_from_db()
    assert world.rule.active is True
    assert world.notification.read_at is None and world.notification.dismissed_at is None
    assert PushSubscription.objects.filter(pk=world.device.pk).exists()
    assert Wallet.objects.filter(pk=world.wallet.pk).exists()
    assert list(world.tx.watchers.all()) == [world.alice]

    # And Alice still reaches each of them.
    a = api(world.alice)
    assert a.get(f"/api/alerts/{world.rule.pk}/").status_code == 200
    assert a.get(tx_url).status_code == 200
    assert a.delete(tx_url).status_code == 204
    assert not WatchedTransaction.objects.filter(pk=world.tx.pk).exists()


def test_a_watched_transaction_stays_when_a_stranger_deletes_it_with_no_watchers_left(world: World) -> None:
    """Before the fix, DELETE by a non-watcher removed nothing from the watchers, then deleted
    the transaction when it had none left (a transaction found for a proven wallet)."""
    world.tx.watchers.clear()
    url = f"/api/wallets/transactions/{world.chain_id}/{TX_HASH}/"
    assert api(world.mallory).delete(url).status_code == 404
    assert WatchedTransaction.objects.filter(pk=world.tx.pk).exists()


def test_the_proven_owner_of_a_side_reads_its_status(world: World) -> None:
    owner = get_user_model().objects.create_user(username="owner", password="pw")
    sender = "0x" + "B2" * 20
    from wallets.addresses import checksum

    Wallet.objects.create(user=owner, address=checksum(sender), watch_only=False)
    watcher_only = get_user_model().objects.create_user(username="watcher", password="pw")
    Wallet.objects.create(user=watcher_only, address=checksum(sender), watch_only=True)
    WatchedTransaction.objects.filter(pk=world.tx.pk).update(from_address=checksum(sender))
    url = f"/api/wallets/transactions/{world.chain_id}/{TX_HASH}/"
    assert api(owner).get(url).status_code == 200
    assert api(watcher_only).get(url).status_code == 404  # a watch-only link proves nothing


async def test_socket_actions_refuse_another_users_objects() -> None:
    world = await database_sync_to_async(_world)()
    client = Client(path=f"/ws/?ticket={issue_ticket(world.mallory.pk)[0]}")
    assert await client.connect()
    deleted = await client.request({"type": "alerts.delete", "id": 1, "rule_id": world.rule.pk})
    assert deleted["type"] == "error" and deleted["code"] == "not_found", deleted
    for action in ("notifications.mark_read", "notifications.dismiss"):
        reply = await client.request({"type": action, "id": 2, "notification_id": f"n:{world.notification.pk}"})
        assert reply["type"] == "error" and reply["code"] == "not_found", reply
    forbidden = await client.request({"type": "subscribe", "id": 3, "channel": f"wallet:{world.wallet.address}"})
    assert forbidden["code"] == "forbidden"
    await client.close()

    def unchanged() -> None:
        world.notification.refresh_from_db()
        assert AlertRule.objects.filter(pk=world.rule.pk).exists()
        assert world.notification.read_at is None and world.notification.dismissed_at is None

    await database_sync_to_async(unchanged)()
