"""End to end: anvil over HTTP -> a real Celery worker -> Redis -> a real gateway -> a WebSocket client.

Includes a true reorg made with `anvil_reorg`: the client receives the corrections
(`removed: true`) and then the activity of the new fork.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from web3 import HTTPProvider, Web3
from websockets.asyncio.client import ClientConnection, connect

from tests.support.celery_worker import CeleryWorker
from tests.support.ws import next_message
from tests.wallets.conftest import artifact, link
from tests.wallets.nodes import rpc
from wallets.services.chains import chain_register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.evm, pytest.mark.redis]


@pytest.fixture
def worker(redis_url: str, key_prefix: str) -> Iterator[CeleryWorker]:
    w = CeleryWorker(redis_url=redis_url, key_prefix=key_prefix, name="wallets-e2e")
    yield w
    w.stop()
    w.assert_clean_log()
    assert "gc: froze" in w.read_log()  # the task process froze its start-up objects


async def collect(ws: ClientConnection, channel: str, count: int) -> list[dict[str, Any]]:
    return [await next_message(ws, channel, timeout=20) for _ in range(count)]


async def test_anvil_to_websocket_through_worker_and_gateway_with_anvil_reorg(
    anvil: Any,
    worker: CeleryWorker,
    live_server_factory: Callable[..., Any],
    redis_url: str,
    key_prefix: str,
    user: Any,
) -> None:
    from channels.db import database_sync_to_async

    w3 = Web3(HTTPProvider(anvil.url))
    accounts = list(w3.eth.accounts)
    a1 = accounts[1]

    @database_sync_to_async
    def prepare() -> str:
        chain_register(
            chain_id=31337,
            name="anvil",
            rpc_url=anvil.url,
            required_confirmations=2,
            start_block=w3.eth.block_number + 1,
        )
        link(user, a1)
        return Token.objects.create(user=user).key

    key = await prepare()
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    request = urllib.request.Request(
        f"{server.http_url}/api/ws-ticket/", method="POST", headers={"Authorization": f"Token {key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        ticket = json.loads(resp.read())["ticket"]
    channel = f"wallet:{a1}"
    async with connect(f"{server.ws_url}?ticket={ticket}") as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": f"wallet:{a1.lower()}"}))
        subscribed = json.loads(await ws.recv())
        assert subscribed["type"] == "subscribed" and subscribed["channel"] == channel
        snapshot = await next_message(ws, channel, timeout=20)
        assert snapshot["snapshot"] is True and snapshot["data"]["activity"] == []

        art = artifact("TestERC20")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = w3.eth.wait_for_transaction_receipt(
            factory.constructor("Anvil Token", "ANV", 2).transact({"from": accounts[0]})
        )
        token = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
        mint = Web3.to_hex(token.functions.mint(a1, 12345).transact({"from": accounts[0]}))
        worker.send("wallets.tasks.scan_chain", 31337)

        got = await collect(ws, channel, 2)
        assert [(m["data"]["type"], m["data"]["data"].get("hash")) for m in got] == [
            ("transaction", mint),
            ("balance", None),
        ]
        transfer = got[0]["data"]["data"]
        assert (transfer["value"], transfer["symbol"], transfer["status"], transfer["confirmations"]) == (
            123.45,
            "ANV",
            "included",
            1,
        )
        assert got[1]["data"]["data"]["balance"] == 123.45
        assert [m["seq"] for m in got] == [subscribed["seq"] + 1, subscribed["seq"] + 2]

        # A real reorg: the mint's block is replaced by one paying a1 1 ETH instead.
        rpc(anvil.url, "anvil_reorg", [1, [[{"from": accounts[0], "to": a1, "value": hex(10**18)}, 0]]])
        worker.send("wallets.tasks.scan_chain", 31337)

        after = await collect(ws, channel, 5)
        removed = [m["data"] for m in after if m["data"]["data"].get("removed")]
        assert sorted((d["type"], d["data"].get("hash")) for d in removed) == [("balance", None), ("transaction", mint)]
        fresh = [m["data"] for m in after if not m["data"]["data"].get("removed")]
        kinds = [(d["type"], d["data"].get("token"), d["data"].get("standard")) for d in fresh]
        assert kinds == [("balance", token.address, None), ("transaction", None, "native"), ("balance", None, None)]
        assert fresh[0]["data"]["delta_raw"] == "-12345" and fresh[0]["data"]["balance"] == 0.0
        assert fresh[1]["data"]["value"] == 1.0 and fresh[1]["data"]["from"] == accounts[0]
        assert fresh[2]["data"]["delta_raw"] == str(10**18)
