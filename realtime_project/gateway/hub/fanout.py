"""Fan-out, the hot path: build each frame once, write it to every local subscriber.

No task, queue hop or per-subscriber encoding: one `SharedFrame` per publication,
handed to each connection's write choke point (`Connection.send_shared`). Every
subscriber has a watermark (`seq`, `epoch`), so nothing reaches it twice or backwards
(a subscription replaying history buffers live publications meanwhile).
"""

from __future__ import annotations

import asyncio
import time

from ...clock import Clock
from ..connections import Connection
from ..direct import SharedFrame
from ..history import Publication
from ..metrics import OUT_MESSAGE, PUBLICATIONS, PUBLISH_LATENCY, SHARED_FRAMES
from ..protocol import message_frame
from .state import ChannelState, Subscription

#: Client-visible channel of `send_to_user` frames (no history, every user connection).
USER_CHANNEL = "user"


class FanOut:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def publication(self, state: ChannelState, pub: Publication) -> None:
        """Deliver one in-order publication to every local subscriber of the channel."""
        state.recent.append(pub)
        frame = SharedFrame(message_frame(state.public, pub.payload, pub.seq, pub.epoch))
        PUBLICATIONS.inc()
        deliver = self.deliver
        sent = 0
        for sub in tuple(state.subscribers):
            sent += deliver(sub, pub, frame)
        if sent:
            OUT_MESSAGE.inc(sent)  # once per publication, not per delivery
        if frame.framed:
            SHARED_FRAMES.inc()

    def deliver(self, sub: Subscription, pub: Publication, frame: SharedFrame) -> int:
        """Deliver to one subscriber; returns how many frames went out or were queued (0, 1)."""
        if sub.buffer is not None:
            sub.buffer.append(pub)
            return 0
        if pub.seq <= sub.seq and pub.epoch == sub.epoch:
            return 0
        sub.seq, sub.epoch = pub.seq, pub.epoch
        conflator = sub.conflator
        if conflator is None:
            return int(sub.conn.send_shared(frame))
        now = self.clock.monotonic()
        out = conflator.offer(frame.text, now)
        if out is not None:
            return int(sub.conn.enqueue(out))
        if not conflator.armed:
            conflator.armed = True
            loop = asyncio.get_running_loop()
            loop.call_later(max(0.0, conflator.due_at - now), self.flush_conflated, sub)
        return 0

    def flush_conflated(self, sub: Subscription) -> None:
        conflator = sub.conflator
        if conflator is None:
            return
        conflator.armed = False
        if sub.conn.subscriptions.get(sub.public) is not sub:
            return
        now = self.clock.monotonic()
        frame = conflator.flush(now)
        if frame is not None:
            if sub.conn.enqueue(frame):
                OUT_MESSAGE.inc()
        elif conflator.pending is not None:  # the timer fired a hair early: re-arm
            conflator.armed = True
            asyncio.get_running_loop().call_later(max(0.0, conflator.due_at - now), self.flush_conflated, sub)

    def to_user(self, conns: set[Connection], payload: str, ts: float = 0.0) -> None:
        """A `send_to_user` frame to every local connection of the user."""
        if not conns:
            return
        frame = message_frame(USER_CHANNEL, payload, None, None)
        OUT_MESSAGE.inc(sum(conn.enqueue(frame) for conn in conns))
        if ts:
            PUBLISH_LATENCY.observe(max(0.0, time.time() - ts))
