"""Idempotent sends: the result of a send, and the earlier one a repeated `dedupe_key` finds.

A dedupe key is unique per user across both tables (`Notification` and the digest
window's `BatchedItem`), so the immediate path and the batched path share these.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import BatchedItem, Notification


@dataclass(frozen=True, slots=True)
class SendResult:
    """`notification` is None while a low-priority item waits in its digest window."""

    notification: Notification | None
    created: bool
    held: bool = False
    batched: BatchedItem | None = None


class Duplicate(Exception):
    """The dedupe key is taken (in the other table): roll the insert back."""


def earlier_send(user_id: int, dedupe_key: str | None) -> SendResult | None:
    """The result of the user's earlier send with `dedupe_key`, if there was one."""
    if dedupe_key is None:
        return None
    found = Notification.objects.filter(user_id=user_id, dedupe_key=dedupe_key).first()
    if found is not None:
        return SendResult(found, created=False)
    item = BatchedItem.objects.filter(user_id=user_id, dedupe_key=dedupe_key).select_related("delivered_as").first()
    if item is not None:
        return SendResult(item.delivered_as, created=False, held=item.delivered_as is None, batched=item)
    return None


def held_with_key(user_id: int, dedupe_key: str) -> bool:
    """A digest window already holds an item of the user with this key."""
    return BatchedItem.objects.filter(user_id=user_id, dedupe_key=dedupe_key).exists()


def sent_with_key(user_id: int, dedupe_key: str) -> bool:
    """A notification of the user with this key was already created."""
    return Notification.objects.filter(user_id=user_id, dedupe_key=dedupe_key).exists()
