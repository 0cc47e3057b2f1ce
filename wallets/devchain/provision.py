"""Provision the dev chain: register it, deploy the demo tokens, link the demo user's wallet.

Every server start runs a fresh anvil (new genesis, new block hashes), so what an earlier
run scanned on chain 31337 (cursor, blocks, activity, balances, watched transactions) is
forgotten here: the scanner then starts cleanly at the new node's head.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from ..models import (
    Balance,
    Chain,
    ChainCursor,
    ScannedBlock,
    SkippedLog,
    TokenApproval,
    TokenMetadata,
    Wallet,
    WalletActivity,
    WalletBackfill,
    WatchedTransaction,
)
from ..services.chains import chain_register
from ..services.linking import wallet_challenge_create, wallet_link_watch_only, wallet_verify
from ..tokens import clear_cache
from .node import DEV_CHAIN_ID

logger = logging.getLogger("wallets.devchain")

#: The chain row's name: the admin and the wallets API show it as a dev chain.
DEV_CHAIN_NAME = "Local dev chain (anvil)"
#: Few confirmations, so a transaction goes 1/3 -> 3/3 within seconds (2 s blocks).
DEV_CONFIRMATIONS = 3
#: Seconds between scans, below the embedded scheduler's 1 s tick: every tick scans, so a
#: new block (one every 2 s) is shown about a second after it is mined.
DEV_POLL_INTERVAL = 0.5
#: What the dashboard shows above the demo wallet.
DEMO_WALLET_LABEL = "Demo wallet · local dev chain (anvil)"

#: anvil's default accounts derive from the public mnemonic "test test … junk": their
#: keys are published everywhere and must never hold real funds. Index 1 is the demo
#: wallet; 0 (the "market") pays it and holds the token supply; 2 is a counterparty.
MARKET, DEMO, FRIEND = 0, 1, 2
DEMO_PRIVATE_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

#: Starting balances (raw units): the market's supply and the demo wallet's first tokens.
#: The committed test contracts deployed as the demo tokens (names say they are dev tokens).
DEMO_TOKENS: list[tuple[str, tuple[Any, ...]]] = [
    ("TestERC20", ("Dev USD", "dUSD", 6)),
    ("TestERC20", ("Dev Gold", "dGOLD", 18)),
    ("TestERC721", ("Dev Kittens", "dKIT")),
]
MARKET_USD = 10**9 * 10**6
DEMO_USD = 2_500 * 10**6
MARKET_GOLD = 10**6 * 10**18
DEMO_GOLD = 3 * 10**18


@cache
def artifact(name: str) -> dict[str, Any]:
    """ABI and bytecode of a committed test contract (contracts/build/<name>.json)."""
    path = Path(settings.BASE_DIR) / "contracts" / "build" / f"{name}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@dataclass(frozen=True)
class DevSetup:
    """What the demo activity works with: the node, its accounts and the demo tokens."""

    url: str
    chain: Chain
    market: str
    demo: str
    friend: str
    usd: Contract  # TestERC20 "Dev USD", 6 decimals
    gold: Contract  # TestERC20 "Dev Gold", 18 decimals
    nft: Contract  # TestERC721 "Dev Kittens"
    user_id: int | None  # the demo user, when `manage.py demo_user` created one


def provision(w3: Web3, url: str) -> DevSetup:
    """Deploy the demo tokens, register the chain from the next block, link the demo wallet, seed balances."""
    accounts = [Web3.to_checksum_address(a) for a in w3.eth.accounts]
    market, demo, friend = accounts[MARKET], accounts[DEMO], accounts[FRIEND]
    usd, gold, nft = _deploy(w3, market, DEMO_TOKENS)
    usd.functions.mint(market, MARKET_USD).transact({"from": market})
    gold.functions.mint(market, MARKET_GOLD).transact({"from": market})
    _mine(w3)
    # Scan from the next block: the deployments and the market's supply are history; the
    # demo wallet's first tokens (sent below, mined in the next block) are its first activity.
    chain = dev_chain_register(rpc_url=url, start_block=int(w3.eth.block_number) + 1)
    user_id = demo_user_id()
    if user_id is None:
        logger.warning(
            "dev chain: no user %r to link the demo wallet to (run `manage.py demo_user`, as `make run` does)",
            demo_username(),
        )
    else:
        demo_wallet_link(user_id=user_id, address=demo, private_key=DEMO_PRIVATE_KEY)
    usd.functions.transfer(demo, DEMO_USD).transact({"from": market})
    gold.functions.transfer(demo, DEMO_GOLD).transact({"from": market})
    return DevSetup(url, chain, market, demo, friend, usd, gold, nft, user_id)


def _deploy(w3: Web3, sender: str, specs: list[tuple[str, tuple[Any, ...]]]) -> list[Contract]:
    """Send every deployment, mine them in one block now (not in a block time), return the contracts."""
    hashes = []
    for name, args in specs:
        factory = w3.eth.contract(abi=artifact(name)["abi"], bytecode=artifact(name)["bytecode"])
        hashes.append((name, factory.constructor(*args).transact({"from": sender})))
    _mine(w3)
    contracts: list[Contract] = []
    for name, tx_hash in hashes:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
        contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact(name)["abi"])
        contracts.append(cast(Contract, contract))
    return contracts


def _mine(w3: Web3) -> None:
    """Mine a block now (set-up need not wait for the block time)."""
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])


def dev_chain_register(*, rpc_url: str, start_block: int) -> Chain:
    """Create or update the dev chain's row (idempotent), forgetting what an earlier node left."""
    with transaction.atomic():
        existing = Chain.objects.select_for_update().filter(chain_id=DEV_CHAIN_ID).first()
        if existing is not None:
            if existing.name != DEV_CHAIN_NAME:
                logger.info("dev chain: taking over chain %d (%r)", DEV_CHAIN_ID, existing.name)
            for model in (
                ChainCursor,
                ScannedBlock,
                WalletActivity,
                Balance,
                TokenMetadata,
                SkippedLog,
                TokenApproval,
                WalletBackfill,
            ):
                model.objects.filter(chain=existing).delete()
            WatchedTransaction.objects.filter(chain=existing).delete()
        chain = chain_register(
            chain_id=DEV_CHAIN_ID,
            name=DEV_CHAIN_NAME,
            rpc_url=rpc_url,
            # anvil serves WebSocket on its HTTP port: heads pushed to the feed process.
            ws_url="ws://" + rpc_url.split("://", 1)[1],
            required_confirmations=DEV_CONFIRMATIONS,
            poll_interval=DEV_POLL_INTERVAL,
            native_symbol="ETH",
            enabled=True,
            start_block=start_block,
        )
    clear_cache()  # token metadata of the old node's contracts
    return chain


