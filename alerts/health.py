"""The `alerts` readiness check of /readyz: the engine's index and its evaluation backlog."""

from __future__ import annotations

from typing import Any

from .engine import get_engine
from .subscriptions import prices_subscription


def readiness() -> dict[str, Any]:
    """Armed and cooling rules, revision, index bytes, and the subscription's
    `handled`/`failed`/`merged`/`dropped`/`backlog` counts (informational: always ok)."""
    subscription = prices_subscription()
    evaluation = subscription.stats() if subscription is not None else {}
    return {"ok": True, **get_engine().stats(), "evaluation": evaluation}
