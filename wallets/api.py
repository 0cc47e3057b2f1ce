"""Python API of the wallets app for other apps (notifications, alerts, portfolio).

- `register_transaction_listener(fn)`: `fn(event)` after commit when a watched transaction
  is confirmed or fails, with `{"event": "confirmed"|"failed", "user_ids": [...], "chain",
  "hash", "from", "to", "value", "reason"}`; a listener's exception is logged, never raised.
- `portfolio_holdings(user_id)`: non-zero balances of the user's wallets,
  `[{"chain", "address", "token", "symbol", "amount": Decimal}]` (token None = native coin).
- Sign-In with Ethereum (accounts): `build_siwe_message`, `recover_siwe_signer` (EIP-4361
  text and EIP-191 recovery, pure), `checksum_address`, `verified_owner_ids(address)`,
  `link_verified_wallet(user_id, address)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .addresses import InvalidAddress, checksum
from .monitor import TransactionMonitor
from .selectors import holdings_of, verified_owner_ids
from .services.linking import wallet_link_verified
from .siwe import BadSignature, build_message, recover_signer

build_siwe_message = build_message
recover_siwe_signer = recover_signer
checksum_address = checksum
BadSiweSignature = BadSignature
__all__ = [
    "BadSiweSignature",
    "InvalidAddress",
    "build_siwe_message",
    "checksum_address",
    "link_verified_wallet",
    "portfolio_holdings",
    "recover_siwe_signer",
    "register_transaction_listener",
    "verified_owner_ids",
]


def register_transaction_listener(fn: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    TransactionMonitor.on_confirmation(fn)
    TransactionMonitor.on_failure(fn)
    return fn


def portfolio_holdings(user_id: int) -> list[dict[str, Any]]:
    return holdings_of(user_id=user_id)


def link_verified_wallet(user_id: int, address: str) -> None:
    wallet_link_verified(user_id=user_id, address=address)
