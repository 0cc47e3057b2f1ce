"""`wallet:{address}` over the real gateway consumer: owner-only, canonical names, live frames, durable recovery."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from tests.support.ws import Client
from tests.wallets.conftest import Evm, link
from wallets.models import WalletActivity
from wallets.scanning.scanner import chain_scan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.evm]


@database_sync_to_async
def scan(chain_id: int) -> Any:
    return chain_scan(chain_id=chain_id)


@database_sync_to_async
def other_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="intruder")


@database_sync_to_async
def setup(evm: Evm, chain: Any, user: Any) -> Any:
    link(user, evm.accounts[1])
    chain.start_block = evm.head + 1
    chain.save()
    return evm.deploy("TestERC20", "Test Token", "TT", 0)


async def test_owner_only_canonical_name_live_frames_and_durable_snapshot(
    evm: Evm, chain: Any, user: Any, django_user_model: Any
) -> None:
    a1 = evm.accounts[1]
    token = await setup(evm, chain, user)
    client = Client(user=user)
    assert await client.connect()
    reply = await client.request({"type": "subscribe", "id": 1, "channel": f"wallet:{a1.lower()}"})
    assert reply["type"] == "subscribed" and reply["channel"] == f"wallet:{a1}"
    first = await client.recv()  # durable: a snapshot rebuilt from the database
    assert first["snapshot"] is True
    assert first["data"] == {
        "type": "snapshot",
        "address": a1,
        "activity": [],
        "pending": [],
        "balances": [],
        "warnings": [],
        # Linked before the chain's first scan: its history waits for that scan's cursor.
        "backfill": [
            {
                "chain": evm.chain_id,
                "state": "waiting",
                "from_block": None,
                "to_block": None,
                "blocks_done": 0,
                "blocks_total": 0,
                "percent": 0.0,
                "found": 0,
                "error": None,
            }
        ],
    }

    await database_sync_to_async(evm.call)(token.functions.mint(a1, 5), 0)
    assert (await scan(evm.chain_id)).error == ""
    live = [await client.recv(), await client.recv()]
    assert [(m["channel"], m["data"]["type"]) for m in live] == [
        (f"wallet:{a1}", "transaction"),
        (f"wallet:{a1}", "balance"),
    ]
    assert [m["seq"] for m in live] == [reply["seq"] + 1, reply["seq"] + 2]
    await client.close()

    # Resubscribing with a position history cannot serve (another epoch): the snapshot
    # is rebuilt from the database, newest activity first, with balances.
    again = Client(user=user)
    await again.connect()
    resub = await again.request(
        {"type": "subscribe", "id": 2, "channel": f"wallet:{a1}", "since": {"epoch": "00000000", "seq": 1}}
    )
    assert resub["recovered"] is False
    snap = (await again.recv())["data"]
    rows = await database_sync_to_async(
        lambda: [r.payload for r in WalletActivity.objects.filter(address=a1).order_by("-id")]
    )()
    assert snap["activity"] == rows and len(rows) == 2
    assert snap["balances"] == [
        {"chain": evm.chain_id, "token": token.address, "symbol": "TT", "balance": 5.0, "balance_raw": "5"}
    ]
    # With a position it can serve, it replays exactly what was missed.
    exact = Client(user=user)
    await exact.connect()
    got = await exact.request(
        {
            "type": "subscribe",
            "id": 3,
            "channel": f"wallet:{a1}",
            "since": {"epoch": reply["epoch"], "seq": reply["seq"] + 1},
        }
    )
    assert got["recovered"] is True
    replay = await exact.recv()
    assert replay["seq"] == reply["seq"] + 2 and replay["data"] == live[1]["data"]
    await again.close()
    await exact.close()

    intruder = Client(user=await other_user(django_user_model))
    await intruder.connect()
    refused = await intruder.request({"type": "subscribe", "id": 4, "channel": f"wallet:{a1}"})
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    await intruder.close()


@pytest.mark.parametrize(
    "channel",
    ["wallet:0x123", "wallet:0x52908400098527886e0F7030069857D2E4169EE7", "wallet:not-an-address", "wallet"],
)
async def test_malformed_wallet_channels(user: Any, channel: str) -> None:
    client = Client(user=user)
    await client.connect()
    reply = await client.request({"type": "subscribe", "id": 1, "channel": channel})
    assert (reply["type"], reply["code"]) == ("error", "bad_request")
    await client.close()


async def test_anonymous_cannot_subscribe() -> None:
    client = Client()
    await client.connect()
    reply = await client.request({"type": "subscribe", "id": 1, "channel": "wallet:0x" + "12" * 20})
    assert (reply["type"], reply["code"]) == ("error", "unauthenticated")
    await client.close()
