"""Listeners on other apps' events: wallet transactions become notifications."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from django.utils import timezone

from .choices import NotificationType, Priority
from .errors import InvalidNotification
from .services.notifications import notification_send
from .validation import NotificationSpec

logger = logging.getLogger("notifications.wiring")


def _short(value: object) -> str:
    text = str(value or "")
    return f"{text[:8]}…{text[-4:]}" if len(text) > 14 else text


def on_transaction_event(event: dict[str, Any]) -> int:
    """The wallets app's transaction listener (contract: `register_transaction_listener`).

    `{"event": "confirmed"|"failed", "user_ids": [...], "chain", "hash", "from", "to",
    "value", "reason"}` becomes one notification per user, idempotent per
    (event, chain, hash): a rescan or a retried task does not notify twice.
    Returns how many notifications were created.
    """
    kind = event.get("event")
    if kind not in ("confirmed", "failed"):
        logger.warning("ignoring transaction event of kind %r", kind)
        return 0
    chain, tx_hash = event.get("chain"), event.get("hash")
    if not tx_hash:
        logger.warning("ignoring transaction event without a hash")
        return 0
    confirmed = kind == "confirmed"
    data = {
        "chain": chain,
        "hash": tx_hash,
        "from": event.get("from"),
        "to": event.get("to"),
        "value": event.get("value"),
    }
    if not confirmed:
        data["reason"] = event.get("reason")
    spec = NotificationSpec(
        type=NotificationType.TRANSACTION_CONFIRMED if confirmed else NotificationType.TRANSACTION_FAILED,
        title=f"Transaction {'confirmed' if confirmed else 'failed'}: {_short(tx_hash)}",
        body=(
            f"{event.get('value')} from {_short(event.get('from'))} to {_short(event.get('to'))} on chain {chain}"
            if confirmed
            else f"Transaction {_short(tx_hash)} on chain {chain} failed: {event.get('reason') or 'unknown reason'}"
        ),
        data=data,
        # A failure needs the user's attention now; a confirmation is routine.
        priority=Priority.MEDIUM if confirmed else Priority.HIGH,
        dedupe_key=f"tx:{kind}:{chain}:{str(tx_hash).lower()}",
    )
    created = 0
    for user_id in event.get("user_ids") or []:
        try:
            created += notification_send(user_id=int(user_id), spec=spec, now=timezone.now()).created
        except InvalidNotification:
            logger.warning("transaction event for unknown user %s", user_id)
    return created


def connect_wallets() -> bool:
    """Register with the wallets app if it provides the hook (it is built in parallel)."""
    try:
        wallets_api = importlib.import_module("wallets.api")
    except ImportError:
        wallets_api = None
    register = getattr(wallets_api, "register_transaction_listener", None)
    if register is None:
        logger.debug("wallets.api.register_transaction_listener not available yet")
        return False
    register(on_transaction_event)
    return True
