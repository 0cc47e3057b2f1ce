"""The hub: one channel-layer membership per process per channel, local fan-out.

Naive Channels gives every connection its own group membership, so a publication to
10,000 subscribers becomes 10,000 layer messages and 10,000 JSON encodings, and the
layer's per-channel capacity drops the excess silently (measured with channels-redis 4).
Here each gateway process owns one layer channel; it joins a channel's group once
(`membership.py`), keeps the local subscribers, orders each channel's publications
(`sequencer.py`, repairing gaps from history), builds each frame once and writes it to
every local subscriber (`fanout.py`). New subscribers are caught up by `catchup.py`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from ...clock import SYSTEM_CLOCK, Clock
from ..conf import GatewaySettings
from ..conflation import Conflator
from ..connections import Connection, ConnectionManager
from ..errors import BadRequest, GatewayError, Unavailable
from ..history import HistoryStore, Publication
from ..layer_messages import (
    BATCH_GROUP,
    Publications,
    Revocation,
    UserMessage,
    channel_group,
    decode,
    parse,
    user_group,
)
from ..metrics import GAPS_REPAIRED, GAPS_UNRECOVERED, LAYER_ERRORS, PUBLISH_LATENCY, SUBSCRIPTIONS
from ..namespaces import Namespace, Principal, Recovery
from ..protocol import Since
from . import loops
from .catchup import SnapshotFn, catch_up
from .fanout import FanOut
from .intake import PubSubIntake
from .membership import LayerGroups, Membership, PubSubGroups
from .revocation import end_session
from .sequencer import Step
from .state import LOCAL_HISTORY, ChannelState, Subscription

logger = logging.getLogger("realtime.hub")

#: How long `start` waits for the Redis intake before serving without it.
INTAKE_START_TIMEOUT = 5.0


class Hub:
    """Per-process fan-out; one instance per event loop (see `serving.get_hub`)."""

    def __init__(
        self,
        *,
        layer: Any,
        history: HistoryStore,
        settings: GatewaySettings,
        clock: Clock = SYSTEM_CLOCK,
        intake_url: str = "",
        layer_prefix: str = "asgi",
    ) -> None:
        """`intake_url`: the Redis whose pub/sub carries publications (production);
        empty: publications come through `layer` (embedded mode, in-memory layer)."""
        self.layer = layer
        self.history = history
        self.settings = settings
        self.clock = clock
        self.connections = ConnectionManager()
        self.channels: dict[str, ChannelState] = {}
        self.intake: PubSubIntake | None = None
        if intake_url:
            self.intake = PubSubIntake(
                intake_url, self._on_pubsub, on_up=self._intake_up, on_down=self._intake_down, clock=clock
            )
            self.membership = Membership(PubSubGroups(self.intake, layer_prefix))
        else:
            self.membership = Membership(LayerGroups(layer))
        self.fanout = FanOut(clock)
        #: Connections by when their heartbeat is next due (see loops.HeartbeatWheel).
        self.heartbeats = loops.HeartbeatWheel(loops.heartbeat_tick(settings))
        self.quality_due = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.layer_ok = True
        self.draining = False
        self.started = False
        self._start_lock = asyncio.Lock()
        self._repairs: set[asyncio.Task[None]] = set()
        self._intake_ready = asyncio.Event()
        #: Set on every connect/disconnect; the presence loop refreshes Redis soon after.
        self.presence_changed = asyncio.Event()

    @property
    def channel_name(self) -> str:
        return self.membership.channel_name

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self.started:
                return
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(loops.heartbeat_loop(self), name="hub-heartbeat")]
            backend = self.membership.backend
            if self.intake is not None:
                self._tasks.append(loop.create_task(self.intake.run(), name="hub-intake"))
                try:  # Redis down at boot: subscribes answer `unavailable` until it is up
                    async with asyncio.timeout(INTAKE_START_TIMEOUT):
                        await self._intake_ready.wait()
                except TimeoutError:
                    logger.warning("hub started without its Redis pub/sub connection; retrying")
            else:
                assert isinstance(backend, LayerGroups)
                backend.channel_name = await self.layer.new_channel()
                self._tasks += [
                    loop.create_task(loops.receive_loop(self), name="hub-receive"),
                    loop.create_task(loops.refresh_loop(self), name="hub-refresh"),
                ]
                await self.membership.join(BATCH_GROUP)
            self.started = True
            logger.info("hub started on layer channel %s", self.channel_name)

    def spawn(self, coro: Any, name: str) -> None:
        """Run a background coroutine for the hub's lifetime (cancelled by `stop`)."""
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def stop(self, timeout: float = 2.0) -> None:
        tasks = self._tasks + list(self._repairs)
        for task in tasks:
            task.cancel()
        for state in self.channels.values():
            if state.repair is not None:
                state.repair.cancel()
                state.repair = None
        if tasks:
            # A layer receive may take a moment to unwind its cancellation; don't hang.
            await asyncio.wait(tasks, timeout=timeout)
        self._tasks = []
        self.started = False

    # --- connections ------------------------------------------------------------------

    async def add_connection(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.heartbeats.file(conn, conn.heartbeat.due_at())
        self.presence_changed.set()
        if conn.user_id is not None:
            await self.membership.join(user_group(conn.user_id))
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
            await self.membership.leave(user_group(conn.user_id))
        conn.stop()

    async def set_principal(self, conn: Connection, principal: Principal) -> None:
        old, new = self.connections.associate_user(conn, principal)
        if old == new:
            return
        if new is not None:
            await self.membership.join(user_group(new))
        if old is not None:
            await self.membership.leave(user_group(old))

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
        snapshot: SnapshotFn | None = None,
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
            await catch_up(
                self.history, self.fanout, self.clock.monotonic(), sub, state, since, reply_id, max_rate, snapshot
            )
        except BaseException as exc:
            await self._drop_subscription(sub)
            conn.subscriptions.pop(public, None)
            if isinstance(exc, Exception) and not isinstance(exc, GatewayError):
                logger.warning("subscribe %s: recovery failed: %s", internal, exc)
                raise Unavailable("history temporarily unavailable; retry") from None
            raise

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
            await self.membership.leave(state.group)

    async def _channel(self, internal: str, public: str, namespace: Namespace) -> ChannelState:
        state = self.channels.get(internal)
        if state is None:
            group = channel_group(internal)
            state = ChannelState(internal, public, namespace, group)
            self.channels[internal] = state
            try:
                await self.membership.join(group)
                position = await self.history.position(internal)
                state.sequencer.epoch, state.sequencer.last_seq = position.epoch, position.seq
                size = min(LOCAL_HISTORY, namespace.history_size)
                state.recent = deque(maxlen=size)
                if position.seq:
                    loaded = await self.history.range(internal, max(0, position.seq - size), position.seq)
                    state.recent.extend(p for p in loaded if p.epoch == position.epoch)
            except BaseException:
                self.channels.pop(internal, None)
                self.membership.forget(group)
                state.ready.set()
                raise
            state.ready.set()
            early, state.early = state.early, []
            for pub in early:
                self.offer(state, pub)
        else:
            await state.ready.wait()
            if self.channels.get(internal) is not state:  # the first subscriber's join failed
                raise Unavailable("could not join the channel; retry")
        return state

    # --- intake -----------------------------------------------------------------------

    def _on_pubsub(self, _channel: bytes, data: bytes) -> None:
        """A publication (or user message) from the Redis intake: handled at once."""
        self.handle_message(decode(data))

    def _intake_up(self, reconnected: bool) -> None:
        self._intake_ready.set()
        if reconnected:
            logger.info("channel layer reachable again; re-joined %d groups", len(self.membership.groups))
            self.layer_ok = True
            # Pub/sub dropped whatever was published while we were away: ask history.
            self.spawn(self.resync(), "hub-resync")

    def _intake_down(self, exc: Exception | None) -> None:
        if self.layer_ok:
            LAYER_ERRORS.inc()
            logger.error("channel layer unreachable; connections stay open, retrying: %s", exc or "connection closed")
            self.layer_ok = False

    async def handle(self, message: dict[str, Any]) -> None:
        """One layer message (see `layer_messages`)."""
        self.handle_message(message)

    def handle_message(self, message: dict[str, Any]) -> None:
        event = parse(message)
        if isinstance(event, Publications):
            channels = self.channels
            for channel, pub in event.items:
                state = channels.get(channel)
                if state is not None:
                    self.offer(state, pub)
            if event.ts:
                PUBLISH_LATENCY.observe(max(0.0, time.time() - event.ts))
        elif isinstance(event, UserMessage):
            self.on_user_message(event.user_id, event.payload, event.ts)
        elif isinstance(event, Revocation):
            self.revoke(event.user_id, event.credential, event.reason)

    async def on_publication(self, internal: str, pub: Publication, ts: float = 0.0) -> None:
        state = self.channels.get(internal)
        if state is not None:
            self.offer(state, pub)

    def offer(self, state: ChannelState, pub: Publication) -> None:
        if not state.ready.is_set():
            state.early.append(pub)  # offered once the position is known
            return
        self._apply(state, state.sequencer.offer(pub, self.clock.monotonic()))

    def _apply(self, state: ChannelState, step: Step) -> None:
        if step.new_epoch:
            logger.info("channel %s: new epoch %s", state.internal, state.epoch)
            state.recent.clear()
            for sub in state.subscribers:
                sub.seq, sub.epoch = 0, state.epoch
        if step.repaired:
            GAPS_REPAIRED.inc(step.repaired)
        if step.skipped:
            GAPS_UNRECOVERED.inc(step.skipped)
            logger.warning(
                "channel %s: %d publication(s) lost beyond history; clients will resync", state.internal, step.skipped
            )
        for item in step.deliver:
            self.fanout.publication(state, item)
        self._schedule_repair(state)

    async def resync(self) -> None:
        """Compare every joined channel with history and repair what this process missed."""
        for state in list(self.channels.values()):
            if not state.ready.is_set():
                continue
            try:
                position = await self.history.position(state.internal)
            except Exception as exc:
                logger.warning("channel %s: resync failed: %s", state.internal, exc)
                continue
            if self.channels.get(state.internal) is state:
                self._apply(state, state.sequencer.observe(position.epoch, position.seq, self.clock.monotonic()))

    def _schedule_repair(self, state: ChannelState) -> None:
        due = state.sequencer.repair_at
        if due is None or state.repair is not None:
            return
        delay = max(0.0, due - self.clock.monotonic())
        state.repair = asyncio.get_running_loop().call_later(delay, self._start_repair, state)

    def _start_repair(self, state: ChannelState) -> None:
        state.repair = None
        if state.sequencer.missing() is not None and self.channels.get(state.internal) is state:
            task = asyncio.get_running_loop().create_task(self._repair(state), name=f"hub-repair-{state.internal}")
            self._repairs.add(task)
            task.add_done_callback(self._repairs.discard)
        else:
            self._schedule_repair(state)

    async def _repair(self, state: ChannelState) -> None:
        """Fill a gap from history; the sequencer decides whether to wait or give up."""
        missing = state.sequencer.missing()
        if missing is None:
            return
        try:
            found = await self.history.range(state.internal, missing[0], missing[1])
        except Exception as exc:
            logger.warning("channel %s: history unavailable for gap repair: %s", state.internal, exc)
            found = []
        if self.channels.get(state.internal) is state:
            self._apply(state, state.sequencer.repaired(found, self.clock.monotonic()))

    def on_user_message(self, user_id: int, payload: str, ts: float = 0.0) -> None:
        self.fanout.to_user(self.connections.connections_of(user_id), payload, ts)

    def revoke(self, user_id: int, credential: str | None, reason: str) -> int:
        """End the user's local sockets opened with `credential` (an id; None: every one)."""
        ended = 0
        for conn in list(self.connections.connections_of(user_id)):
            if credential is None or (conn.credential is not None and conn.credential.id == credential):
                ended += end_session(conn, reason)
        if ended:
            logger.info("user %s: %d connection(s) ended (%s)", user_id, ended, reason)
        return ended

    def check_heartbeats(self) -> None:
        loops.check_heartbeats(self)

    # --- introspection ----------------------------------------------------------------

    @property
    def _groups(self) -> dict[str, int]:
        return self.membership.groups

    def stats(self) -> dict[str, Any]:
        return {
            "connections": len(self.connections),
            "users": self.connections.user_count,
            "channels": len(self.channels),
            "subscriptions": sum(len(s.subscribers) for s in self.channels.values()),
            "layer_ok": self.layer_ok,
            "draining": self.draining,
        }
