"""The wallets app's events become notifications (subscribed on the event bus in `apps.py`).

Wallets says what happened and how to word it (`wallets.api` notices); this module stores
and delivers each notice, one notification per recipient, idempotent per its dedupe key.
Handlers run on the bus's worker thread, after the wallets transaction committed.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from wallets import api as wallets_api

from ..errors import InvalidNotification
from ..validation import NotificationSpec
from .notifications import notification_send

logger = logging.getLogger("notifications.wallet_events")


def _deliver(notice: wallets_api.Notice) -> int:
    """One notification per recipient; returns how many were created (0 for a repeat)."""
    spec = NotificationSpec(
        type=notice.type,
        title=notice.title,
        body=notice.body,
        data=notice.data,
        priority=notice.priority,
        dedupe_key=notice.dedupe_key,
    )
    created = 0
    for user_id in notice.user_ids:
        try:
            created += notification_send(user_id=int(user_id), spec=spec, now=timezone.now()).created
        except InvalidNotification as exc:  # e.g. the user was deactivated meanwhile
            logger.warning("%s for user %s refused: %s", notice.type, user_id, exc)
    return created


def transaction_settled(event: wallets_api.TransactionSettled) -> None:
    """`transaction_confirmed` / `transaction_failed` for the transaction's users."""
    _deliver(wallets_api.transaction_notice(event))


def approval_warnings_raised(event: wallets_api.ApprovalWarningsRaised) -> None:
    """A `security_warning` to the proven owners of each raised approval, once."""
    for approval_id, notice in wallets_api.approval_warning_notices(approval_ids=event.approval_ids):
        _deliver(notice)
        wallets_api.approval_warning_notified(approval_id=approval_id)
