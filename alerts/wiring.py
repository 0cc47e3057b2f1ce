"""Hook the engine onto the prices app's publications: one subscription on the event bus.

Alerts depend on prices (never the other way): `prices.api.PricesPublished` is emitted
after every price publication, and the engine evaluates it on the bus's worker thread,
so evaluation never delays a price going out and never runs inside the price tick's lock.
"""

from __future__ import annotations

from typing import Any

from realtime_project.events import Subscription, bus

#: The subscription's name on the bus (one per process).
SUBSCRIPTION = "alerts.evaluate"


def connect_prices() -> Subscription[Any]:
    from prices.api import PricesPublished

    from .engine import on_prices_published

    # When evaluation falls behind, queued publications merge into one (newest price per
    # symbol) instead of piling up.
    return bus.subscribe(PricesPublished, on_prices_published, name=SUBSCRIPTION, merge=PricesPublished.merge)


def readiness() -> dict[str, Any]:
    from prices.api import PricesPublished

    from .engine import get_engine

    subs = [s for s in bus.subscriptions(PricesPublished) if s.name == SUBSCRIPTION]
    evaluation = subs[0].stats() if subs else {}
    return {"ok": True, **get_engine().stats(), "evaluation": evaluation}
