"""Watch-only links see public chain activity only (issue #12, finding 8).

Linking an address watch-only needs no proof, so anyone can follow anyone's address. The
policy (docs/wallets.md "Who sees what"): a watch-only subscriber of `wallet:{address}`
gets the address's public chain activity (balances, transfers, approvals and their
warnings, NFTs, internal transfers), never the transaction-watch frames, the pending
transactions of a snapshot, nor a notification created for the proven owner.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from realtime_project.gateway.auth import issue_ticket
from tests.support.ws import Client
from wallets.addresses import checksum
from wallets.models import Chain, Wallet, WatchedTransaction
from wallets.payloads import balance_update
from wallets.publishing import publish_transaction, publish_updates
from wallets.services.transactions import transaction_settled

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = checksum("0x" + "c3" * 20)
OTHER = checksum("0x" + "d4" * 20)


def _setup() -> dict[str, Any]:
    users = get_user_model().objects
    owner, follower, watcher = (users.create_user(username=n, password="pw") for n in ("owner", "follower", "watcher"))
    Wallet.objects.create(user=owner, address=ADDRESS, watch_only=False, verified_at=timezone.now())
    Wallet.objects.create(user=follower, address=ADDRESS, watch_only=True)
    chain = Chain.objects.create(chain_id=31998, name="wo", rpc_url="http://127.0.0.1:9", required_confirmations=1)
    tx = WatchedTransaction.objects.create(
        chain=chain, hash="0x" + "ef" * 32, required=1, from_address=ADDRESS, to_address=OTHER, status="pending"
    )
    tx.watchers.add(watcher)
    return {"owner": owner, "follower": follower, "watcher": watcher, "tx": tx, "chain": chain}


async def _subscribed(user: Any) -> tuple[Client, dict[str, Any]]:
    client = Client(path=f"/ws/?ticket={issue_ticket(user.pk)[0]}")
    assert await client.connect()
    reply = await client.request({"type": "subscribe", "id": 1, "channel": f"wallet:{ADDRESS}"})
    assert reply["type"] == "subscribed" and reply["channel"] == f"wallet:{ADDRESS}", reply
    snapshot = await client.recv()
    assert snapshot["type"] == "message" and snapshot.get("snapshot") is True
    return client, snapshot["data"]


def _publish_public_private(world: dict[str, Any]) -> None:
    with transaction.atomic():
        balance = balance_update(
            address=ADDRESS,
            chain_id=world["chain"].chain_id,
            token="",
            symbol="ETH",
            decimals=18,
            previous=0,
            current=10**18,
            block=5,
            timestamp_ms=1,
        )
        security = {
            "type": "security",
            "address": ADDRESS,
            "chain": world["chain"].chain_id,
            "data": {},
            "timestamp": 1,
        }
        publish_updates([balance, security])
        publish_transaction(world["tx"])


async def test_watch_only_subscribers_get_public_activity_only() -> None:
    world = await database_sync_to_async(_setup)()
    owner, owner_snapshot = await _subscribed(world["owner"])
    follower, follower_snapshot = await _subscribed(world["follower"])
    # The durable snapshot: the follower does not see the owner's pending transaction.
    assert [p["hash"] for p in owner_snapshot["pending"]] == [world["tx"].hash]
    assert follower_snapshot["pending"] == []

    await database_sync_to_async(_publish_public_private)(world)

    async def frames(client: Client) -> list[str]:
        out = []
        while not await client.nothing(0.3):
            frame = await client.recv()
            assert frame["channel"] == f"wallet:{ADDRESS}"  # the client's name, whatever the internal channel
            out.append(frame["data"]["type"])
        return out

    assert sorted(await frames(owner)) == ["balance", "security", "transaction"]
    assert sorted(await frames(follower)) == ["balance", "security"]  # approval warnings are public
    await owner.close()
    await follower.close()


async def test_a_stranger_cannot_subscribe_and_the_public_part_needs_a_link_too() -> None:
    world = await database_sync_to_async(_setup)()
    stranger = Client(path=f"/ws/?ticket={issue_ticket(world['watcher'].pk)[0]}")
    assert await stranger.connect()
    for channel in (f"wallet:{ADDRESS}", f"wallet_public:{ADDRESS}"):
        reply = await stranger.request({"type": "subscribe", "id": 1, "channel": channel})
        assert reply["code"] == "forbidden", reply
    await stranger.close()


def test_transaction_notifications_go_to_watchers_and_proven_owners_only() -> None:
    world = _setup()
    event = transaction_settled(world["tx"])
    assert list(event.user_ids) == sorted([world["owner"].pk, world["watcher"].pk])
    assert world["follower"].pk not in event.user_ids
