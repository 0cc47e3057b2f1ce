"""Per-channel publication history: gap-free `seq`, an `epoch`, a bounded log (pure).

Every publication gets the next integer `seq` of its channel and the channel's current
`epoch`. The epoch changes whenever history is lost (store flushed, keys expired,
process restarted in embedded mode), so a client holding `{epoch, seq}` can tell
"I missed exactly these" from "my position means nothing any more".

`MemoryHistory` is the embedded-mode store and the reference implementation that the
Redis store (`history_redis.py`) is tested against.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from ..clock import SYSTEM_CLOCK, Clock
from .protocol import Since


@dataclass(frozen=True, slots=True)
class Publication:
    seq: int
    epoch: str
    payload: str  # JSON text of the `data` field, encoded once by the publisher


@dataclass(frozen=True, slots=True)
class Position:
    epoch: str
    seq: int


@dataclass(frozen=True, slots=True)
class Recovery:
    """Result of a recovery attempt: `recovered` and, if so, what was missed."""

    recovered: bool
    position: Position
    missed: tuple[Publication, ...] = ()


def new_epoch() -> str:
    return secrets.token_hex(4)


#: (channel, payload JSON, history size, TTL seconds) for `append_many`.
AppendItem = tuple[str, str, int, float]


class HistoryStore(Protocol):
    async def append(self, channel: str, payload: str, *, size: int, ttl: float) -> Publication: ...

    async def append_many(self, items: list[AppendItem]) -> list[Publication]: ...

    async def range(self, channel: str, after_seq: int, upto_seq: int | None = None) -> list[Publication]: ...

    async def position(self, channel: str) -> Position: ...

    async def latest(self, channel: str) -> Publication | None: ...

    async def ping(self) -> bool: ...


def plan_recovery(since: Since, position: Position, available: list[Publication]) -> Recovery:
    """Decide recovery from what the store holds after `since.seq` (shared by stores).

    `available` must be the stored publications with seq > since.seq, in order.
    Recovered means: same epoch, `since.seq` not in the future, and the stored log
    covers every seq from `since.seq + 1` to the current position without a hole.
    """
    if since.epoch != position.epoch or since.seq > position.seq:
        return Recovery(False, position)
    if since.seq == position.seq:
        return Recovery(True, position)
    if not available or available[0].seq != since.seq + 1:
        return Recovery(False, position)  # older than the bounded history
    expected = since.seq + 1
    for pub in available:
        # The log and the position are read separately: a flush in between must not
        # pass another epoch's publications off as the missed ones.
        if pub.seq != expected or pub.epoch != position.epoch:
            return Recovery(False, position)
        expected += 1
    if expected - 1 < position.seq:
        return Recovery(False, position)
    return Recovery(True, position, tuple(available))


async def recover(store: HistoryStore, channel: str, since: Since) -> Recovery:
    position = await store.position(channel)
    if since.epoch != position.epoch or since.seq >= position.seq:
        return plan_recovery(since, position, [])
    available = await store.range(channel, since.seq, position.seq)
    return plan_recovery(since, position, available)


@dataclass(slots=True)
class _ChannelLog:
    epoch: str
    seq: int = 0
    log: deque[Publication] = field(default_factory=deque)
    expires_at: float = 0.0


class MemoryHistory:
    """In-process history (embedded mode and tests). Not shared between processes."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._channels: dict[str, _ChannelLog] = {}

    def _get(self, channel: str) -> _ChannelLog:
        now = self._clock.monotonic()
        state = self._channels.get(channel)
        if state is None or (state.expires_at and now >= state.expires_at):
            # Like Redis keys expiring: the history is gone, so is the epoch.
            state = _ChannelLog(epoch=new_epoch())
            self._channels[channel] = state
        return state

    async def append(self, channel: str, payload: str, *, size: int, ttl: float) -> Publication:
        state = self._get(channel)
        state.seq += 1
        pub = Publication(state.seq, state.epoch, payload)
        state.log.append(pub)
        while len(state.log) > size:
            state.log.popleft()
        state.expires_at = self._clock.monotonic() + ttl
        return pub

    async def append_many(self, items: list[AppendItem]) -> list[Publication]:
        return [await self.append(channel, payload, size=size, ttl=ttl) for channel, payload, size, ttl in items]

    async def range(self, channel: str, after_seq: int, upto_seq: int | None = None) -> list[Publication]:
        state = self._get(channel)
        return [p for p in state.log if p.seq > after_seq and (upto_seq is None or p.seq <= upto_seq)]

    async def position(self, channel: str) -> Position:
        state = self._get(channel)
        return Position(state.epoch, state.seq)

    async def latest(self, channel: str) -> Publication | None:
        state = self._get(channel)
        return state.log[-1] if state.log else None

    async def ping(self) -> bool:
        return True

    def flush(self) -> None:
        """Forget everything (tests: simulates a flushed store)."""
        self._channels.clear()
