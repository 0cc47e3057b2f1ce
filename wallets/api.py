"""Python API of the wallets app for other apps (notifications, alerts, portfolio).

- `register_transaction_listener(fn)`: `fn(event)` after commit when a watched transaction
  is confirmed or fails, with `{"event": "confirmed"|"failed", "user_ids": [...], "chain",
  "hash", "from", "to", "value", "reason"}`; a listener's exception is logged, never raised.
- `portfolio_holdings(user_id)`: non-zero balances of the user's wallets,
  `[{"chain", "address", "token", "symbol", "amount": Decimal}]` (token None = native coin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .monitor import TransactionMonitor
from .selectors import holdings_of


def register_transaction_listener(fn: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    TransactionMonitor.on_confirmation(fn)
    TransactionMonitor.on_failure(fn)
    return fn


def portfolio_holdings(user_id: int) -> list[dict[str, Any]]:
    return holdings_of(user_id=user_id)
