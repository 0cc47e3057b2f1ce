"""Rebalancing: connections move back to a restarted gateway (or balancer), with no outage.

Least connections (HAProxy) and SO_REUSEPORT (two balancers on one address) place *new*
connections only. When a gateway or a balancer dies, its clients reconnect through the
survivors, and nothing moves them back once it runs again: every later kill of the
survivor then drops twice the clients (measured: docs/benchmarks.md, the soak).

Every `REBALANCE_INTERVAL` seconds each gateway publishes its load in Redis (connections,
and how many came through each balancer: the `X-Realtime-Balancer` header HAProxy sets,
deploy/haproxy.cfg.template), with a TTL of a few intervals so a killed gateway's load
disappears quickly, and reads its peers'. When it carries more than its share, of the
gateways or of an overloaded balancer's connections, it asks a few of its clients to move
with a **handover** (`{"type": "reconnect", "reason": "rebalance", "handover_ms": …}`,
docs/protocol.md): the client opens a new socket through the balancer, resubscribes with
`since`, then closes this one, so the move costs no outage and loses nothing; this socket
is closed with 1012 once `handover_ms` has passed. A client that does not know handovers
reconnects as after a drain. Moves are damped (half the excess per round, at most
`REBALANCE_MAX_MOVES`), only connections older than `REBALANCE_MIN_AGE` move, a
connection is asked once, and nobody moves while the cluster takes a reconnection storm:
when more connections arrived in the last `REBALANCE_SETTLE` seconds than the gateways
asked to move, a process just died and its clients are coming back through the survivors.
Moving others then would only add handshakes to the storm, and send them where the dead
process cannot take them yet (the balancer still has it down).

`plan` is the pure decision; `rebalance_loop` the I/O around it (started with presence,
serving.py). `REBALANCE_INTERVAL` 0 turns it off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .conf import gateway_settings
from .errors import CloseCode
from .metrics import OUT_RECONNECT, REBALANCE_MOVES
from .protocol import reconnect_frame

if TYPE_CHECKING:
    from .connections import Connection
    from .hub import Hub

logger = logging.getLogger("realtime.rebalance")

#: Headers HAProxy sets (deploy/haproxy.cfg.template): which balancer a connection came
#: through, and every balancer of the deployment (one with no connections is still one).
BALANCER_HEADER = b"x-realtime-balancer"
BALANCERS_HEADER = b"x-realtime-balancers"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
#: At most this many balancer names are believed from a header.
MAX_BALANCERS = 8
#: conn.meta keys.
META_BALANCER, META_BALANCERS, META_MOVING = "balancer", "balancers", "moving"


@dataclass(frozen=True)
class Load:
    """One gateway's published load."""

    gateway: str
    connections: int
    #: Connections by the balancer they came through (those with the header).
    balancers: Mapping[str, int] = field(default_factory=dict)
    #: Every balancer the gateway's clients named (one with no connections included).
    known: tuple[str, ...] = ()
    #: Connections that arrived, and that this gateway asked to move, in the last
    #: REBALANCE_SETTLE seconds.
    arrived: int = 0
    asked: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "g": self.gateway,
                "c": self.connections,
                "b": dict(self.balancers),
                "k": list(self.known),
                "r": self.arrived,
                "m": self.asked,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> Load | None:
        try:
            data = json.loads(raw)
            return cls(
                gateway=str(data["g"]),
                connections=max(0, int(data["c"])),
                balancers={str(k): max(0, int(v)) for k, v in dict(data.get("b") or {}).items()},
                known=tuple(str(k) for k in data.get("k") or ())[:MAX_BALANCERS],
                arrived=max(0, int(data.get("r") or 0)),
                asked=max(0, int(data.get("m") or 0)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


@dataclass(frozen=True)
class Tuning:
    #: An excess under max(min_excess, tolerance x share) is left alone.
    tolerance: float = 0.1
    min_excess: int = 20
    #: At most this many moves per gateway per round.
    max_moves: int = 100


def _over(count: float, share: float, tuning: Tuning) -> float:
    excess = count - share
    return excess if excess > max(tuning.min_excess, tuning.tolerance * share) else 0.0


def plan(mine: Load, loads: Sequence[Load], tuning: Tuning = Tuning()) -> dict[str, int]:
    """How many of `mine`'s connections to move, by the balancer they came through
    ("": any). `loads` are every live gateway's, `mine` included."""
    moves: dict[str, int] = {}
    total = sum(load.connections for load in loads)
    storm = sum(load.arrived for load in loads) - sum(load.asked for load in loads)
    if storm > max(tuning.min_excess, tuning.tolerance * total):
        return moves  # clients of a dead process are reconnecting: let the storm settle
    # Balancers: a moved client comes back through a random balancer (SO_REUSEPORT), the
    # overloaded one included, so to move one away the fleet asks n / (n - 1).
    names = sorted({name for load in loads for name in (*load.known, *load.balancers)})
    if len(names) > 1:
        per = {name: sum(load.balancers.get(name, 0) for load in loads) for name in names}
        share = sum(per.values()) / len(names)
        for name in names:
            excess = _over(per[name], share, tuning)
            if excess and mine.balancers.get(name):
                wanted = excess * len(names) / (len(names) - 1) * mine.balancers[name] / per[name]
                moves[name] = math.ceil(wanted / 2)  # damped: half per round
    # Gateways: least connections sends a moved client to the emptiest gateway.
    if len(loads) > 1:
        excess = _over(mine.connections, sum(load.connections for load in loads) / len(loads), tuning)
        extra = math.ceil(excess / 2) - sum(moves.values())
        if extra > 0:
            moves[""] = extra
    budget, capped = tuning.max_moves, {}
    for name, count in sorted(moves.items(), key=lambda item: item[0] == ""):  # balancers first
        take = min(count, budget)
        if take > 0:
            capped[name] = take
            budget -= take
    return capped


def balancer_of(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, tuple[str, ...]]:
    """The balancer a handshake came through and the deployment's balancers, from the
    headers HAProxy sets; ("", ()) without them or when they are not plain names."""
    balancer: str = ""
    balancers: tuple[str, ...] = ()
    for name, value in headers:
        if name == BALANCER_HEADER:
            text = value.decode("latin-1").strip()
            balancer = text if _NAME.match(text) else ""
        elif name == BALANCERS_HEADER:
            names = [n.strip() for n in value.decode("latin-1").split(",")]
            balancers = _interned(tuple(n for n in names if _NAME.match(n))[:MAX_BALANCERS])
    return balancer, balancers


_INTERNED: dict[tuple[str, ...], tuple[str, ...]] = {}


def _interned(names: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple per distinct list: every connection's meta points at the same one."""
    if len(_INTERNED) > 64:
        _INTERNED.clear()
    return _INTERNED.setdefault(names, names)


def load_of(hub: Hub, gateway: str, *, now: float = 0.0, settle: float = 0.0, asked: int = 0) -> Load:
    """This gateway's load; connections already moving away do not count. `asked`: how
    many it asked to move in the last `settle` seconds (before `now`, monotonic)."""
    count, arrived, per, known = 0, 0, dict[str, int](), set[str]()
    for conn in hub.connections:
        if now - conn.connected_at < settle:
            arrived += 1
        if conn.closing or conn.meta.get(META_MOVING):
            continue
        count += 1
        name = conn.meta.get(META_BALANCER)
        if name:
            per[name] = per.get(name, 0) + 1
        known.update(conn.meta.get(META_BALANCERS, ()))
    return Load(gateway, count, per, tuple(sorted(known)), arrived=arrived, asked=asked)


def choose(hub: Hub, moves: Mapping[str, int], now: float, min_age: float, rng: random.Random) -> list[Connection]:
    """The connections to move: `moves[name]` of those through balancer `name` (then any
    for ""), open for at least `min_age` seconds, not moving already."""
    eligible = [
        conn
        for conn in hub.connections
        if not conn.closing and not conn.meta.get(META_MOVING) and now - conn.connected_at >= min_age
    ]
    chosen: list[Connection] = []
    for name, count in moves.items():
        if not name:
            continue
        pool = [conn for conn in eligible if conn.meta.get(META_BALANCER) == name]
        chosen += rng.sample(pool, min(count, len(pool)))
    if moves.get(""):
        taken = set(map(id, chosen))
        pool = [conn for conn in eligible if id(conn) not in taken]
        chosen += rng.sample(pool, min(moves[""], len(pool)))
    return chosen


def hand_over(conn: Connection, handover_ms: int) -> None:
    """Ask `conn`'s client to move (make-before-break); close it after `handover_ms`."""
    conn.meta[META_MOVING] = True
    if conn.enqueue(reconnect_frame("rebalance", 0, handover_ms=handover_ms)):
        OUT_RECONNECT.inc()
        REBALANCE_MOVES.inc()
    asyncio.get_running_loop().call_later(handover_ms / 1000, conn.close, CloseCode.SERVICE_RESTART)


def _keys(prefix: str) -> tuple[str, str]:
    return f"{prefix}:rebalance:gateways", f"{prefix}:rebalance:load:"


async def exchange(client: Any, mine: Load, ttl: float) -> list[Load]:
    """Publish `mine` (expiring after `ttl` s) and read every live gateway's load."""
    zkey, load_prefix = _keys(gateway_settings().key_prefix)
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pipe.set(f"{load_prefix}{mine.gateway}", mine.to_json(), px=max(1, int(ttl * 1000)))
    pipe.zadd(zkey, {mine.gateway: now + ttl})
    pipe.zremrangebyscore(zkey, "-inf", now)
    pipe.zrange(zkey, 0, -1)
    *_, gateways = await pipe.execute()
    raws = await client.mget([f"{load_prefix}{gid}" for gid in gateways]) if gateways else []
    loads = [load for raw in raws if raw and (load := Load.from_json(raw)) is not None]
    return [load for load in loads if load.gateway != mine.gateway] + [mine]


async def withdraw(client: Any, gateway: str) -> None:
    zkey, load_prefix = _keys(gateway_settings().key_prefix)
    pipe = client.pipeline(transaction=False)
    pipe.zrem(zkey, gateway)
    pipe.delete(f"{load_prefix}{gateway}")
    await pipe.execute()


class Asked:
    """When this gateway asked how many clients to move (for `Load.asked`)."""

    def __init__(self) -> None:
        self._rounds: deque[tuple[float, int]] = deque()

    def add(self, now: float, count: int) -> None:
        if count:
            self._rounds.append((now, count))

    def since(self, start: float) -> int:
        while self._rounds and self._rounds[0][0] < start:
            self._rounds.popleft()
        return sum(count for _, count in self._rounds)


async def rebalance_once(hub: Hub, client: Any, rng: random.Random, asked: Asked | None = None) -> int:
    """One round: publish, read, move; returns how many connections were asked to move."""
    settings = gateway_settings()
    if hub.draining:
        await withdraw(client, settings.gateway_id)
        return 0
    asked = asked if asked is not None else Asked()
    now, settle = hub.clock.monotonic(), settings.rebalance_settle
    mine = load_of(hub, settings.gateway_id, now=now, settle=settle, asked=asked.since(now - settle))
    loads = await exchange(client, mine, ttl=3 * settings.rebalance_interval)
    tuning = Tuning(settings.rebalance_tolerance, settings.rebalance_min_excess, settings.rebalance_max_moves)
    moves = plan(mine, loads, tuning)
    if not moves:
        return 0
    chosen = choose(hub, moves, now, settings.rebalance_min_age, rng)
    for conn in chosen:
        hand_over(conn, settings.handover_ms)
    asked.add(now, len(chosen))
    if chosen:
        logger.info(
            "rebalance: moving %d of %d connections (%s); cluster: %s",
            len(chosen),
            mine.connections,
            dict(moves),
            {load.gateway: load.connections for load in loads},
        )
    return len(chosen)


async def rebalance_loop(hub: Hub, client: Any, rng: random.Random | None = None) -> None:
    """Every REBALANCE_INTERVAL: one round (a failure is logged once and retried)."""
    rng = rng or random.Random()
    asked = Asked()
    failing = False
    while True:
        interval = gateway_settings().rebalance_interval
        # Gateways started together do not decide in lockstep.
        await asyncio.sleep(interval * rng.uniform(0.8, 1.2))
        try:
            await rebalance_once(hub, client, rng, asked)
            failing = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not failing:
                logger.info("rebalance round failed: %s", exc)
            failing = True
