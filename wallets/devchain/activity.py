"""`DemoActivity`: every few seconds, a realistic transaction touching the demo wallet (dev chain only).

Native ETH in and out, ERC-20 transfers and approvals, NFT mints and transfers, and now
and then one that reverts. Nothing here publishes: the transactions go to the node, and
the regular scanner and transaction monitor turn them into wallet frames, exactly as
for a real chain. The demo user watches the transactions it "sends" (as the dashboard
would after a wallet signs), so confirmations count up and notifications arrive.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections
from web3 import Web3

from ..services.transactions import transaction_watch
from .node import DEV_CHAIN_ID
from .provision import DevSetup

logger = logging.getLogger("wallets.devchain")

#: Relative frequencies of the actions: mostly transfers, sometimes NFTs, rarely a revert.
WEIGHTS: dict[str, float] = {
    "receive_eth": 3,
    "send_eth": 2,
    "receive_token": 3,
    "send_token": 2,
    "approve": 1.5,
    "mint_nft": 1,
    "send_nft": 0.8,
    "revert_eth": 0.35,
    "revert_token": 0.35,
}
#: Share of the demo wallet's successful sends it watches (every revert is watched): each
#: watched transaction ends in a notification, and one every few seconds would be noise.
WATCH_SHARE = 0.25
#: Gas of every contract call (all of them need far less): with an explicit limit the node
#: skips estimation, which runs on the last block and would refuse a call that depends on
#: a transaction still pending (an NFT minted a moment ago), or one meant to revert.
CALL_GAS = 200_000
MAX_UINT256 = 2**256 - 1
ETH = 10**18


@dataclass(frozen=True)
class DemoTx:
    """One demo transaction sent to the node."""

    action: str
    hash: str
    watched: bool


class DemoActivity:
    """Sends the demo transactions: `step()` once, or `start()` a thread doing it every `interval` s."""

    def __init__(self, w3: Web3, setup: DevSetup, *, interval: float, seed: int | None = None) -> None:
        self.w3 = w3
        self.setup = setup
        self.interval = interval
        self.rng = random.Random(seed)
        self._next_nft = 1
        self._nfts: list[int] = []  # token ids the demo wallet minted and still holds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dev-chain-activity", daemon=True)

    # --- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.step()
                failing = False
            except Exception as exc:
                if not failing:  # once per streak, not every few seconds while the node is down
                    logger.warning("dev chain: demo transaction failed: %s: %s", type(exc).__name__, exc)
                failing = True
            finally:
                close_old_connections()

    # --- one transaction -----------------------------------------------------------------

    def step(self, action: str | None = None, *, watch: bool | None = None) -> DemoTx:
        """Send one demo transaction (`action` from WEIGHTS, else a weighted random one).

        `watch` forces whether the demo user watches it (default: every revert, and a
        share of the demo wallet's other sends).
        """
        if action is None:
            action = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        handler = getattr(self, f"_{action}", None)
        if action not in WEIGHTS or handler is None:
            raise ValueError(f"unknown demo action {action!r}")
        tx_hash, outgoing, reverts = handler()
        if watch is None:
            watch = reverts or (outgoing and self.rng.random() < WATCH_SHARE)
        watched = watch and self.setup.user_id is not None
        if watched:
            transaction_watch(user_id=self.setup.user_id, chain_id=DEV_CHAIN_ID, tx_hash=tx_hash)
        logger.debug("dev chain: %s %s%s", action, tx_hash, " (watched)" if watched else "")
        return DemoTx(action, tx_hash, watched)

    # Each action returns (hash, sent by the demo wallet, meant to revert).

    def _receive_eth(self) -> tuple[str, bool, bool]:
        return self._pay(self.setup.market, self.setup.demo, self._amount(0.01, 0.8, ETH)), False, False

    def _send_eth(self) -> tuple[str, bool, bool]:
        return self._pay(self.setup.demo, self.setup.friend, self._amount(0.005, 0.25, ETH)), True, False

    def _receive_token(self) -> tuple[str, bool, bool]:
        token, unit = self._token()
        fn = token.functions.transfer(self.setup.demo, self._amount(5, 400, unit))
        return self._send(fn, self.setup.market), False, False

    def _send_token(self) -> tuple[str, bool, bool]:
        token, _ = self._token()
        held = int(token.functions.balanceOf(self.setup.demo).call())
        if held < 10:
            return self._receive_token()
        fn = token.functions.transfer(self.setup.friend, self.rng.randint(1, held // 10))
        return self._send(fn, self.setup.demo), True, False

    def _approve(self) -> tuple[str, bool, bool]:
        token, unit = self._token()
        unlimited = self.rng.random() < 0.25
        fn = token.functions.approve(self.setup.friend, MAX_UINT256 if unlimited else self._amount(10, 1_000, unit))
        return self._send(fn, self.setup.demo), True, False

    def _mint_nft(self) -> tuple[str, bool, bool]:
        token_id, self._next_nft = self._next_nft, self._next_nft + 1
        # Minted by the demo wallet itself: its later transfer follows in nonce order.
        tx_hash = self._send(self.setup.nft.functions.mint(self.setup.demo, token_id), self.setup.demo)
        self._nfts.append(token_id)
        return tx_hash, True, False

    def _send_nft(self) -> tuple[str, bool, bool]:
        if not self._nfts:
            return self._mint_nft()
        token_id = self._nfts.pop(self.rng.randrange(len(self._nfts)))
        fn = self.setup.nft.functions.transferFrom(self.setup.demo, self.setup.friend, token_id)
        return self._send(fn, self.setup.demo), True, False

    def _revert_eth(self) -> tuple[str, bool, bool]:
        # ETH sent to a token contract, which has no receive function: a failed native transfer.
        return self._pay(self.setup.demo, self.setup.usd.address, ETH // 100, gas=CALL_GAS), True, True

    def _revert_token(self) -> tuple[str, bool, bool]:
        # More tokens than the wallet holds: reverts with the token's reason string.
        fn = self.setup.usd.functions.transfer(self.setup.friend, MAX_UINT256 // 2)
        return self._send(fn, self.setup.demo), True, True

    # --- plumbing ------------------------------------------------------------------------

    def _token(self) -> tuple[Any, int]:
        if self.rng.random() < 0.7:
            return self.setup.usd, 10**6
        return self.setup.gold, 10**18

    def _amount(self, low: float, high: float, unit: int) -> int:
        """A random amount between low and high token units, in thousandths of a unit."""
        return int(self.rng.uniform(low, high) * 1000) * unit // 1000

    def _pay(self, sender: str, to: str, value: int, **extra: Any) -> str:
        tx: Any = {"from": sender, "to": to, "value": value, **extra}
        return str(Web3.to_hex(self.w3.eth.send_transaction(tx)))

    def _send(self, fn: Any, sender: str) -> str:
        return str(Web3.to_hex(fn.transact({"from": sender, "gas": CALL_GAS})))
