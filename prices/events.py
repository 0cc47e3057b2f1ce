"""The prices app's domain events (other apps subscribe through `realtime_project.events.bus`)."""

from __future__ import annotations

from dataclasses import dataclass

from .payloads import PriceBatch, PriceUpdate, price_batch


@dataclass(frozen=True, slots=True)
class PricesPublished:
    """Aggregates just went out on the gateway: every `PriceUpdate` of one publication.

    Emitted after the publication (the price goes out first), by whichever process
    published: the feed process (streams) or the REST tick (its fallback). Updates carry
    their `stale` and `degraded` flags: a consumer that must not act on those (alerts)
    checks them.
    """

    updates: tuple[PriceUpdate, ...]
    #: Publication time, ms.
    timestamp: int

    def batch(self) -> PriceBatch:
        """The publication as the PriceBatch clients got."""
        return price_batch(self.updates, self.timestamp)

    @staticmethod
    def merge(older: PricesPublished, newer: PricesPublished) -> PricesPublished:
        """One event for a subscriber that fell behind: the newest update of each symbol.

        A symbol's crossing is then judged from the last update the subscriber saw to the
        newest one; a move out and back within the merged span is not seen (documented
        in docs/alerts.md).
        """
        latest: dict[str, PriceUpdate] = {}
        for update in (*older.updates, *newer.updates):
            latest[update["symbol"]] = update
        return PricesPublished(tuple(latest.values()), max(older.timestamp, newer.timestamp))
