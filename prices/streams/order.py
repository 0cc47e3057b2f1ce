"""Ordering checks of a venue's messages: per-product sequences and trade ids (pure).

While a connection is being replaced both connections deliver the same messages in
any interleaving, so a number seen recently is a harmless duplicate, while a lower
number never seen is out of order (late): each key remembers its last `RECENT` numbers.
"""

from __future__ import annotations

from collections import deque

#: Numbers remembered per key to tell a duplicate from a late message.
RECENT = 256


class _Seen:
    __slots__ = ("last", "order", "recent")

    def __init__(self, first: int) -> None:
        self.last = first
        self.order: deque[int] = deque([first], maxlen=RECENT)
        self.recent = {first}

    def add(self, number: int) -> None:
        if len(self.order) == RECENT:
            self.recent.discard(self.order[0])
        self.order.append(number)
        self.recent.add(number)
        if number > self.last:
            self.last = number


class SequenceBook:
    """Coinbase's per-product `sequence`: +1 each message; a jump is a loss, lower is late.

    `check` answers 'first', 'ok', 'gap' (messages were lost: counted, the message is
    used), 'duplicate' (seen already) or 'late' (older than the last and never seen:
    dropped, it would move the price back).
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def check(self, key: str, seq: int) -> tuple[str, int]:
        """(verdict, the sequence that was expected)."""
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = _Seen(seq)
            return "first", seq
        expected = seen.last + 1
        if seq in seen.recent:
            return "duplicate", expected
        if seq < seen.last:
            return "late", expected
        seen.add(seq)
        return ("ok" if seq == expected else "gap"), expected

    def reset(self) -> None:
        """After a reconnect: what was missed while away is not a gap of the new stream."""
        self._seen.clear()


class TradeIds:
    """Trade ids per product only grow: one seen before is a duplicate, a lower unseen one
    is out of order. Where the venue numbers each book's trades contiguously (`contiguous`:
    Kraken's per-book sequence, Coinbase's matches, Binance's aggregate trades), a jump is a
    `gap` (trades were missed; the trade is used, the loss counted)."""

    __slots__ = ("_resumed", "_seen", "contiguous")

    def __init__(self, *, contiguous: bool = False) -> None:
        self._seen: dict[str, _Seen] = {}
        self.contiguous = contiguous
        #: Keys whose next trade follows a reconnect: what was missed while away is no gap.
        self._resumed: set[str] = set()

    def accept(self, key: str, trade_id: int) -> str:
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = _Seen(trade_id)
            return "ok"
        if trade_id in seen.recent:
            return "duplicate"
        if trade_id < seen.last:
            return "out_of_order"
        gap = self.contiguous and trade_id > seen.last + 1 and key not in self._resumed
        self._resumed.discard(key)
        seen.add(trade_id)
        return "gap" if gap else "ok"

    def resume(self) -> None:
        """After a reconnect (duplicates are still recognised, gaps are not counted once)."""
        self._resumed = set(self._seen)

    def last(self, key: str) -> int | None:
        seen = self._seen.get(key)
        return seen.last if seen is not None else None

    def skip_to(self, key: str, trade_id: int) -> None:
        """Trades up to `trade_id` were missed: later ones continue from there."""
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = _Seen(trade_id)
        elif trade_id > seen.last:
            seen.last = trade_id
