"""Delivery after commit: publish on the user's channel or the shared announcements one.

Durable publications (the gateway's outbox): what a user was told is never lost to a
Redis outage or a worker dying between commit and publish, and never sent twice.
"""

from __future__ import annotations

from typing import Any

from realtime_project.gateway.api import publish_on_commit

from ..choices import PRIORITY_RANK
from ..payloads import ANNOUNCEMENTS_CHANNEL, user_channel


def to_user(user_id: int, event: dict[str, Any]) -> None:
    """Every connection of the user on every gateway, once the transaction commits."""
    publish_on_commit(user_channel(user_id), event, durable=True)


def to_everyone(event: dict[str, Any]) -> None:
    publish_on_commit(ANNOUNCEMENTS_CHANNEL, event, durable=True)


def in_priority_order(events: list[tuple[int, dict[str, Any]]]) -> None:
    """Deliver a flush: urgent first, then high, medium, low; stable within a priority."""

    def rank(item: tuple[int, dict[str, Any]]) -> int:
        notification = item[1].get("notification") or {}
        return PRIORITY_RANK.get(str(notification.get("priority")), len(PRIORITY_RANK))

    for user_id, event in sorted(events, key=rank):
        to_user(user_id, event)
