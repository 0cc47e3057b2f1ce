"""Hook the engine onto the prices app's batches (built in parallel: defensive import)."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("alerts.wiring")


def connect_prices() -> bool:
    from .engine import on_price_batch
    from .sources import optional_api

    register_batch_listener = getattr(optional_api("prices.api"), "register_batch_listener", None)
    if register_batch_listener is None:
        logger.debug("prices.api.register_batch_listener not available yet")
        return False

    register_batch_listener(on_price_batch)
    return True


def readiness() -> dict[str, Any]:
    from .engine import get_engine

    return {"ok": True, **get_engine().stats()}
