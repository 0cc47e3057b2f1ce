"""Find the one unknown id that fails a whole multi-symbol request, by bisection.

Binance (`{"code":-1121}`) and Kraken (`EQuery:Unknown asset pair`) reject a batch
because of a single id they do not know. Splitting the batch in halves finds it in
O(k log n) requests for k bad ids; adapters then skip it for a while instead of
failing every poll.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from realtime_project.clock import SYSTEM_CLOCK, Clock

from .base import UnknownSymbol

T = TypeVar("T")

#: An id found unknown is skipped this long, then tried again (listings change).
UNKNOWN_TTL = 600.0


def fetch_isolating(
    ids: list[str], fetch: Callable[[list[str]], T], *, unknown: set[str], problems: Counter[str]
) -> list[T]:
    """Results of `fetch` over `ids`, bisecting on UnknownSymbol; found ids go to `unknown`."""
    try:
        return [fetch(ids)]
    except UnknownSymbol:
        if len(ids) == 1:
            unknown.add(ids[0])
            problems["unknown_symbol"] += 1
            return []
        mid = len(ids) // 2
        return fetch_isolating(ids[:mid], fetch, unknown=unknown, problems=problems) + fetch_isolating(
            ids[mid:], fetch, unknown=unknown, problems=problems
        )


class UnknownIds:
    """Ids a source said it does not know, remembered for UNKNOWN_TTL seconds."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, ttl: float = UNKNOWN_TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self._until: dict[str, float] = {}

    def add(self, ids: set[str]) -> None:
        until = self.clock.monotonic() + self.ttl
        for external in ids:
            self._until[external] = until

    def filter(self, ids: list[str]) -> tuple[list[str], int]:
        """(ids to ask for, how many were skipped as known-unknown)."""
        now = self.clock.monotonic()
        keep: list[str] = []
        for external in ids:
            until = self._until.get(external)
            if until is not None and until > now:
                continue
            if until is not None:
                del self._until[external]
            keep.append(external)
        return keep, len(ids) - len(keep)