def dev_chain_disable() -> None:
    """Stop scanning the dev chain (its node is gone); the next start enables it again."""
    Chain.objects.filter(chain_id=DEV_CHAIN_ID, name=DEV_CHAIN_NAME).update(enabled=False)


def demo_username() -> str:
    """The demo user `manage.py demo_user` creates (same environment variable)."""
    return os.environ.get("DEMO_USER", "demo")


def demo_user_id() -> int | None:
    pk = get_user_model().objects.filter(username=demo_username()).values_list("pk", flat=True).first()
    return None if pk is None else int(pk)


def demo_wallet_link(*, user_id: int, address: str, private_key: str) -> Wallet:
    """Link `address` to the user as a verified wallet of the dev chain, signing the challenge with its key.

    The same path a browser wallet takes (challenge, `personal_sign`, verify), with the
    account's published anvil key; watch-only when the key is not the address's.
    """
    wallet = Wallet.objects.filter(user_id=user_id, address=address).first()
    if wallet is None or not wallet.verified:
        if Account.from_key(private_key).address == address:
            challenge = wallet_challenge_create(user_id=user_id, address=address, chain_id=DEV_CHAIN_ID)
            signed = Account.sign_message(encode_defunct(text=challenge.message), private_key=private_key)
            signature = "0x" + bytes(signed.signature).hex()
            wallet = wallet_verify(user_id=user_id, nonce=challenge.nonce, signature=signature, label=DEMO_WALLET_LABEL)
        elif wallet is None:
            wallet = wallet_link_watch_only(user_id=user_id, address=address, label=DEMO_WALLET_LABEL)
    wallet.label = DEMO_WALLET_LABEL
    wallet.save(update_fields=["label"])
    wallet.chains.set([Chain.objects.get(chain_id=DEV_CHAIN_ID)])
    return wallet
