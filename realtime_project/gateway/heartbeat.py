"""Application-level heartbeat of one connection: when to ping, when to give up (pure).

The server pings every `interval` seconds; a ping not answered by a `pong` with its id
within `timeout` seconds means a dead link and the connection is closed (close code
4408). Answered pings give the round-trip time; quality is derived from RTT and misses.
Time comes from the caller, so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

#: Weight of a new RTT sample in the smoothed RTT (TCP's SRTT uses 1/8; pings are rarer,
#: so a new sample counts more).
RTT_ALPHA: Final = 0.25
#: RTT bounds for the quality grades, in seconds.
GOOD_RTT: Final = 0.25
POOR_RTT: Final = 1.0


class Quality(enum.StrEnum):
    GOOD = "good"
    DEGRADED = "degraded"
    POOR = "poor"


class Action(enum.Enum):
    NONE = "none"
    PING = "ping"
    CLOSE = "close"


@dataclass(slots=True)
class Heartbeat:
    """Heartbeat state machine of one connection."""

    interval: float
    timeout: float
    started_at: float
    next_ping_at: float = 0.0
    #: ping id -> time sent, for pings not answered yet (oldest first).
    outstanding: dict[str, float] = field(default_factory=dict)
    rtt: float | None = None
    missed: int = 0
    answered: int = 0
    last_sample: float | None = None
    #: Seconds to the first ping (default: one interval). The consumer draws it at
    #: random so that connections made together (a reconnect storm, a load test) do not
    #: ping, and then pong, in one burst every interval.
    first_ping_after: float | None = None
    _counter: int = 0

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("heartbeat interval and timeout must be positive")
        first = self.interval if self.first_ping_after is None else self.first_ping_after
        self.next_ping_at = self.started_at + first

    def poll(self, now: float) -> tuple[Action, str | None]:
        """What to do at `now`: close on timeout first, otherwise ping when due."""
        if self.outstanding:
            oldest = next(iter(self.outstanding.values()))
            if now - oldest >= self.timeout:
                return Action.CLOSE, None
        if now >= self.next_ping_at:
            if self.outstanding:
                # The previous ping is still unanswered at the next interval: a miss.
                self.missed += 1
            self._counter += 1
            ping_id = f"s{self._counter}"
            self.outstanding[ping_id] = now
            self.next_ping_at = now + self.interval
            return Action.PING, ping_id
        return Action.NONE, None

    def due_at(self) -> float:
        """The earliest time at which `poll` can return something other than NONE."""
        due = self.next_ping_at
        if self.outstanding:
            due = min(due, next(iter(self.outstanding.values())) + self.timeout)
        return due

    def pong(self, ping_id: object, now: float) -> bool:
        """Record a pong; returns False for an id that was never sent (ignored)."""
        if not isinstance(ping_id, str):
            return False
        sent = self.outstanding.pop(ping_id, None)
        if sent is None:
            return False
        # An answer also settles every older ping: the link is alive.
        for older in [k for k, t in self.outstanding.items() if t <= sent]:
            del self.outstanding[older]
        sample = max(0.0, now - sent)
        self.last_sample = sample
        self.rtt = sample if self.rtt is None else (1 - RTT_ALPHA) * self.rtt + RTT_ALPHA * sample
        self.answered += 1
        return True

    @property
    def quality(self) -> Quality:
        if self.missed >= 2 or (self.rtt is not None and self.rtt > POOR_RTT):
            return Quality.POOR
        if self.missed == 1 or (self.rtt is not None and self.rtt > GOOD_RTT):
            return Quality.DEGRADED
        return Quality.GOOD
