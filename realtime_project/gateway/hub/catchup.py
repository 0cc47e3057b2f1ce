"""Catch-up on subscribe: the `subscribed` reply, then replay or snapshot, then live.

A fresh subscriber gets the channel's position and latest value from the hub's memory
(this process has seen every publication since it joined); a resubscriber with `since`
gets exactly what it missed from the in-memory ring, else from the history store, else
`recovered: false` and a snapshot. Live publications that arrive meanwhile are held in
the subscription's buffer and flushed after, in order, without duplicates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..direct import SharedFrame
from ..history import HistoryStore, Position, plan_recovery, recover
from ..history import Recovery as HistoryRecovery
from ..metrics import OUT_MESSAGE, OUT_SUBSCRIBED
from ..namespaces import Recovery
from ..protocol import Since, message_frame, subscribed_frame
from .fanout import FanOut
from .state import ChannelState, SharedSnapshot, Subscription

#: The app's snapshot: JSON text of the state a (re)subscriber starts from, or None.
SnapshotFn = Callable[[], Awaitable[str | None]]

#: A public channel's snapshot (the same for everyone) is computed at most once per this
#: many seconds while the channel does not move: 5,000 subscribers to channels with no
#: history yet cost one database round trip per channel, not one per subscriber (issue
#: #10, cold subscribes). Any publication on the channel makes the next subscriber
#: compute a fresh one; an app whose state changes without a publication is at most
#: this stale for a new subscriber of a channel without history.
SNAPSHOT_REFRESH = 10.0
#: Per-user snapshots (durable channels: notifications, wallets) are shared only by
#: concurrent and near-simultaneous subscribers of that user (several tabs at once).
USER_SNAPSHOT_REFRESH = 1.0


async def shared_snapshot(state: ChannelState, sub: Subscription, snapshot: SnapshotFn, now: float) -> str | None:
    """The app's snapshot, single-flight: concurrent and recent subscribers of the same
    channel (and user) at the same position share one computation."""
    key = None if state.namespace.public else sub.conn.user_id
    refresh = SNAPSHOT_REFRESH if state.namespace.public else USER_SNAPSHOT_REFRESH
    entry = state.snapshots.get(key)
    fresh = (
        entry is not None
        and (entry.epoch, entry.seq) == (state.epoch, state.last_seq)
        and (not entry.result.done() or now - entry.taken_at < refresh)
        and not (entry.result.done() and entry.result.exception() is not None)
    )
    if entry is None or not fresh:
        loop = asyncio.get_running_loop()
        entry = SharedSnapshot(state.epoch, state.last_seq, now, loop.create_future())
        state.snapshots[key] = entry
        result = entry.result
        try:
            result.set_result(await snapshot())
        except BaseException as exc:
            state.snapshots.pop(key, None)
            if isinstance(exc, Exception):
                result.set_exception(exc)
                result.exception()  # retrieved: the other waiters re-raise it themselves
            else:
                result.cancel()
            raise
    return await asyncio.shield(entry.result)


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
    now: float,
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
            frames += await snapshot_frames(history, state, sub, position.epoch, position.seq, snapshot, now)
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
            frames += await snapshot_frames(history, state, sub, position.epoch, position.seq, snapshot, now)
    sub.epoch = position.epoch
    if conn.enqueue(
        subscribed_frame(
            reply_id, sub.public, epoch=position.epoch, seq=position.seq, recovered=recovered, max_rate=max_rate
        )
    ):
        OUT_SUBSCRIBED.inc()
    sent = sum(conn.enqueue(frame) for frame in frames)
    # Flush what was published while we were reading history, in order, no dups.
    buffered, sub.buffer = sub.buffer or [], None
    for pub in buffered:
        sent += fanout.deliver(sub, pub, SharedFrame(message_frame(sub.public, pub.payload, pub.seq, pub.epoch)))
    if sent:
        OUT_MESSAGE.inc(sent)


async def snapshot_frames(
    history: HistoryStore,
    state: ChannelState,
    sub: Subscription,
    epoch: str,
    seq: int,
    snapshot: SnapshotFn | None,
    now: float,
) -> list[str]:
    ns = sub.namespace
    if ns.recovery is Recovery.STREAM:
        return []
    # A channel this process knows to have no publication yet (position 0 in the epoch
    # it holds) has no latest value in history either: no round trip to ask.
    empty = (epoch, seq) == (state.epoch, 0)
    if ns.recovery is Recovery.SNAPSHOT and not sub.hook_first and not empty:
        latest = await history.latest(sub.internal)
        if latest is not None and latest.epoch == epoch:
            return [message_frame(sub.public, latest.payload, latest.seq, latest.epoch, snapshot=True)]
    if snapshot is None:
        return []
    payload: Any = await shared_snapshot(state, sub, snapshot, now)
    if payload is None:
        return []
    return [message_frame(sub.public, payload, seq, epoch, snapshot=True)]
