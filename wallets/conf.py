"""The `WALLETS` setting: the documented defaults of `WalletsSettings`, overridable by
`WALLETS_<KEY>` env vars and `settings.WALLETS` (in that order: `realtime_project.appsettings`).
Keys are the fields' names in upper case (`{"BATCH_BLOCKS": 50}`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from realtime_project.appsettings import AppSettings

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


def _defaults() -> dict[str, Any]:
    values = {
        f.name.upper(): f.default_factory() if callable(f.default_factory) else f.default
        for f in dataclasses.fields(WalletsSettings)
    }
    values["DEV_CHAIN"] = bool(getattr(settings, "EMBEDDED", False))
    return values


WALLETS = AppSettings(
    "WALLETS",
    _defaults,
    env_prefix="WALLETS_",
    # Named before the helper existed (README's configuration table).
    env_names={"DEV_CHAIN_ACTIVITY_INTERVAL": "WALLETS_DEV_CHAIN_INTERVAL"},
)


def wallets_settings() -> WalletsSettings:
    """The typed settings (built once per reload: `override_settings` takes effect)."""
    return WALLETS.build(_wallets_settings)


def _wallets_settings(merged: Mapping[str, Any]) -> WalletsSettings:
    values = {key.lower(): value for key, value in merged.items()}
    values["confirmations"] = {int(k): int(v) for k, v in merged["CONFIRMATIONS"].items()}
    return WalletsSettings(**values)
