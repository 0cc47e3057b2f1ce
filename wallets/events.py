"""The wallets app's domain events (other apps subscribe through `realtime_project.events.bus`).

Emitted after the transaction that records them commits, in the process that committed
(a Celery worker or the feed process); `wallets/api.py` exports them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TransactionSettled:
    """A watched transaction reached its required confirmations, or was mined and reverted.

    Emitted once per outcome (`WatchedTransaction.notified` remembers it). `user_ids`: its
    watchers and the users who proved they own its sender or recipient.
    """

    outcome: str  # "confirmed" | "failed"
    user_ids: tuple[int, ...]
    chain: int
    hash: str
    sender: str | None
    recipient: str | None
    #: Native value in coin units (a display value).
    value: float
    #: Why it failed (the node's revert string), None when confirmed.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovalWarningsRaised:
    """Dangerous approvals (`TokenApproval` ids) just raised a warning: their owners are told
    once (`wallets.api.approval_warning_notices`, then `approval_warning_notified`)."""

    approval_ids: tuple[int, ...]
