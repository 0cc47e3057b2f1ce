"""Chains the platform scans: registered (or updated) with defaults from the chain facts."""

from __future__ import annotations

from ..conf import wallets_settings
from ..errors import WalletError
from ..models import Chain


def chain_register(
    *,
    chain_id: int,
    name: str,
    rpc_url: str,
    ws_url: str = "",
    required_confirmations: int | None = None,
    poll_interval: float | None = None,
    native_symbol: str = "ETH",
    enabled: bool = True,
    start_block: int | None = None,
) -> Chain:
    """Create or update a chain; confirmations and poll interval default from the chain facts.

    `ws_url` (ws:// or wss://, optional): heads and pending transactions pushed by the node.
    """
    if ws_url and not ws_url.startswith(("ws://", "wss://")):
        raise WalletError("ws_url must start with ws:// or wss://", code="invalid_ws_url")
    conf = wallets_settings()
    chain, _ = Chain.objects.update_or_create(
        chain_id=chain_id,
        defaults={
            "name": name,
            "rpc_url": rpc_url,
            "ws_url": ws_url,
            "required_confirmations": (
                required_confirmations if required_confirmations is not None else conf.confirmations_for(chain_id)
            ),
            "poll_interval": poll_interval if poll_interval is not None else conf.poll_interval_for(chain_id),
            "native_symbol": native_symbol,
            "enabled": enabled,
            "start_block": start_block,
        },
    )
    return chain
