"""The wallets app's one door for other apps (notifications, alerts, accounts).

- Domain events on `realtime_project.events.bus`, emitted after commit:
  `TransactionSettled` (a watched transaction confirmed or failed) and
  `ApprovalWarningsRaised` (dangerous approvals raised a warning).
- What to tell users about them: `transaction_notice(event)` and
  `approval_warning_notices(approval_ids=...)` give `Notice`s (type, title, body, data,
  priority, dedupe key, recipients); `approval_warning_notified(approval_id=...)` records
  that an approval's owners were told.
- `users_with_wallet_on_chain(chain_id)`: users with a linked wallet on that chain.
- `portfolio_holdings(user_id)`: non-zero balances of the user's wallets,
  `[{"chain", "address", "token", "symbol", "amount": Decimal}]` (token None = native coin).
- Sign-In with Ethereum (accounts): `build_siwe_message`, `recover_siwe_signer` (EIP-4361
  text and EIP-191 recovery, pure), `checksum_address`, `verified_owner_ids(address)`,
  `link_verified_wallet(user_id, address)`.
"""

from __future__ import annotations

from typing import Any

from .addresses import InvalidAddress, checksum
from .events import ApprovalWarningsRaised, TransactionSettled
from .notices import Notice, approval_warning_notices, transaction_notice
from .selectors import holdings_of, verified_owner_ids
from .selectors import users_with_wallet_on_chain as _users_on_chain
from .services.approvals import approval_warning_notified
from .services.linking import wallet_link_verified
from .siwe import BadSignature, build_message, recover_signer

build_siwe_message = build_message
recover_siwe_signer = recover_signer
checksum_address = checksum
BadSiweSignature = BadSignature
__all__ = [
    "ApprovalWarningsRaised",
    "BadSiweSignature",
    "InvalidAddress",
    "Notice",
    "TransactionSettled",
    "approval_warning_notices",
    "approval_warning_notified",
    "build_siwe_message",
    "checksum_address",
    "link_verified_wallet",
    "portfolio_holdings",
    "recover_siwe_signer",
    "transaction_notice",
    "users_with_wallet_on_chain",
    "verified_owner_ids",
]


def users_with_wallet_on_chain(chain_id: int) -> set[int]:
    return _users_on_chain(chain_id=chain_id)


def portfolio_holdings(user_id: int) -> list[dict[str, Any]]:
    return holdings_of(user_id=user_id)


def link_verified_wallet(user_id: int, address: str) -> None:
    wallet_link_verified(user_id=user_id, address=address)
