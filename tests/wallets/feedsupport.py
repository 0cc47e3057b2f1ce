"""Helpers of the feed tests: anvil over HTTP, chain registration, waiting for a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from django.db import connections
from web3 import HTTPProvider, Web3

from tests.wallets.conftest import artifact
from wallets.models import WalletActivity
from wallets.services.chains import chain_register
from wallets.watcher import ChainWatcher


def _closing(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `fn` and close the database connection its (worker) thread opened."""
    try:
        return fn(*args, **kwargs)
    finally:
        connections.close_all()


async def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Wait for `predicate()` (a sync function, run off the loop: it may query the database)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(_closing, predicate)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return asyncio.to_thread(_closing, fn, *args, **kwargs)


class Node:
    """Sends transactions to anvil over HTTP (off the event loop)."""

    def __init__(self, url: str) -> None:
        self.w3 = Web3(HTTPProvider(url))
        self.accounts = list(self.w3.eth.accounts)

    def pay(self, sender: int, to: str, value: int = 1) -> str:
        tx = {"from": self.accounts[sender], "to": to, "value": value}
        return str(Web3.to_hex(self.w3.eth.send_transaction(tx)))  # type: ignore[arg-type]

    def deploy_token(self) -> Any:
        art = artifact("TestERC20")
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self.w3.eth.wait_for_transaction_receipt(factory.constructor("Feed Token", "FT", 0).transact(
            {"from": self.accounts[0]}))  # fmt: skip
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    @property
    def head(self) -> int:
        return int(self.w3.eth.block_number)


def register(node: Node, *, rpc_url: str, ws_url: str, poll_interval: float = 3600.0) -> Any:
    return chain_register(
        chain_id=31337,
        name="anvil",
        rpc_url=rpc_url,
        ws_url=ws_url,
        required_confirmations=1,
        poll_interval=poll_interval,
        start_block=node.head + 1,
    )


def rows(address: str) -> list[tuple[str, str, int]]:
    return list(
        WalletActivity.objects.filter(address=address, kind="transaction")
        .order_by("block_number")
        .values_list("tx_hash", "kind", "block_number")
    )


async def connected(watcher: ChainWatcher) -> None:
    assert watcher.stream is not None
    await until(lambda: watcher.stream is not None and watcher.stream.connected and watcher.stats.scans >= 1,
                "the subscription and the first scan")  # fmt: skip
