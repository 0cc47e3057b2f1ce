"""Catch-up on subscribe: the `subscribed` reply, then replay or snapshot, then live.

A fresh subscriber gets the channel's position and latest value from the hub's memory
(this process has seen every publication since it joined); a resubscriber with `since`
gets exactly what it missed from the in-memory ring, else from the history store, else
`recovered: false` and a snapshot. Live publications that arrive meanwhile are held in
the subscription's buffer and flushed after, in order, without duplicates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..direct import SharedFrame
from ..history import HistoryStore, Position, plan_recovery, recover
from ..history import Recovery as HistoryRecovery
from ..namespaces import Recovery
from ..protocol import Since, message_frame, subscribed_frame
from .fanout import FanOut
from .state import ChannelState, Subscription

#: The app's snapshot: JSON text of the state a (re)subscriber starts from, or None.
SnapshotFn = Callable[[], Awaitable[str | None]]


def recover_locally(state: ChannelState, since: Since) -> HistoryRecovery | None:
    """Recovery from the in-memory ring, or None when only the store can answer."""
    if since.epoch != state.epoch or since.seq > state.last_seq:
        return None  # another epoch, or the store may be ahead of this process
    position = Position(state.epoch, state.last_seq)
    if since.seq == state.last_seq:
        return HistoryRecovery(True, position)
    recent = state.recent
    if not recent or recent[0].seq > since.seq + 1 or recent[-1].seq != state.last_seq:
        return None  # older than the ring: ask the store
    missed = [p for p in recent if p.seq > since.seq]
    return plan_recovery(since, position, missed)


async def catch_up(
    history: HistoryStore,
    fanout: FanOut,
    sub: Subscription,
    state: ChannelState,
    since: Since | None,
    reply_id: str | int | None,
    max_rate: float | None,
    snapshot: SnapshotFn | None,
) -> None:
    conn = sub.conn
    frames: list[str] = []
    recovered: bool | None = None
    if since is not None:
        result = recover_locally(state, since) or await recover(history, sub.internal, since)
        position = result.position
        recovered = result.recovered
        if result.recovered:
            for pub in result.missed:
                frames.append(message_frame(sub.public, pub.payload, pub.seq, pub.epoch))
            sub.seq = position.seq if not result.missed else result.missed[-1].seq
        else:
            sub.seq = position.seq
            frames += await snapshot_frames(history, sub, position.epoch, position.seq, snapshot)
    else:
        # This process has seen every publication of the channel since it joined:
        # the position and the latest value come from memory, not from Redis.
        position = Position(state.epoch, state.last_seq)
        sub.seq = position.seq
        latest = state.latest
        if (
            state.namespace.recovery is Recovery.SNAPSHOT
            and not sub.hook_first
            and latest is not None
            and (latest.epoch, latest.seq) == (position.epoch, position.seq)
        ):
            frames.append(message_frame(sub.public, latest.payload, latest.seq, latest.epoch, snapshot=True))
        else:
            frames += await snapshot_frames(history, sub, position.epoch, position.seq, snapshot)
    sub.epoch = position.epoch
    conn.enqueue(
        subscribed_frame(
            reply_id, sub.public, epoch=position.epoch, seq=position.seq, recovered=recovered, max_rate=max_rate
        )
    )
    for frame in frames:
        conn.enqueue(frame)
    # Flush what was published while we were reading history, in order, no dups.
    buffered, sub.buffer = sub.buffer or [], None
    for pub in buffered:
        fanout.deliver(sub, pub, SharedFrame(message_frame(sub.public, pub.payload, pub.seq, pub.epoch)))


async def snapshot_frames(
    history: HistoryStore, sub: Subscription, epoch: str, seq: int, snapshot: SnapshotFn | None
) -> list[str]:
    ns = sub.namespace
    if ns.recovery is Recovery.STREAM:
        return []
    if ns.recovery is Recovery.SNAPSHOT and not sub.hook_first:
        latest = await history.latest(sub.internal)
        if latest is not None and latest.epoch == epoch:
            return [message_frame(sub.public, latest.payload, latest.seq, latest.epoch, snapshot=True)]
    if snapshot is None:
        return []
    payload: Any = await snapshot()
    if payload is None:
        return []
    return [message_frame(sub.public, payload, seq, epoch, snapshot=True)]
