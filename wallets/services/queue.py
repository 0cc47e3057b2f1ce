"""Enqueue this app's Celery tasks by name after commit (services never import tasks.py)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from realtime_project.celery import app


def enqueue_on_commit(task_name: str, *args: Any) -> None:
    """`task.delay(*args)` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: app.tasks[task_name].delay(*args))
