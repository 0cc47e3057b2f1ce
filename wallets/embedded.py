"""The wallets app's embedded-mode companion: the local dev chain (wallets/devchain/)."""

from __future__ import annotations

from .devchain import DevChain, start_dev_chain


def start() -> DevChain | None:
    """Started by `manage.py serve` with the embedded scheduler; None when off or unavailable."""
    return start_dev_chain()
