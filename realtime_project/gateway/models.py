"""The gateway's one table: the outbox of durable publications (`outbox.py`)."""

from __future__ import annotations

from django.db import models


class PendingPublication(models.Model):
    """A durable publication written with the data it announces, deleted once published.

    `publish_on_commit(..., durable=True)` inserts it in the caller's transaction; after
    commit the publication is sent with `key` as its idempotency key and the row deleted.
    A row still here past `due_at` was not confirmed (Redis was down, the process died
    between commit and publish): the outbox flusher sends it again with the same key, so
    it reaches clients exactly once.
    """

    key = models.CharField(max_length=120, unique=True, help_text="The publication's idempotency key")
    items = models.JSONField(help_text="[[channel, payload JSON], ...] as encoded at the call site")
    created_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True, help_text="When the flusher may (re)send it")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        channels = ", ".join(sorted({str(item[0]) for item in self.items}))
        return f"{self.key} → {channels}"
