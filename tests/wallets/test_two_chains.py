"""Two chains at once, end to end: two anvil nodes (chain ids 31337 and 31338) pushing
heads over their WebSockets to a real `manage.py feeds` process, a real uvicorn gateway
and Redis, and a WebSocket client following one address linked on both chains and one
linked on the second only. Activity on each reaches the right `wallet:{address}` frames
with the right chain id; a true reorg (`anvil_reorg`) on one chain corrects that chain's
frames and rows only, the other goes on undisturbed. A SIGTERM stops the feed process
cleanly and hands both chains back to beat.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from rest_framework.authtoken.models import Token
from websockets.asyncio.client import ClientConnection, connect

from tests.support.feeds_process import FeedsProcess
from tests.support.servers import ops_request
from tests.support.ws import answer_ping
from tests.wallets.conftest import link
from tests.wallets.nodes import Anvil, rpc
from wallets.models import WalletActivity
from wallets.services.chains import chain_register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.evm, pytest.mark.redis]

A, B = 31337, 31338
#: anvil's published accounts 0 (pays), 1 (linked on both chains), 2 (linked on B only).
PAYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
BOTH = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ONLY_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ETH = 10**18


@pytest.fixture(scope="module")
def nodes() -> Iterator[dict[int, Anvil]]:
    started = {A: Anvil("--chain-id", str(A)), B: Anvil("--chain-id", str(B))}
    yield started
    for node in started.values():
        node.stop()


@pytest.fixture
def feeds(redis_url: str, key_prefix: str) -> Iterator[FeedsProcess]:
    proc = FeedsProcess(
        redis=redis_url,
        key_prefix=key_prefix,
        extra={"FEEDS_ONLY": "wallets.chains", "FEEDS_HEALTH_INTERVAL": "0.2"},
    )
    yield proc
    proc.stop()
    log = proc.read_log()
    assert "Traceback" not in log, log[-4000:]


def pay(node: Anvil, to: str, eth: int) -> str:
    return str(rpc(node.url, "eth_sendTransaction", [{"from": PAYER, "to": to, "value": hex(eth * ETH)}]))


def readyz(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(ops_request(f"{url}/readyz"), timeout=5) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:  # 503 still carries the report
        return json.loads(exc.read())  # type: ignore[no-any-return]


class Frames:
    """Every `message` frame the client receives, per channel, read in the background."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.by_channel: dict[str, list[dict[str, Any]]] = {}
        self.subscribed: list[str] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if await answer_ping(self.ws, frame):
                continue
            if frame["type"] == "subscribed":
                self.subscribed.append(frame["channel"])
            elif frame["type"] == "message":
                self.by_channel.setdefault(frame["channel"], []).append(frame)

    def data(self, address: str) -> list[dict[str, Any]]:
        """The WalletUpdates of `wallet:{address}` (snapshots left out)."""
        return [f["data"] for f in self.by_channel.get(f"wallet:{address}", []) if not f.get("snapshot")]

    async def until(self, check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := check()):
            if self.task.done():
                self.task.result()
                raise AssertionError(f"the socket closed before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.by_channel}")
            await asyncio.sleep(0.02)
        return value


def transfers(updates: list[dict[str, Any]], *, removed: bool = False) -> set[tuple[int, str, float]]:
    """(chain, hash, value) of the native transfers (or of their corrections)."""
    return {
        (u["chain"], u["data"]["hash"], u["data"]["value"])
        for u in updates
        if u["type"] == "transaction"
        and u["data"].get("standard") == "native"
        and bool(u["data"].get("removed")) == removed
    }


