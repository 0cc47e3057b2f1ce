"""Rebalancing (realtime_project/gateway/rebalance.py): a gateway with more than its share
of connections asks clients to move with a make-before-break handover.

The plan is pure and tested on numbers; the whole path runs on two real uvicorn gateways
on a real Redis, with clients that move the way the browser client does (open the new
socket, resubscribe with `since`, then close the old one) and one that ignores handovers.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets

from realtime_project.gateway.api import publish
from realtime_project.gateway.rebalance import Load, Tuning, balancer_of, plan

TUNING = Tuning(tolerance=0.1, min_excess=20, max_moves=100)


def load(gateway: str, connections: int, **balancers: int) -> Load:
    return Load(gateway, connections, balancers, known=tuple(sorted(balancers)))


# --- the plan ------------------------------------------------------------------------------


def test_a_balanced_cluster_moves_nothing() -> None:
    a, b = load("a", 510, lb1=255, lb2=255), load("b", 490, lb1=245, lb2=245)
    assert plan(a, [a, b], TUNING) == {} and plan(b, [a, b], TUNING) == {}


def test_a_restarted_gateway_gets_half_the_excess_per_round_within_the_cap() -> None:
    survivor, restarted = load("a", 1000), load("b", 0)
    assert plan(survivor, [survivor, restarted], TUNING) == {"": 100}  # 250 wanted, capped
    assert plan(survivor, [survivor, restarted], Tuning(max_moves=1000)) == {"": 250}
    assert plan(restarted, [survivor, restarted], TUNING) == {}  # the emptier one never moves anyone
    assert plan(survivor, [survivor], TUNING) == {}  # alone: nowhere to go


def test_a_small_excess_is_left_alone() -> None:
    a, b = load("a", 530), load("b", 470)  # 30 over a share of 500: under 10 %
    assert plan(a, [a, b], TUNING) == {}
    a, b = load("a", 30), load("b", 0)  # 15 over a share of 15: under the 20 minimum
    assert plan(a, [a, b], TUNING) == {}


def test_a_restarted_balancer_gets_clients_back_through_both_gateways() -> None:
    # Both gateways are even, but every client came through lb1 after lb2 died: lb1 carries
    # 1000 of a 500 share. A client that moves comes back through either balancer, so the
    # fleet asks for 2 x 500 moves, each gateway its part, damped by half and capped.
    known = ("lb1", "lb2")
    a = Load("a", 500, {"lb1": 500}, known)
    b = Load("b", 500, {"lb1": 500}, known)
    assert plan(a, [a, b], Tuning(max_moves=1000)) == {"lb1": 250}
    assert plan(a, [a, b], TUNING) == {"lb1": 100}
    # A balancer nobody came through counts when a gateway's clients name it.
    assert plan(a, [a, b], Tuning(max_moves=1000)) == plan(b, [b, a], Tuning(max_moves=1000))


def test_balancer_moves_count_toward_the_gateway_excess() -> None:
    known = ("lb1", "lb2")
    a = Load("a", 900, {"lb1": 800, "lb2": 100}, known)
    b = Load("b", 100, {"lb1": 0, "lb2": 100}, known)
    moves = plan(a, [a, b], Tuning(max_moves=10_000))
    # lb1: 800 of a 500 share -> 300 excess x 2 x (800/800) / 2 = 300; gateway: 400 / 2 =
    # 200, already covered by the balancer's moves.
    assert moves == {"lb1": 300}


def test_nobody_moves_during_a_reconnection_storm() -> None:
    # gateway b died and restarted; its 500 clients just reconnected to a (arrived: 500).
    survivor, restarted = Load("a", 1000, arrived=500), Load("b", 0)
    assert plan(survivor, [survivor, restarted], TUNING) == {}
    # Once it has settled (or the arrivals are the moves the gateways asked for), it moves.
    settled = Load("a", 1000, arrived=40)
    assert plan(settled, [settled, restarted], TUNING) == {"": 100}
    asked = Load("a", 900, asked=100)
    moved_in = Load("b", 100, arrived=100)
    assert plan(asked, [asked, moved_in], TUNING) == {"": 100}
    # Arrivals under max(min_excess, tolerance x connections) are ordinary traffic.
    assert plan(Load("a", 1000, arrived=99), [Load("a", 1000, arrived=99), restarted], TUNING) == {"": 100}


def test_load_from_garbage_is_none() -> None:
    for raw in ("", "[]", "{}", '{"g": "a", "c": "x"}', '{"g": "a"}', "not json", '{"g": "a", "c": 1, "b": 3}'):
        assert Load.from_json(raw) is None, raw
    back = Load.from_json(Load("a", 3, {"lb1": 2}, ("lb1", "lb2"), arrived=4, asked=5).to_json())
    assert back == Load("a", 3, {"lb1": 2}, ("lb1", "lb2"), arrived=4, asked=5)


def test_balancer_headers_are_plain_names_or_nothing() -> None:
    ok = [(b"x-realtime-balancer", b"haproxy2"), (b"x-realtime-balancers", b"haproxy, haproxy2")]
    assert balancer_of(ok) == ("haproxy2", ("haproxy", "haproxy2"))
    assert balancer_of([]) == ("", ())
    bad = [(b"x-realtime-balancer", b"a b"), (b"x-realtime-balancers", b"ok,<script>," + b"x" * 40)]
    assert balancer_of(bad) == ("", ("ok",))
    many = [(b"x-realtime-balancers", ",".join(f"b{i}" for i in range(20)).encode())]
    assert len(balancer_of(many)[1]) == 8


# --- two real gateways ---------------------------------------------------------------------


@dataclass
class Mover:
    """A client on `prices:BTC` that honours handovers as the browser client does (or not)."""

    name: str
    honours: bool = True
    ws: Any = None
    server: str = ""
    epoch: str | None = None
    seq: int = 0
    seqs: list[int] = field(default_factory=list)
    duplicates: int = 0
    gaps: int = 0
    moves: int = 0
    closed_with: int | None = None
    handover_ms: int | None = None

    def take(self, frame: dict[str, Any]) -> None:
        if frame.get("type") != "message" or frame.get("channel") != "prices:BTC":
            return
        seq = frame["seq"]
        if frame["epoch"] == self.epoch and seq <= self.seq:
            self.duplicates += 1  # both sockets deliver during the overlap: dropped
            return
        if self.epoch is not None and (frame["epoch"] != self.epoch or seq != self.seq + 1):
            self.gaps += 1
        self.epoch, self.seq = frame["epoch"], seq
        self.seqs.append(seq)


async def open_subscribed(url: str, client: Mover) -> tuple[Any, list[dict[str, Any]]]:
    """A socket subscribed to prices:BTC (with `since` when the client has a position);
    returns it and the messages that came before the `subscribed` reply."""
    ws = await websockets.connect(url)
    assert json.loads(await ws.recv())["type"] == "welcome"
    frame: dict[str, Any] = {"type": "subscribe", "id": 1, "channel": "prices:BTC"}
    if client.epoch is not None:
        frame["since"] = {"epoch": client.epoch, "seq": client.seq}
    await ws.send(json.dumps(frame))
    early: list[dict[str, Any]] = []
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply["type"] == "subscribed":
            if client.epoch is None:
                client.epoch, client.seq = reply["epoch"], reply["seq"]
            else:
                assert reply["recovered"] is True, reply
            return ws, early
        early.append(reply)


async def follow(client: Mover, other_url: dict[str, str], stop: asyncio.Event) -> None:
    """Read the client's socket; on a handover, move to the other gateway make-before-break:
    the old socket is read on while the new one opens and resubscribes with `since`."""
    moving: asyncio.Task[tuple[Any, list[dict[str, Any]]]] | None = None
    while not stop.is_set():
        if moving is not None and moving.done():
            new, early = moving.result()
            for early_frame in early:
                client.take(early_frame)
            old, moving = client.ws, None
            client.ws, client.server, client.moves = new, other_url[client.server], client.moves + 1
            await old.close()
        try:
            raw = await asyncio.wait_for(client.ws.recv(), 0.05)
        except TimeoutError:
            continue
        except websockets.ConnectionClosed as exc:
            client.closed_with = exc.rcvd.code if exc.rcvd is not None else None
            return
        frame = json.loads(raw)
        if frame["type"] == "ping":
            await client.ws.send(json.dumps({"type": "pong", "id": frame["id"]}))
        elif frame["type"] == "reconnect" and frame.get("handover_ms"):
            assert frame["reason"] == "rebalance" and frame["after_ms"] == 0, frame
            client.handover_ms = frame["handover_ms"]
            if client.honours and moving is None:
                moving = asyncio.create_task(open_subscribed(other_url[client.server], client))
        else:
            client.take(frame)


ENV = {
    "REALTIME_REBALANCE_INTERVAL": "0.3",
    "REALTIME_REBALANCE_MIN_EXCESS": "2",
    "REALTIME_REBALANCE_MIN_AGE": "0",
    "REALTIME_REBALANCE_SETTLE": "0.5",
    "REALTIME_HANDOVER_MS": "3000",
}


async def two_gateways(factory: Any, redis_url: str, key_prefix: str) -> tuple[Any, Any]:
    return tuple(factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix, extra=ENV) for _ in "ab")  # type: ignore[return-value]


async def all_on(url: str, clients: list[Mover]) -> list[Mover]:
    """Every client on one gateway, as after the other was killed and restarted."""
    for client in clients:
        client.ws, _ = await open_subscribed(url, client)
        client.server = url
    return clients


async def run(clients: list[Mover], urls: dict[str, str], until: Any, seconds: float = 15) -> int:
    """Publish on prices:BTC every 20 ms while the clients follow, until `until()` or the
    time is up, then ten more; returns how many were published."""
    stop = asyncio.Event()
    readers = [asyncio.create_task(follow(client, urls, stop)) for client in clients]
    published = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        await asyncio.to_thread(publish, "prices:BTC", {"i": published})
        published += 1
        await asyncio.sleep(0.02)
    for _ in range(10):
        await asyncio.to_thread(publish, "prices:BTC", {"i": published})
        published += 1
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*readers)
    return published


@pytest.mark.django_db(transaction=True)
async def test_clients_move_to_a_new_gateway_without_losing_or_repeating_a_message(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    a, b = await two_gateways(live_server_factory, redis_url, key_prefix)
    clients = await all_on(a.ws_url, [Mover(f"c{i}") for i in range(20)])

    def settled() -> bool:
        return sum(c.server == b.ws_url for c in clients) >= 8

    published = await run(clients, {a.ws_url: b.ws_url, b.ws_url: a.ws_url}, settled)
    on_b = sum(c.server == b.ws_url for c in clients)
    # a had 20 of 20: it moves clients until it is within the tolerance of its share (10).
    assert 8 <= on_b <= 12, [(c.name, c.moves) for c in clients]
    assert all(c.moves <= 1 for c in clients)  # each asked once, never bounced back
    # Every client, moved or not, got every publication exactly once, in order.
    for client in clients:
        assert (client.gaps, client.seqs) == (0, list(range(1, published + 1))), client.name
    moved = [c for c in clients if c.moves]
    assert any(c.duplicates for c in moved)  # the overlap is real: both sockets delivered
    assert all(c.closed_with is None for c in clients)  # no socket closed under a client
    for client in clients:
        await client.ws.close()


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_ignores_the_handover_keeps_its_socket_until_handover_ms(
    live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str
) -> None:
    a, b = await two_gateways(live_server_factory, redis_url, key_prefix)
    clients = await all_on(a.ws_url, [Mover(f"s{i}", honours=False) for i in range(6)])
    asked_at: dict[str, float] = {}

    def one_closed() -> bool:
        for c in clients:
            if c.handover_ms is not None:
                asked_at.setdefault(c.name, time.monotonic())
        return any(c.closed_with is not None for c in clients)

    published = await run(clients, {a.ws_url: b.ws_url, b.ws_url: a.ws_url}, one_closed)
    closed = [c for c in clients if c.closed_with is not None]
    assert closed and all(c.closed_with == 1012 and c.handover_ms == 3000 for c in closed)
    assert all(c.name in asked_at for c in closed)
    for client in clients:  # messages kept flowing on every socket until it was closed
        assert client.gaps == 0 and client.seqs == list(range(1, len(client.seqs) + 1))
        if client.closed_with is None:
            assert len(client.seqs) == published
            await client.ws.close()
        else:
            assert len(client.seqs) >= 3000 / 20 * 0.5  # ~3 s of 50/s publications after the ask
