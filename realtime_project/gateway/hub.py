"""The hub: one channel-layer membership per process per channel, local fan-out.

Naive Channels gives every connection its own group membership, so a publication to
10,000 subscribers becomes 10,000 layer messages and 10,000 JSON encodings, and the
layer's per-channel capacity drops the excess silently (DESIGN.md, measured facts).
Here each gateway process owns one layer channel; it joins a channel's group once,
keeps the local subscribers, builds each frame once and queues it on every local
subscriber's connection. Publications carry a gap-free `seq` from the history store:
a gap (the layer is at-most-once) is repaired from history before delivery, and every
subscriber has a watermark so nothing is delivered twice or out of order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .clock import SYSTEM_CLOCK, Clock, now_ms
from .conf import GatewaySettings
from .conflation import Conflator
from .connections import Connection, ConnectionManager
from .direct import SharedFrame
from .errors import BadRequest, CloseCode, GatewayError, Unavailable
from .heartbeat import Action, Quality
from .history import HistoryStore, Position, Publication, plan_recovery, recover
from .history import Recovery as HistoryRecovery
from .metrics import (
    CHANNELS,
    GAPS_REPAIRED,
    GAPS_UNRECOVERED,
    LAYER_ERRORS,
    PUBLICATIONS,
    PUBLISH_LATENCY,
    QUALITY,
    SHARED_FRAMES,
    SLOW_CONSUMERS,
    SUBSCRIPTIONS,
)
from .namespaces import Namespace, Principal, Recovery
from .protocol import Since, dumps, message_frame

logger = logging.getLogger("realtime.hub")

#: Group memberships expire in channels-redis (group_expiry, default 1 day): re-add.
GROUP_REFRESH_SECONDS = 3_600.0
#: Heartbeat checks per second cadence upper bound.
HEARTBEAT_TICK = 1.0
#: Back-off bounds while the channel layer is unreachable.
LAYER_RETRY_MIN, LAYER_RETRY_MAX = 0.2, 5.0
USER_GROUP = "rt.user.{}"
#: Every gateway process joins this group: `publish_many` sends one message per batch.
BATCH_GROUP = "rt.batch"
GRADES = tuple(q.value for q in Quality)
#: How long an out-of-order publication waits for the missing ones to arrive through
#: the layer before they are fetched from history (only concurrent publishers on one
#: channel, or a layer drop, cause this; in-order delivery never waits).
REORDER_WAIT = 0.05
#: A missing publication that history no longer holds may still be in flight (its
#: publisher got the seq, then stalled before the group send while more than a history's
#: worth of newer ones went out): the gap is held this long before it is accepted as lost.
GAP_GIVE_UP = 1.0
#: ... unless this many publications pile up behind it first.
PENDING_LIMIT = 1024
#: Publications kept in memory per joined channel (bounded by the namespace's history).
LOCAL_HISTORY = 128
#: Client-visible channel of `send_to_user` frames (no history, every user connection).
USER_CHANNEL = "user"


@dataclass(eq=False, slots=True)
class Subscription:
    conn: Connection
    public: str
    internal: str
    namespace: Namespace
    seq: int = 0
    epoch: str = ""
    #: Live publications held while the subscription replays history.
    buffer: list[Publication] | None = None
    conflator: Conflator | None = None
    #: Snapshot from the app's hook even when history has a last publication.
    hook_first: bool = False


@dataclass(eq=False, slots=True)
class ChannelState:
    internal: str
    public: str
    namespace: Namespace
    group: str
    subscribers: set[Subscription] = field(default_factory=set)
    epoch: str = ""
    last_seq: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: The newest publications of the channel (loaded once when this process joined,
    #: then kept in step by fan-out): fresh subscribers get their snapshot, and
    #: reconnecting ones their missed messages, without a round trip to Redis, so a
    #: reconnect storm costs one history read per channel, not one per client.
    recent: deque[Publication] = field(default_factory=lambda: deque(maxlen=LOCAL_HISTORY))

    @property
    def latest(self) -> Publication | None:
        return self.recent[-1] if self.recent else None

    #: Publications that arrived ahead of a missing seq, held for REORDER_WAIT.
    pending: dict[int, Publication] = field(default_factory=dict)
    repair: asyncio.TimerHandle | None = None
    #: Loop time at which history was first found not to hold the missing publication.
    gap_since: float | None = None


class Hub:
    """Per-process fan-out; one instance per event loop (see `get_hub`)."""

    def __init__(
        self,
        *,
        layer: Any,
        history: HistoryStore,
        settings: GatewaySettings,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.layer = layer
        self.history = history
        self.settings = settings
        self.clock = clock
        self.connections = ConnectionManager()
        self.channels: dict[str, ChannelState] = {}
        self._groups: dict[str, int] = {}  # group -> local reference count
        self.channel_name = ""
        self._tasks: list[asyncio.Task[None]] = []
        self.layer_ok = True
        self.draining = False
        self.started = False
        self._start_lock = asyncio.Lock()
        self._repairs: set[asyncio.Task[None]] = set()
        #: Set on every connect/disconnect; the presence loop refreshes Redis soon after.
        self.presence_changed = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self.started:
                return
            # The default prefix matters: channels-redis multiplexes every channel of a
            # process through one Redis key under one receive lock; a channel with another
            # prefix would hold that lock on its own key and starve other receivers.
            self.channel_name = await self.layer.new_channel()
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._receive_loop(), name="hub-receive"),
                loop.create_task(self._heartbeat_loop(), name="hub-heartbeat"),
                loop.create_task(self._refresh_loop(), name="hub-refresh"),
            ]
            await self._join(BATCH_GROUP)
            self.started = True
            logger.info("hub started on layer channel %s", self.channel_name)

    def spawn(self, coro: Any, name: str) -> None:
        """Run a background coroutine for the hub's lifetime (cancelled by `stop`)."""
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def stop(self, timeout: float = 2.0) -> None:
        tasks = self._tasks + list(self._repairs)
        for task in tasks:
            task.cancel()
        if tasks:
            # A layer receive may take a moment to unwind its cancellation; don't hang.
            await asyncio.wait(tasks, timeout=timeout)
        self._tasks = []
        self.started = False

    # --- groups -----------------------------------------------------------------------

    async def _join(self, group: str) -> None:
        count = self._groups.get(group, 0)
        self._groups[group] = count + 1
        if count == 0:
            await self.layer.group_add(group, self.channel_name)
            CHANNELS.set(len(self._groups))

    async def _leave(self, group: str) -> None:
        count = self._groups.get(group, 0) - 1
        if count > 0:
            self._groups[group] = count
            return
        self._groups.pop(group, None)
        CHANNELS.set(len(self._groups))
        try:
            await self.layer.group_discard(group, self.channel_name)
        except Exception:  # the membership expires by itself; never fail a disconnect
            logger.debug("group_discard %s failed", group, exc_info=True)
        if group in self._groups:
            # Re-joined while the discard was in flight (unsubscribe then subscribe at
            # once): the discard may have landed after the new add, so add again.
            await self.layer.group_add(group, self.channel_name)

    # --- connections ------------------------------------------------------------------

    async def add_connection(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.presence_changed.set()
        if conn.user_id is not None:
            await self._join(USER_GROUP.format(conn.user_id))
        conn.start()

    async def remove_connection(self, conn: Connection) -> None:
        if self.connections.get(conn.id) is None:
            return
        for sub in list(conn.subscriptions.values()):
            await self._drop_subscription(sub)
        conn.subscriptions.clear()
        self.connections.remove(conn)
        self.presence_changed.set()
        if conn.user_id is not None:
            await self._leave(USER_GROUP.format(conn.user_id))
        conn.stop()

    async def set_principal(self, conn: Connection, principal: Principal) -> None:
        old, new = self.connections.associate_user(conn, principal)
        if old == new:
            return
        if new is not None:
            await self._join(USER_GROUP.format(new))
        if old is not None:
            await self._leave(USER_GROUP.format(old))

    # --- subscriptions ----------------------------------------------------------------

    async def subscribe(
        self,
        conn: Connection,
        *,
        public: str,
        internal: str,
        namespace: Namespace,
        since: Since | None,
        max_rate: float | None,
        reply_id: str | int | None,
        snapshot: Any = None,
        snapshot_hook_first: bool = False,
    ) -> None:
        """Subscribe `conn` and queue `subscribed`, then replay or snapshot, in order.

        `snapshot` is an async callable returning the app's snapshot payload (JSON
        text) or None, used by durable namespaces and empty snapshot channels.
        """
        if max_rate is not None and namespace.recovery is not Recovery.SNAPSHOT:
            raise BadRequest("max_rate applies to snapshot channels only (prices, market)")
        try:
            state = await self._channel(internal, public, namespace)
        except GatewayError:
            raise
        except Exception as exc:  # the history store or the layer is unreachable
            logger.warning("subscribe %s: %s", internal, exc)
            raise Unavailable("channel temporarily unavailable; retry") from None
        sub = Subscription(conn, public, internal, namespace, buffer=[], hook_first=snapshot_hook_first)
        if max_rate is not None:
            sub.conflator = Conflator(max_rate)
        conn.subscriptions[public] = sub
        state.subscribers.add(sub)  # live publications go to sub.buffer meanwhile
        SUBSCRIPTIONS.inc()
        try:
            await self._catch_up(sub, state, since, reply_id, max_rate, snapshot)
        except BaseException as exc:
            await self._drop_subscription(sub)
            conn.subscriptions.pop(public, None)
            if isinstance(exc, Exception) and not isinstance(exc, GatewayError):
                logger.warning("subscribe %s: recovery failed: %s", internal, exc)
                raise Unavailable("history temporarily unavailable; retry") from None
            raise

    async def _catch_up(
        self,
        sub: Subscription,
        state: ChannelState,
        since: Since | None,
        reply_id: str | int | None,
        max_rate: float | None,
        snapshot: Any,
    ) -> None:
        conn = sub.conn
        reply: dict[str, Any] = {"type": "subscribed", "id": reply_id, "channel": sub.public}
        if max_rate is not None:
            reply["max_rate"] = max_rate
        frames: list[str] = []
        if since is not None:
            result = self._recover_locally(state, since) or await recover(self.history, sub.internal, since)
            position = result.position
            reply.update(recovered=result.recovered, epoch=position.epoch, seq=position.seq)
            if result.recovered:
                for pub in result.missed:
                    frames.append(message_frame(sub.public, pub.payload, pub.seq, pub.epoch))
                sub.seq = position.seq if not result.missed else result.missed[-1].seq
            else:
                sub.seq = position.seq
                frames += await self._snapshot_frames(sub, position.epoch, position.seq, snapshot)
        else:
            # This process has seen every publication of the channel since it joined:
            # the position and the latest value come from memory, not from Redis.
            position = Position(state.epoch, state.last_seq)
            reply.update(epoch=position.epoch, seq=position.seq)
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
                frames += await self._snapshot_frames(sub, position.epoch, position.seq, snapshot)
        sub.epoch = position.epoch
        conn.enqueue(dumps(reply))
        for frame in frames:
            conn.enqueue(frame)
        # Flush what was published while we were reading history, in order, no dups.
        buffered, sub.buffer = sub.buffer or [], None
        for pub in buffered:
            self._deliver_one(sub, pub, SharedFrame(message_frame(sub.public, pub.payload, pub.seq, pub.epoch)))

    @staticmethod
    def _recover_locally(state: ChannelState, since: Since) -> HistoryRecovery | None:
        """Recovery from the in-memory ring, or None when only the store can answer."""
        if since.epoch != state.epoch or since.seq > state.last_seq:
            return None  # another epoch, or the store may be ahead of this process
        position = Position(state.epoch, state.last_seq)
        if since.seq == state.last_seq:
            return HistoryRecovery(True, position)
        recent = state.recent
        if not recent or recent[0].seq > since.seq + 1 or recent[-1].seq != state.last_seq:
            return None  # older than the ring: ask the store
        missed = tuple(p for p in recent if p.seq > since.seq)
        return plan_recovery(since, position, list(missed))

    async def _snapshot_frames(self, sub: Subscription, epoch: str, seq: int, snapshot: Any) -> list[str]:
        ns = sub.namespace
        if ns.recovery is Recovery.STREAM:
            return []
        if ns.recovery is Recovery.SNAPSHOT and not sub.hook_first:
            latest = await self.history.latest(sub.internal)
            if latest is not None and latest.epoch == epoch:
                return [message_frame(sub.public, latest.payload, latest.seq, latest.epoch, snapshot=True)]
        if snapshot is None:
            return []
        payload = await snapshot()
        if payload is None:
            return []
        return [message_frame(sub.public, payload, seq, epoch, snapshot=True)]

    async def unsubscribe(self, conn: Connection, public: str) -> bool:
        sub = conn.subscriptions.pop(public, None)
        if sub is None:
            return False
        await self._drop_subscription(sub)
        return True

    async def _drop_subscription(self, sub: Subscription) -> None:
        state = self.channels.get(sub.internal)
        if state is None or sub not in state.subscribers:
            return
        state.subscribers.discard(sub)
        SUBSCRIPTIONS.dec()
        if not state.subscribers:
            del self.channels[sub.internal]
            if state.repair is not None:
                state.repair.cancel()
            await self._leave(state.group)

    async def _channel(self, internal: str, public: str, namespace: Namespace) -> ChannelState:
        state = self.channels.get(internal)
        if state is None:
            group = "rt." + internal.replace(":", ".")
            state = ChannelState(internal, public, namespace, group)
            self.channels[internal] = state
            try:
                await self._join(group)
                position = await self.history.position(internal)
                state.epoch, state.last_seq = position.epoch, position.seq
                size = min(LOCAL_HISTORY, namespace.history_size)
                state.recent = deque(maxlen=size)
                if position.seq:
                    loaded = await self.history.range(internal, max(0, position.seq - size), position.seq)
                    state.recent.extend(p for p in loaded if p.epoch == position.epoch)
            except BaseException:
                self.channels.pop(internal, None)
                self._groups.pop(group, None)
                state.ready.set()
                raise
            state.ready.set()
        else:
            await state.ready.wait()
            if self.channels.get(internal) is not state:  # the first subscriber's join failed
                raise Unavailable("could not join the channel; retry")
        return state

    # --- delivery ---------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        delay = LAYER_RETRY_MIN
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.layer_ok:
                    LAYER_ERRORS.inc()
                    logger.error("channel layer unreachable; connections stay open, retrying: %s", exc)
                    self.layer_ok = False
                await asyncio.sleep(delay)
                delay = min(LAYER_RETRY_MAX, delay * 2)
                # A restarted Redis has lost our group memberships: re-join them as the
                # probe, so delivery resumes without waiting for a message that can't come.
                if await self._refresh_groups():
                    logger.info("channel layer reachable again; re-joined %d groups", len(self._groups))
                    self.layer_ok = True
                    delay = LAYER_RETRY_MIN
                continue
            try:
                await self.handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub failed to handle a layer message")

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "hub.message":
            await self.on_publication(
                message["channel"],
                Publication(int(message["seq"]), str(message["epoch"]), str(message["payload"])),
                float(message.get("ts") or 0.0),
            )
        elif kind == "hub.batch":
            ts = float(message.get("ts") or 0.0)
            for channel, seq, epoch, payload in message["items"]:
                if channel in self.channels:
                    await self.on_publication(str(channel), Publication(int(seq), str(epoch), str(payload)), ts)
        elif kind == "hub.user":
            self.on_user_message(int(message["user"]), str(message["payload"]), float(message.get("ts") or 0.0))

    async def on_publication(self, internal: str, pub: Publication, ts: float = 0.0) -> None:
        state = self.channels.get(internal)
        if state is None:
            return
        if not state.ready.is_set():
            await state.ready.wait()
        if pub.epoch != state.epoch:
            # History was lost (store flushed or expired): start counting again.
            logger.info("channel %s: new epoch %s (was %s)", internal, pub.epoch, state.epoch)
            state.epoch, state.last_seq = pub.epoch, pub.seq - 1
            state.pending.clear()
            state.gap_since = None
            state.recent.clear()
            for sub in state.subscribers:
                sub.seq, sub.epoch = pub.seq - 1, pub.epoch
        if pub.seq <= state.last_seq:
            return  # already delivered (repaired earlier) or a duplicate
        if pub.seq == state.last_seq + 1:
            self._fanout(state, pub)
            self._flush_pending(state)
        else:
            # Out of order: concurrent publishers got their seq before one another's
            # group_send, or the layer dropped one. Hold it briefly for the missing ones.
            state.pending[pub.seq] = pub
            if state.repair is None:
                state.repair = asyncio.get_running_loop().call_later(REORDER_WAIT, self._start_repair, state)
        if ts:
            PUBLISH_LATENCY.observe(max(0.0, time.time() - ts))

    def _flush_pending(self, state: ChannelState) -> None:
        pending = state.pending
        while pending:
            nxt = pending.pop(state.last_seq + 1, None)
            if nxt is None:
                for seq in [s for s in pending if s <= state.last_seq]:
                    del pending[seq]
                break
            self._fanout(state, nxt)
        if not pending:
            state.gap_since = None

    def _start_repair(self, state: ChannelState) -> None:
        state.repair = None
        if state.pending and self.channels.get(state.internal) is state:
            task = asyncio.get_running_loop().create_task(self._repair(state), name=f"hub-repair-{state.internal}")
            self._repairs.add(task)
            task.add_done_callback(self._repairs.discard)

    async def _repair(self, state: ChannelState) -> None:
        """Fill a gap from history; if history lost it too, wait for it briefly, then accept the gap."""
        if not state.pending:
            return
        first = min(state.pending)
        try:
            missing = await self.history.range(state.internal, state.last_seq, first - 1)
        except Exception as exc:
            logger.warning("channel %s: history unavailable for gap repair: %s", state.internal, exc)
            missing = []
        for pub in missing:
            if pub.epoch == state.epoch and pub.seq > state.last_seq and pub.seq not in state.pending:
                GAPS_REPAIRED.inc()
                state.pending[pub.seq] = pub
        self._flush_pending(state)
        if state.pending and state.last_seq < min(state.pending) - 1:
            now = asyncio.get_running_loop().time()
            if state.gap_since is None:
                state.gap_since = now
            if now - state.gap_since < GAP_GIVE_UP and len(state.pending) < PENDING_LIMIT:
                # Not in history (any more): its publisher may still be sending it.
                if state.repair is None:
                    state.repair = asyncio.get_running_loop().call_later(REORDER_WAIT, self._start_repair, state)
                return
            skipped = min(state.pending) - 1 - state.last_seq
            GAPS_UNRECOVERED.inc(skipped)
            logger.warning(
                "channel %s: %d publication(s) lost beyond history; clients will resync", state.internal, skipped
            )
            state.last_seq = min(state.pending) - 1
            self._flush_pending(state)
        if state.pending and state.repair is None:
            state.repair = asyncio.get_running_loop().call_later(REORDER_WAIT, self._start_repair, state)

    def _fanout(self, state: ChannelState, pub: Publication) -> None:
        """Hot path: build the frame once, queue it on every local subscriber."""
        state.last_seq = pub.seq
        state.recent.append(pub)
        frame = SharedFrame(message_frame(state.public, pub.payload, pub.seq, pub.epoch))
        PUBLICATIONS.inc()
        deliver = self._deliver_one
        for sub in tuple(state.subscribers):
            deliver(sub, pub, frame)
        if frame.framed:
            SHARED_FRAMES.inc()

    def _deliver_one(self, sub: Subscription, pub: Publication, frame: SharedFrame) -> None:
        if sub.buffer is not None:
            sub.buffer.append(pub)
            return
        if pub.seq <= sub.seq and pub.epoch == sub.epoch:
            return
        sub.seq, sub.epoch = pub.seq, pub.epoch
        conflator = sub.conflator
        if conflator is None:
            if not sub.conn.send_shared(frame) and sub.conn.close_code == CloseCode.SLOW_CONSUMER:
                SLOW_CONSUMERS.inc()
            return
        now = self.clock.monotonic()
        out = conflator.offer(frame.text, now)
        if out is not None:
            sub.conn.enqueue(out)
        elif not conflator.armed:
            conflator.armed = True
            loop = asyncio.get_running_loop()
            loop.call_later(max(0.0, conflator.due_at - now), self._flush_conflated, sub)

    def _flush_conflated(self, sub: Subscription) -> None:
        conflator = sub.conflator
        if conflator is None:
            return
        conflator.armed = False
        if sub.conn.subscriptions.get(sub.public) is not sub:
            return
        now = self.clock.monotonic()
        frame = conflator.flush(now)
        if frame is not None:
            sub.conn.enqueue(frame)
        elif conflator.pending is not None:  # the timer fired a hair early: re-arm
            conflator.armed = True
            asyncio.get_running_loop().call_later(max(0.0, conflator.due_at - now), self._flush_conflated, sub)

    def on_user_message(self, user_id: int, payload: str, ts: float = 0.0) -> None:
        conns = self.connections.connections_of(user_id)
        if not conns:
            return
        frame = message_frame(USER_CHANNEL, payload, None, None)
        for conn in conns:
            conn.enqueue(frame)
        if ts:
            PUBLISH_LATENCY.observe(max(0.0, time.time() - ts))

    # --- heartbeat and maintenance ----------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        tick = min(HEARTBEAT_TICK, self.settings.heartbeat_interval / 4, self.settings.heartbeat_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            try:
                self.check_heartbeats()
            except Exception:
                logger.exception("heartbeat check failed")

    def check_heartbeats(self) -> None:
        now = self.clock.monotonic()
        grades = dict.fromkeys(GRADES, 0)
        for conn in self.connections:
            if conn.closing:
                continue
            grades[conn.heartbeat.quality.value] += 1
            action, ping_id = conn.heartbeat.poll(now)
            if action is Action.PING:
                conn.enqueue(f'{{"type":"ping","id":"{ping_id}","server_time":{now_ms(self.clock)}}}')
            elif action is Action.CLOSE:
                logger.info("connection %s: heartbeat timeout, closing", conn.id)
                conn.enqueue(
                    dumps({"type": "error", "id": None, "code": "unavailable", "message": "heartbeat timeout"})
                )
                conn.close(CloseCode.HEARTBEAT_TIMEOUT)
        for grade, count in grades.items():
            QUALITY.labels(grade).set(count)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_SECONDS)
            await self._refresh_groups()

    async def _refresh_groups(self) -> bool:
        """Re-add this process to every group it holds; False if the layer is down."""
        try:
            # An empty-handed probe still needs one round trip to prove the layer is up.
            for group in list(self._groups) or ["rt.probe"]:
                await self.layer.group_add(group, self.channel_name)
            if not self._groups:
                await self.layer.group_discard("rt.probe", self.channel_name)
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        return True

    # --- introspection ----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "connections": len(self.connections),
            "users": self.connections.user_count,
            "channels": len(self.channels),
            "subscriptions": sum(len(s.subscribers) for s in self.channels.values()),
            "layer_ok": self.layer_ok,
            "draining": self.draining,
        }
