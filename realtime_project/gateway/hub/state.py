"""What the hub holds per joined channel and per subscription."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..conflation import Conflator
from ..history import Publication
from ..namespaces import Namespace
from .sequencer import Sequencer

if TYPE_CHECKING:
    from ..connections import Connection

#: Publications kept in memory per joined channel (bounded by the namespace's history).
LOCAL_HISTORY = 128


@dataclass(eq=False, slots=True)
class Subscription:
    conn: Connection
    public: str
    internal: str
    namespace: Namespace
    #: The subscriber's watermark: the last publication it was sent (or skipped past).
    seq: int = 0
    epoch: str = ""
    #: Live publications held while the subscription replays history.
    buffer: list[Publication] | None = None
    conflator: Conflator | None = None
    #: Snapshot from the app's hook even when history has a last publication.
    hook_first: bool = False


@dataclass(eq=False, slots=True)
class SharedSnapshot:
    """One snapshot computation and the channel position it was taken at."""

    epoch: str
    seq: int
    taken_at: float
    result: asyncio.Future[str | None]


@dataclass(eq=False, slots=True)
class ChannelState:
    internal: str
    public: str
    namespace: Namespace
    group: str
    subscribers: set[Subscription] = field(default_factory=set)
    sequencer: Sequencer = field(default_factory=Sequencer)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: The newest publications of the channel (loaded once when this process joined,
    #: then kept in step by fan-out): fresh subscribers get their snapshot, and
    #: reconnecting ones their missed messages, without a round trip to Redis, so a
    #: reconnect storm costs one history read per channel, not one per client.
    recent: deque[Publication] = field(default_factory=lambda: deque(maxlen=LOCAL_HISTORY))
    #: The timer that starts the next history repair (see Sequencer.repair_at).
    repair: asyncio.TimerHandle | None = None
    #: Publications that arrived while this process was still reading the position.
    early: list[Publication] = field(default_factory=list)
    #: The app's snapshots of this channel, per user (None: anonymous), shared by the
    #: subscribers of one refresh interval (see catchup.shared_snapshot).
    snapshots: dict[int | None, SharedSnapshot] = field(default_factory=dict)

    @property
    def epoch(self) -> str:
        return self.sequencer.epoch

    @property
    def last_seq(self) -> int:
        return self.sequencer.last_seq

    @property
    def latest(self) -> Publication | None:
        return self.recent[-1] if self.recent else None
