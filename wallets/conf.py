"""Wallets settings: `settings.WALLETS` (and env vars) merged over documented defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

#: Confirmation depths by chain id (reference: chain facts). Polygon reorgs of hundreds
#: of blocks have happened, hence 64; L2s settle on L1, so fewer blocks suffice.
DEFAULT_CONFIRMATIONS: dict[int, int] = {
    1: 12,  # Ethereum, 12 s blocks
    11155111: 12,  # Sepolia
    137: 64,  # Polygon PoS, ~2 s
    56: 15,  # BNB Smart Chain, 0.75 s
    42161: 20,  # Arbitrum One, ~0.25 s
    10: 10,  # OP Mainnet, 2 s
    8453: 10,  # Base, 2 s
    31337: 1,  # anvil / hardhat (local)
}
#: Typical block times (seconds), the default poll interval of a chain.
DEFAULT_BLOCK_TIMES: dict[int, float] = {1: 12.0, 11155111: 12.0, 137: 2.0, 56: 0.75, 42161: 0.25, 10: 2.0, 8453: 2.0}
FALLBACK_CONFIRMATIONS = 12
FALLBACK_POLL_INTERVAL = 12.0


@dataclass(frozen=True)
class WalletsSettings:
    #: Blocks fetched and written per database transaction (bounded work per commit).
    batch_blocks: int = 100
    #: Blocks one scan task processes at most before yielding (the next beat continues).
    max_blocks_per_scan: int = 2_000
    #: First eth_getLogs range; halved on "range too large" replies, regrown on success.
    logs_range: int = 2_000
    #: Below this many watched addresses, topics carry them (server-side filter); above it
    #: logs are fetched by topic0 and filtered locally (topic arrays that long are refused).
    address_filter_limit: int = 100
    #: Recent blocks kept to find a reorg's common ancestor (Chainlink keeps 100-2,000).
    reorg_window: int = 256
    #: Seconds before an RPC call is abandoned.
    rpc_timeout: float = 10.0
    #: Polls without a trace of a transaction (and its nonce unused) before it is dropped,
    #: and the seconds that must have passed too (scans per pushed head poll every block).
    dropped_after_polls: int = 3
    dropped_after_seconds: float = 60.0
    #: Seconds a sign-in challenge stays valid.
    challenge_ttl: int = 600
    #: `domain` and `uri` of the EIP-4361 message (the site users sign in to). Empty: the
    #: request's host and origin (what the user's wallet compares with the page's address).
    siwe_domain: str = ""
    siwe_uri: str = ""
    siwe_statement: str = "Link this wallet to your account. This request will not trigger a transaction or cost gas."
    #: Activity items in a durable-resubscribe snapshot (contract: at most 50).
    snapshot_activity: int = 50
    #: Seconds a chain's scan lock is held at most (a crashed worker frees it by expiry).
    scan_lock_ttl: int = 300
    confirmations: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_CONFIRMATIONS))
    #: The local dev chain (wallets/devchain/): `manage.py serve` starts anvil next to the
    #: embedded scheduler, with demo tokens, the demo user's wallet and simulated activity.
    #: Default: on in embedded mode, off in production (`wallets_settings()` fills it in).
    dev_chain: bool = False
    #: Its JSON-RPC port on 127.0.0.1 (anvil's usual one); a free port when it is taken.
    dev_chain_port: int = 8545
    #: Seconds between its blocks: confirmations count up on their own, as on a real chain.
    dev_chain_block_time: float = 2.0
    #: Seconds between two demo transactions (several blocks apart, so each is seen arriving).
    dev_chain_activity_interval: float = 4.0
    #: The anvil executable; empty: the pinned npm package's, in contracts/node_modules.
    dev_chain_anvil: str = ""

    def confirmations_for(self, chain_id: int) -> int:
        return int(self.confirmations.get(chain_id, FALLBACK_CONFIRMATIONS))

    def poll_interval_for(self, chain_id: int) -> float:
        return float(DEFAULT_BLOCK_TIMES.get(chain_id, FALLBACK_POLL_INTERVAL))


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


_ENV: dict[str, tuple[str, Any]] = {
    "batch_blocks": ("WALLETS_BATCH_BLOCKS", int),
    "rpc_timeout": ("WALLETS_RPC_TIMEOUT", float),
    "siwe_domain": ("WALLETS_SIWE_DOMAIN", str),
    "siwe_uri": ("WALLETS_SIWE_URI", str),
    "dev_chain": ("WALLETS_DEV_CHAIN", _bool),
    "dev_chain_port": ("WALLETS_DEV_CHAIN_PORT", int),
    "dev_chain_activity_interval": ("WALLETS_DEV_CHAIN_INTERVAL", float),
}


def wallets_settings() -> WalletsSettings:
    """Read per call (cheap) so tests can override `settings.WALLETS`."""
    values: dict[str, Any] = {"dev_chain": bool(getattr(settings, "EMBEDDED", False))}
    for key, (env, cast) in _ENV.items():
        if os.environ.get(env):
            values[key] = cast(os.environ[env])
    for key, value in getattr(settings, "WALLETS", {}).items():
        values[key.lower()] = value
    if "confirmations" in values:
        values["confirmations"] = {
            **DEFAULT_CONFIRMATIONS,
            **{int(k): int(v) for k, v in values["confirmations"].items()},
        }
    return WalletsSettings(**values)
