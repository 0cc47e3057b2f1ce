"""Wallets fixtures: a real in-process EVM (py-evm via EthereumTesterProvider) serving a chain."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract

from realtime_project.events import bus
from realtime_project.gateway.runtime import memory_history
from wallets.events import ApprovalWarningsRaised, TransactionSettled
from wallets.models import Chain, Wallet
from wallets.providers import register_provider
from wallets.services.chains import chain_register

BUILD = Path(__file__).resolve().parents[2] / "contracts" / "build"


def artifact(name: str) -> dict[str, Any]:
    return json.loads((BUILD / f"{name}.json").read_text())


def settle() -> None:
    """Wait until the bus handled the wallets events emitted so far (their subscribers,
    such as the notifications app, run on the bus's worker threads)."""
    for event_type in (TransactionSettled, ApprovalWarningsRaised):
        for sub in bus.subscriptions(event_type):
            assert sub.drain(10), f"{sub.name} did not handle the wallets events"


@pytest.fixture(autouse=True)
def _settled() -> Iterator[None]:
    """No subscriber of a wallets event still writes when the test's database is flushed."""
    yield
    settle()


class Evm:
    """A py-evm chain with helpers to deploy the committed test tokens and move things."""

    def __init__(self) -> None:
        self.w3 = Web3(EthereumTesterProvider())
        self.tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        self.accounts: list[str] = list(self.w3.eth.accounts)
        self.url = f"tester://{secrets.token_hex(4)}"
        self.chain_id = int(self.w3.eth.chain_id)

    def deploy(self, name: str, *args: Any, sender: int = 0) -> Contract:
        art = artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor(*args).transact({"from": self.accounts[sender]})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    def call(self, fn: Any, sender: int, **extra: Any) -> str:
        """Send a contract transaction; returns its 0x hash."""
        return str(Web3.to_hex(fn.transact({"from": self.accounts[sender], **extra})))

    def pay(self, sender: int, to: int | str, value: int, **extra: Any) -> str:
        target = self.accounts[to] if isinstance(to, int) else to
        tx = {"from": self.accounts[sender], "to": target, "value": value, **extra}
        return str(Web3.to_hex(self.w3.eth.send_transaction(tx)))  # type: ignore[arg-type]

    def mine(self, blocks: int = 1) -> None:
        self.w3.testing.mine(blocks)

    @property
    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def block_hash(self, number: int) -> str:
        return str(Web3.to_hex(self.w3.eth.get_block(number)["hash"]))


@pytest.fixture
def evm() -> Evm:
    """A fresh EVM served in-process (the test's fresh runtime holds its registration)."""
    chain = Evm()
    register_provider(chain.url, chain.w3)
    return chain


@pytest.fixture
def chain(evm: Evm, settings: Any) -> Chain:
    """The EVM as a registered chain, scanned from the next block on, 3 confirmations."""
    settings.WALLETS = {"ADDRESS_FILTER_LIMIT": 100}
    return chain_register(
        chain_id=evm.chain_id,
        name="py-evm",
        rpc_url=evm.url,
        required_confirmations=3,
        poll_interval=1,
        start_block=evm.head + 1,
    )


@pytest.fixture
def user(django_user_model: Any) -> Any:
    # No password: hashing one (PBKDF2) costs ~1 s per test and nothing here logs in with it.
    return django_user_model.objects.create_user(username=f"u{secrets.token_hex(3)}")


def link(user: Any, address: str, chains: list[Chain] | None = None) -> Wallet:
    from wallets.services.linking import wallet_link_watch_only

    return wallet_link_watch_only(
        user_id=user.pk, address=address, chain_ids=[c.chain_id for c in chains] if chains else None
    )


def frames(address: str) -> list[dict[str, Any]]:
    """What the gateway recorded on `wallet:{address}` (the real history of the channel)."""

    async def read() -> list[Any]:
        return await memory_history().range(f"wallet:{address}", 0)

    return [json.loads(pub.payload) for pub in asyncio.run(read())]


@pytest.fixture(scope="module")
def anvil_node() -> Iterator[Any]:
    from tests.wallets.nodes import Anvil

    node = Anvil()
    yield node
    node.stop()


@pytest.fixture
def anvil(anvil_node: Any) -> Iterator[Any]:
    """The module's anvil, reverted to its starting state after each test (fast isolation).

    Contracts come back at the same addresses after a revert: the token metadata a test
    read is forgotten with its runtime (tests/conftest.py), never seen by the next test."""
    from tests.wallets.nodes import rpc

    snapshot = rpc(anvil_node.url, "evm_snapshot")
    yield anvil_node
    rpc(anvil_node.url, "evm_revert", [snapshot])


@pytest.fixture
def faulty(anvil: Any) -> Iterator[Any]:
    from tests.wallets.nodes import FaultyRpc

    proxy = FaultyRpc(anvil.url)
    yield proxy
    proxy.stop()


class _Running:
    """A watcher on the test's loop, cancelled (and its threads let go) at the end."""

    def __init__(self, watcher: Any) -> None:
        self.watcher = watcher
        self.task = asyncio.create_task(watcher.run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest_asyncio.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    """`await start(clock=SYSTEM_CLOCK, **stream_options)`: the registered chain's watcher, running
    (`clock` is its scans' clock); `await start.stop(watcher)` stops one early."""
    from functools import partial

    from realtime_project.clock import SYSTEM_CLOCK
    from wallets.feeds import ChainWork, load_configs
    from wallets.heads import HeadStream
    from wallets.watcher import ChainWatcher

    running: list[_Running] = []

    async def make(clock: Any = SYSTEM_CLOCK, **stream: Any) -> Any:
        (config,) = await asyncio.to_thread(load_configs)
        factory = partial(HeadStream, **stream) if stream else HeadStream
        watcher = ChainWatcher(config, ChainWork(config, clock=clock), stream_factory=factory)
        running.append(_Running(watcher))
        return watcher

    async def stop(watcher: Any) -> None:
        for r in running:
            if r.watcher is watcher:
                await r.stop()

    make.stop = stop  # type: ignore[attr-defined]
    yield make
    for r in running:
        await r.stop()
