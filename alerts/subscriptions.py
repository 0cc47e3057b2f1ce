"""What the alerts app reacts to: the prices app's `PricesPublished`, one subscription on
the event bus (`realtime_project/events.py`).

Alerts depend on prices (never the other way): `prices.api.PricesPublished` is emitted
after every price publication, and the engine evaluates it on the bus's worker thread,
so evaluation never delays a price going out and never runs inside the price tick's lock.
"""

from __future__ import annotations

from typing import Any

from prices.api import PricesPublished
from realtime_project.events import Subscription, bus

from .engine import on_prices_published

#: The subscription's name on the bus (one per process).
SUBSCRIPTION = "alerts.evaluate"


def subscribe_to_prices() -> Subscription[Any]:
    """Subscribe the engine (from `AlertsConfig.ready`; idempotent)."""
    # When evaluation falls behind, queued publications merge into one (newest price per
    # symbol) instead of piling up.
    return bus.subscribe(PricesPublished, on_prices_published, name=SUBSCRIPTION, merge=PricesPublished.merge)


def prices_subscription() -> Subscription[Any] | None:
    """This process's subscription, None before `subscribe_to_prices`."""
    subs = [s for s in bus.subscriptions(PricesPublished) if s.name == SUBSCRIPTION]
    return subs[0] if subs else None
