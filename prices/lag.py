"""The feed's publication lag: venue send → published, as a histogram (no Django imports:
the freshness benchmark reads it too)."""

from __future__ import annotations

import bisect
from typing import Any

#: Upper edges (ms) of the publication-lag histogram's buckets (the last one catches the rest).
LAG_EDGES_MS: tuple[float, ...] = (
    0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150,
    200, 250, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, float("inf"),
)  # fmt: skip


class LagHistogram:
    """Venue send → published, per update that moved (ms; cumulative counts per bucket).

    The feed's own share of the freshness path: the venue's event time (`quoted_at`) to
    the moment the publication left for the gateway. Counts only grow, so a reader (the
    freshness benchmark) subtracts two readings to get a window.
    """

    def __init__(self) -> None:
        self.counts = [0] * len(LAG_EDGES_MS)

    def add(self, ms: float) -> None:
        self.counts[bisect.bisect_left(LAG_EDGES_MS, ms)] += 1

    @staticmethod
    def quantile(counts: list[int], q: float) -> float | None:
        """The upper edge of the bucket holding quantile `q` of `counts` (None when empty)."""
        total = sum(counts)
        if not total:
            return None
        rank = q * total
        seen = 0
        for edge, count in zip(LAG_EDGES_MS, counts, strict=True):
            seen += count
            if seen >= rank:
                return edge
        return LAG_EDGES_MS[-1]

    def summary(self) -> dict[str, Any]:
        counts = list(self.counts)
        return {
            "n": sum(counts),
            "p50_le": self.quantile(counts, 0.5),
            "p99_le": self.quantile(counts, 0.99),
            "counts": counts,
        }