async def test_two_chains_each_with_its_own_node_and_a_reorg_on_one(
    nodes: dict[int, Anvil],
    feeds: FeedsProcess,
    live_server_factory: Callable[..., Any],
    redis_url: str,
    key_prefix: str,
    user: Any,
) -> None:
    @database_sync_to_async
    def prepare() -> str:
        for chain_id, node in nodes.items():
            chain_register(
                chain_id=chain_id,
                name=f"anvil {chain_id}",
                rpc_url=node.url,
                ws_url=node.url.replace("http://", "ws://"),
                required_confirmations=2,
                poll_interval=3600,  # only pushed heads (and the connect backfill) scan
                start_block=int(rpc(node.url, "eth_blockNumber"), 16) + 1,
            )
        link(user, BOTH)  # every enabled chain
        from wallets.models import Chain

        link(user, ONLY_B, [Chain.objects.get(chain_id=B)])
        return Token.objects.create(user=user).key

    key = await prepare()
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix)
    feeds.start()

    def pushed() -> bool:
        chains = readyz(server.http_url)["apps"]["wallets"]["chains"]
        return all(chains.get(str(c), {}).get("heads") == "pushed (newHeads)" for c in (A, B))

    request = urllib.request.Request(
        f"{server.http_url}/api/ws-ticket/", method="POST", headers={"Authorization": f"Token {key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        ticket = json.loads(resp.read())["ticket"]
    async with connect(f"{server.ws_url}?ticket={ticket}") as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        frames = Frames(ws)
        for i, address in enumerate((BOTH, ONLY_B)):
            await ws.send(json.dumps({"type": "subscribe", "id": i + 1, "channel": f"wallet:{address}"}))
        await frames.until(lambda: len(frames.subscribed) == 2, "both subscriptions")
        deadline = time.monotonic() + 60
        while not await asyncio.to_thread(pushed):
            assert time.monotonic() < deadline, "the feed process never pushed both chains' heads"
            await asyncio.sleep(0.1)

        on_a = await asyncio.to_thread(pay, nodes[A], BOTH, 1)
        on_b = await asyncio.to_thread(pay, nodes[B], BOTH, 2)
        on_b_only = await asyncio.to_thread(pay, nodes[B], ONLY_B, 3)
        await frames.until(
            lambda: (
                transfers(frames.data(BOTH)) == {(A, on_a, 1.0), (B, on_b, 2.0)}
                and transfers(frames.data(ONLY_B)) == {(B, on_b_only, 3.0)}
            ),
            "each chain's transfer on the right channel with the right chain id",
        )
        balances = {(u["chain"], u["data"]["balance"]) for u in frames.data(BOTH) if u["type"] == "balance"}
        assert {(A, 10001.0), (B, 10002.0)} <= balances  # anvil accounts start with 10,000 ETH
        assert all(u["chain"] == B for u in frames.data(ONLY_B))

        # A true reorg of chain B's two blocks: they are replaced by one paying BOTH 5 ETH.
        before_a = len(frames.data(BOTH))
        await asyncio.to_thread(
            rpc, nodes[B].url, "anvil_reorg", [2, [[{"from": PAYER, "to": BOTH, "value": hex(5 * ETH)}, 0]]]
        )
        await frames.until(
            lambda: (
                transfers(frames.data(BOTH), removed=True) == {(B, on_b, 2.0)}
                and transfers(frames.data(ONLY_B), removed=True) == {(B, on_b_only, 3.0)}
                and {(c, v) for c, _, v in transfers(frames.data(BOTH)[before_a:])} == {(B, 5.0)}
            ),
            "chain B's corrections, then its new fork",
        )
        # Chain A is undisturbed: no correction of its frames, its row kept, and it goes on.
        assert not [u for u in frames.data(BOTH) if u["chain"] == A and u["data"].get("removed")]
        later_a = await asyncio.to_thread(pay, nodes[A], BOTH, 4)
        await frames.until(lambda: (A, later_a, 4.0) in transfers(frames.data(BOTH)), "chain A after B's reorg")

    @database_sync_to_async
    def stored() -> set[tuple[int, str, str]]:
        return set(
            WalletActivity.objects.filter(kind="transaction").values_list("chain__chain_id", "tx_hash", "address")
        )

    rows = await stored()
    assert {(A, on_a, BOTH), (A, later_a, BOTH)} <= rows
    assert not {(B, on_b, BOTH), (B, on_b_only, ONLY_B)} & rows  # orphaned on B only
    assert len([r for r in rows if r[0] == B]) == 1

    # A clean stop: exit 0, and beat polls both chains again at once (no feed marks left).
    feeds.signal()
    assert await asyncio.to_thread(feeds.wait) == 0, feeds.read_log()[-4000:]
    chains = readyz(server.http_url)["apps"]["wallets"]["chains"]
    assert chains[str(A)]["heads"] == chains[str(B)]["heads"] == "polled by beat (no feed process)"
