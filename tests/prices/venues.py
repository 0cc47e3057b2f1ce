"""Local WebSocket servers speaking the venues' market-data protocols, failure modes included.

Shaped exactly after ../shared/reference/streams.md: Binance combined streams (`/stream`,
SUBSCRIBE with ids, 5 inbound messages per second or a 1008 close, `serverShutdown`),
Coinbase Exchange (subscribe within 5 s, `subscriptions`, per-product `sequence`,
heartbeats, maker-side matches, errors refusing a whole subscribe), Kraken v2 (status on
connect, one ack per symbol, heartbeats, ping/pong, maintenance) and OKX v5 (per-arg
acks, text ping/pong, idle close after 30 s, 64008 notices, 60014 rate limits).

Each `FakeVenue` runs its own event loop on a thread, so async tests, sync tests and
child processes can all use it; the control methods are thread-safe. Tests drive the
market (`tick`, `trade`) and inject faults (`send_raw`, `notice`, `close_all`,
`silence`, `down`, `skip_sequence`, `set_limit`, a lifetime).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Response

PATHS = {"binance": "/stream", "coinbase": "/", "kraken": "/v2", "okx": "/ws/v5/public"}
#: Inbound messages per second each venue tolerates (reference/streams.md).
LIMITS = {"binance": 5.0, "coinbase": 10.0, "kraken": 10.0, "okx": 10.0}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


@dataclass
class Asset:
    price: float
    open24h: float
    volume: float = 1_000.0


@dataclass
class Conn:
    ws: ServerConnection
    opened: float
    number: int
    tickers: set[str] = field(default_factory=set)
    trades: set[str] = field(default_factory=set)
    received: list[str] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FakeVenue:
    def __init__(
        self,
        kind: str,
        *,
        known: Iterable[str] | None = None,
        lifetime: float | None = None,
        heartbeat: float | None = 1.0,
        limit: float | None = None,
        subscribe_deadline: float | None = 5.0,
        idle_close: float | None = 30.0,
        ticker_every: float | None = 1.0,
    ) -> None:
        assert kind in PATHS, kind
        self.kind = kind
        #: Ids the venue lists (None: every id asked for exists).
        self.known = set(known) if known is not None else None
        self.lifetime = lifetime
        self.heartbeat = heartbeat
        self.limit = limit if limit is not None else LIMITS[kind]
        self.subscribe_deadline = subscribe_deadline if kind == "coinbase" else None
        self.idle_close = idle_close if kind == "okx" else None
        #: Binance pushes `@ticker` every 1000 ms per symbol, changed or not.
        self.ticker_every = ticker_every if kind == "binance" else None
        self.market: dict[str, Asset] = {}
        self.conns: list[Conn] = []
        self.total_connections = 0
        self.refused = 0
        self.silent = False
        self.is_down = False
        self.sequences: dict[str, int] = {}
        self._skip: dict[str, int] = {}
        self._numbers = itertools.count(1)
        self.loop = asyncio.new_event_loop()
        self.server: Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"fake-{kind}", daemon=True)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeVenue:
        self._thread.start()
        self.server = self.call(self._serve())
        return self

    async def _serve(self) -> Server:
        # Binance pings every 20 s and expects pongs; the others leave pings to clients.
        return await serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            ping_interval=20 if self.kind == "binance" else None,
            compression=None,
        )

    def stop(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()

        try:
            self.call(close(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], Any]) -> Any:
        async def wrapped() -> Any:
            return fn()

        return self.call(wrapped())

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{PATHS[self.kind]}"

    # --- observation ----------------------------------------------------------------------

    def open_connections(self) -> int:
        return self.run(lambda: sum(1 for c in self.conns if c.ws.state.name == "OPEN"))

    def subscribed(self) -> set[str]:
        return self.run(lambda: set().union(*(c.tickers for c in self.conns)) if self.conns else set())

    def trade_subscribed(self) -> set[str]:
        return self.run(lambda: set().union(*(c.trades for c in self.conns)) if self.conns else set())

    def received(self) -> list[str]:
        return self.run(lambda: [m for c in self.conns for m in c.received])

    def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"fake {self.kind}: {what} never happened")

    # --- the market and faults (thread-safe) --------------------------------------------------

    def set_price(self, venue_id: str, price: float, *, change: float = 1.5, volume: float = 1_000.0) -> None:
        self.run(lambda: self.market.__setitem__(venue_id, Asset(price, price / (1 + change / 100), volume)))

    def tick(self, venue_id: str, price: float | None = None, *, time_ms: int | None = None, raw: Any = None) -> None:
        """Emit a ticker for `venue_id` to its subscribers, at `price` (which becomes the market's).

        `raw` replaces the price field as is (garbage strings, negative numbers) and
        `time_ms` the event time: such one-off frames leave the market's price alone.
        """

        def emit() -> None:
            asset = self.market.get(venue_id)
            one_off = raw is not None or time_ms is not None
            if asset is None:
                asset = Asset(price or 1.0, (price or 1.0) / 1.015)
                if not one_off:
                    self.market[venue_id] = asset
            elif price is not None and not one_off:
                asset.price = price
            stamp = time_ms if time_ms is not None else int(time.time() * 1000)
            frame = self._ticker(venue_id, asset, stamp, raw)
            self._send(venue_id, frame, trades=False)

        self.run(emit)

    def trade(
        self, venue_id: str, trade_id: int, price: float, qty: float, side: str, *, time_ms: int | None = None
    ) -> None:
        """Emit a trade; `side` is the taker's."""
        stamp = time_ms if time_ms is not None else int(time.time() * 1000)
        self.run(lambda: self._send(venue_id, self._trade(venue_id, trade_id, price, qty, side, stamp), trades=True))

    def send_raw(self, text: str, venue_id: str | None = None) -> None:
        """Send `text` as is to every connection (or those subscribed to `venue_id`)."""

        def emit() -> None:
            targets = [c.ws for c in self.conns if venue_id is None or venue_id in c.tickers]
            broadcast(targets, text)

        self.run(emit)

    def notice(self) -> None:
        """The venue's shutdown notice (Binance serverShutdown, OKX 64008, Kraken maintenance)."""
        now = int(time.time() * 1000)
        frames = {
            "binance": {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": now}},
            "okx": {
                "event": "notice",
                "code": "64008",
                "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
                "connId": "a4d3ae55",
            },
            "kraken": {
                "channel": "status",
                "type": "update",
                "data": [{"api_version": "v2", "connection_id": 1, "system": "maintenance", "version": "2.0.4"}],
            },
        }
        self.send_raw(json.dumps(frames[self.kind]))

    def close_all(self, code: int = 1000, reason: str = "") -> None:
        """Start closing every connection (without waiting: the client may share the caller's thread)."""
        self.run(lambda: [asyncio.ensure_future(c.ws.close(code, reason)) for c in list(self.conns)])

    def silence(self, on: bool = True) -> None:
        """Stop sending anything (heartbeats, tickers, pongs) without closing."""
        self.run(lambda: setattr(self, "silent", on))

    def down(self, on: bool = True) -> None:
        """Refuse new connections (HTTP 503) and close the open ones."""
        self.run(lambda: setattr(self, "is_down", on))
        if on:
            self.close_all(1001, "going away")

    def skip_sequence(self, venue_id: str, by: int) -> None:
        """The next message for `venue_id` jumps its sequence by `by` (Coinbase)."""
        self.run(lambda: self._skip.__setitem__(venue_id, by))

    def set_limit(self, per_second: float) -> None:
        self.run(lambda: setattr(self, "limit", per_second))

    # --- serving --------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Any) -> Response | None:
        if request.path.split("?")[0] != PATHS[self.kind]:
            return Response(404, "Not Found", Headers(), b"not found\n")
        if self.is_down:
            self.refused += 1
            return Response(503, "Service Unavailable", Headers(), b"down\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        conn = Conn(ws, time.monotonic(), next(self._numbers))
        self.conns.append(conn)
        self.total_connections += 1
        if self.kind == "kraken":
            await self._say(
                conn,
                {
                    "channel": "status",
                    "type": "update",
                    "data": [
                        {"api_version": "v2", "connection_id": conn.number, "system": "online", "version": "2.0.4"}
                    ],
                },
            )
        if self.lifetime is not None:
            conn.tasks.append(asyncio.create_task(self._expire(conn, self.lifetime)))
        if self.subscribe_deadline is not None:
            conn.tasks.append(asyncio.create_task(self._deadline(conn)))
        if self.idle_close is not None:
            conn.tasks.append(asyncio.create_task(self._idle(conn)))
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                conn.received.append(text)
                now = time.monotonic()
                conn.window = [t for t in conn.window if now - t < 1.0] + [now]
                if len(conn.window) > self.limit:
                    await self._rate_limited(conn)
                    break
                await self._on_message(conn, text)
        except Exception:  # a client that vanished: nothing to do
            pass
        finally:
            for task in conn.tasks:
                task.cancel()
            self.conns.remove(conn)

    async def _say(self, conn: Conn, frame: Any) -> None:
        if not self.silent:
            await conn.ws.send(frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    async def _expire(self, conn: Conn, after: float) -> None:
        await asyncio.sleep(after)
        await conn.ws.close(1000, "lifetime")

    async def _deadline(self, conn: Conn) -> None:
        assert self.subscribe_deadline is not None
        await asyncio.sleep(self.subscribe_deadline)
        if not conn.tickers:
            await conn.ws.close(1000, "no subscription")

    async def _idle(self, conn: Conn) -> None:
        assert self.idle_close is not None
        while True:
            await asyncio.sleep(self.idle_close)
            if not conn.tickers:
                await conn.ws.close(1000, "idle")
                return

    async def _rate_limited(self, conn: Conn) -> None:
        frames = {
            "coinbase": {"type": "error", "message": "rate limit exceeded", "reason": "too many messages"},
            "kraken": {
                "error": "EGeneral:Too many requests",
                "method": "subscribe",
                "success": False,
                "time_in": iso(int(time.time() * 1000)),
                "time_out": iso(int(time.time() * 1000)),
            },
            "okx": {"event": "error", "code": "60014", "msg": "Requests too frequent.", "connId": str(conn.number)},
        }
        if self.kind in frames:
            await self._say(conn, frames[self.kind])
        await conn.ws.close(1008, "too many requests")

    def _known(self, venue_id: str) -> bool:
        return self.known is None or venue_id in self.known

    async def _on_message(self, conn: Conn, text: str) -> None:
        if self.kind == "okx" and text == "ping":
            await self._say(conn, "pong")
            return
        try:
            msg = json.loads(text)
        except ValueError:
            if self.kind == "binance":
                await self._say(conn, {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"})
            return
        await getattr(self, f"_on_{self.kind}")(conn, msg)

    # Binance ----------------------------------------------------------------------------------

    async def _on_binance(self, conn: Conn, msg: dict[str, Any]) -> None:
        request = msg.get("id")
        if msg.get("method") != "SUBSCRIBE":
            await self._say(conn, {"code": 2, "msg": "Invalid request: unsupported method", "id": request})
            return
        streams = [str(s) for s in msg.get("params") or []]
        parsed = [s.split("@", 1) for s in streams]
        if any(len(p) != 2 or not self._known(p[0].upper()) for p in parsed):
            # One bad stream name fails the whole request; nothing of it is subscribed.
            await self._say(conn, {"code": 2, "msg": "Invalid request: invalid stream name", "id": request})
            return
        first = not conn.tickers
        for symbol, channel in parsed:
            (conn.tickers if channel in ("ticker", "miniTicker") else conn.trades).add(symbol.upper())
        await self._say(conn, {"result": None, "id": request})
        if first and conn.tickers and self.ticker_every:
            conn.tasks.append(asyncio.create_task(self._binance_tickers(conn)))

    async def _binance_tickers(self, conn: Conn) -> None:
        assert self.ticker_every is not None
        while True:
            await asyncio.sleep(self.ticker_every)
            for symbol in sorted(conn.tickers):
                asset = self.market.get(symbol)
                if asset is not None:
                    await self._say(conn, self._ticker(symbol, asset, int(time.time() * 1000), None))

    # Coinbase ---------------------------------------------------------------------------------

    async def _on_coinbase(self, conn: Conn, msg: dict[str, Any]) -> None:
        if msg.get("type") != "subscribe":
            await self._say(conn, {"type": "error", "message": "Failed to subscribe", "reason": "type is required"})
            return
        channels = msg.get("channels") or []
        wanted: dict[str, list[str]] = {}
        for channel in channels:
            if isinstance(channel, dict):
                wanted[channel["name"]] = list(channel.get("product_ids") or msg.get("product_ids") or [])
            else:
                wanted[str(channel)] = list(msg.get("product_ids") or [])
        for products in wanted.values():
            for product in products:
                if not self._known(product):
                    await self._say(
                        conn,
                        {
                            "type": "error",
                            "message": "Failed to subscribe",
                            "reason": f"{product} is not a valid product",
                        },
                    )
                    return
        conn.tickers.update(wanted.get("ticker", []))
        conn.trades.update(wanted.get("matches", []))
        heartbeats = wanted.get("heartbeat", [])
        await self._say(
            conn,
            {
                "type": "subscriptions",
                "channels": [
                    {"name": "ticker", "product_ids": sorted(conn.tickers)},
                    {"name": "heartbeat", "product_ids": sorted(heartbeats)},
                    {"name": "matches", "product_ids": sorted(conn.trades)},
                ],
            },
        )
        if heartbeats and self.heartbeat:
            conn.tasks.append(asyncio.create_task(self._coinbase_heartbeats(conn, heartbeats)))

    async def _coinbase_heartbeats(self, conn: Conn, products: list[str]) -> None:
        assert self.heartbeat is not None
        last_trade: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.heartbeat)
            for product in products:
                frame = {
                    "type": "heartbeat",
                    "sequence": self._next_seq(product),
                    "last_trade_id": last_trade.get(product, 0),
                    "product_id": product,
                    "time": iso(int(time.time() * 1000)),
                }
                await self._say(conn, frame)

    def _next_seq(self, venue_id: str) -> int:
        seq = self.sequences.get(venue_id, 1000) + 1 + self._skip.pop(venue_id, 0)
        self.sequences[venue_id] = seq
        return seq

    # Kraken -----------------------------------------------------------------------------------

    async def _on_kraken(self, conn: Conn, msg: dict[str, Any]) -> None:
        now = iso(int(time.time() * 1000))
        method = msg.get("method")
        if method == "ping":
            await self._say(conn, {"method": "pong", "req_id": msg.get("req_id"), "time_in": now, "time_out": now})
            return
        if method != "subscribe":
            await self._say(
                conn,
                {
                    "error": f"Unsupported method {method}",
                    "method": str(method),
                    "success": False,
                    "time_in": now,
                    "time_out": now,
                },
            )
            return
        params = msg.get("params") or {}
        channel = params.get("channel")
        first = not conn.tickers and not conn.trades
        for symbol in params.get("symbol") or []:
            if not self._known(symbol):
                await self._say(
                    conn,
                    {
                        "error": f"Currency pair not supported {symbol}",
                        "method": "subscribe",
                        "success": False,
                        "symbol": symbol,
                        "req_id": msg.get("req_id"),
                        "time_in": now,
                        "time_out": now,
                    },
                )
                continue
            (conn.tickers if channel == "ticker" else conn.trades).add(symbol)
            await self._say(
                conn,
                {
                    "method": "subscribe",
                    "req_id": msg.get("req_id"),
                    "success": True,
                    "result": {"channel": channel, "snapshot": channel == "ticker", "symbol": symbol},
                    "time_in": now,
                    "time_out": now,
                },
            )
            if channel == "ticker" and symbol in self.market:
                await self._say(
                    conn, self._ticker(symbol, self.market[symbol], int(time.time() * 1000), None, kind="snapshot")
                )
        if first and (conn.tickers or conn.trades) and self.heartbeat:
            conn.tasks.append(asyncio.create_task(self._kraken_heartbeats(conn)))

    async def _kraken_heartbeats(self, conn: Conn) -> None:
        assert self.heartbeat is not None
        while True:
            await asyncio.sleep(self.heartbeat)
            await self._say(conn, {"channel": "heartbeat"})

    # OKX --------------------------------------------------------------------------------------

    async def _on_okx(self, conn: Conn, msg: dict[str, Any]) -> None:
        if msg.get("op") != "subscribe":
            await self._say(
                conn,
                {
                    "event": "error",
                    "code": "60012",
                    "msg": f"Invalid request: {json.dumps(msg)[:80]}",
                    "connId": str(conn.number),
                },
            )
            return
        for arg in msg.get("args") or []:
            channel, inst = arg.get("channel"), arg.get("instId")
            if not self._known(inst):
                await self._say(
                    conn,
                    {
                        "event": "error",
                        "code": "60018",
                        "msg": f"Wrong URL or channel:{channel},instId:{inst} doesn't exist.",
                        "connId": str(conn.number),
                    },
                )
                continue
            (conn.tickers if channel == "tickers" else conn.trades).add(inst)
            await self._say(
                conn, {"event": "subscribe", "arg": {"channel": channel, "instId": inst}, "connId": str(conn.number)}
            )

    # Frames -----------------------------------------------------------------------------------

    def _send(self, venue_id: str, frame: Any, *, trades: bool) -> None:
        if self.silent:
            return
        targets = [c.ws for c in self.conns if venue_id in (c.trades if trades else c.tickers)]
        broadcast(targets, frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    def _ticker(self, venue_id: str, a: Asset, stamp: int, raw: Any, kind: str = "update") -> Any:
        price: Any = a.price
        if self.kind == "binance":
            shown = raw if raw is not None else f"{price:.8f}"
            return {
                "stream": f"{venue_id.lower()}@ticker",
                "data": {
                    "e": "24hrTicker",
                    "E": stamp,
                    "s": venue_id,
                    "p": f"{a.price - a.open24h:.8f}",
                    "P": f"{(a.price / a.open24h - 1) * 100:.3f}",
                    "w": f"{a.price:.8f}",
                    "x": f"{a.open24h:.8f}",
                    "c": shown,
                    "Q": "0.1",
                    "b": f"{a.price * 0.9999:.8f}",
                    "B": "1",
                    "a": f"{a.price * 1.0001:.8f}",
                    "A": "1",
                    "o": f"{a.open24h:.8f}",
                    "h": f"{a.price * 1.01:.8f}",
                    "l": f"{a.price * 0.99:.8f}",
                    "v": f"{a.volume:.8f}",
                    "q": f"{a.volume * a.price:.8f}",
                    "O": stamp - 86_400_000,
                    "C": stamp,
                    "F": 0,
                    "L": 18150,
                    "n": 18151,
                },
            }
        if self.kind == "coinbase":
            return {
                "type": "ticker",
                "sequence": self._next_seq(venue_id),
                "product_id": venue_id,
                "price": raw if raw is not None else f"{price:.8f}",
                "open_24h": f"{a.open24h:.8f}",
                "volume_24h": f"{a.volume:.8f}",
                "low_24h": f"{a.price * 0.99:.8f}",
                "high_24h": f"{a.price * 1.01:.8f}",
                "volume_30d": f"{a.volume * 30:.8f}",
                "best_bid": f"{a.price * 0.9999:.8f}",
                "best_bid_size": "0.5",
                "best_ask": f"{a.price * 1.0001:.8f}",
                "best_ask_size": "1.5",
                "side": "buy",
                "time": iso(stamp),
                "trade_id": 370843401,
                "last_size": "0.01",
            }
        if self.kind == "kraken":
            return {
                "channel": "ticker",
                "type": kind,
                "data": [
                    {
                        "symbol": venue_id,
                        "bid": a.price * 0.9999,
                        "bid_qty": 740.0,
                        "ask": a.price * 1.0001,
                        "ask_qty": 740.0,
                        "last": raw if raw is not None else price,
                        "volume": a.volume,
                        "vwap": a.price,
                        "low": a.price * 0.99,
                        "high": a.price * 1.01,
                        "change": a.price - a.open24h,
                        "change_pct": round((a.price / a.open24h - 1) * 100, 2),
                        "timestamp": iso(stamp),
                    }
                ],
            }
        return {
            "arg": {"channel": "tickers", "instId": venue_id},
            "data": [
                {
                    "instType": "SPOT",
                    "instId": venue_id,
                    "last": raw if raw is not None else f"{price:.8f}",
                    "lastSz": "0.1",
                    "askPx": f"{a.price * 1.0001:.8f}",
                    "askSz": "11",
                    "bidPx": f"{a.price * 0.9999:.8f}",
                    "bidSz": "5",
                    "open24h": f"{a.open24h:.8f}",
                    "high24h": f"{a.price * 1.01:.8f}",
                    "low24h": f"{a.price * 0.99:.8f}",
                    "volCcy24h": f"{a.volume * a.price:.8f}",
                    "vol24h": f"{a.volume:.8f}",
                    "sodUtc0": f"{a.open24h:.8f}",
                    "sodUtc8": f"{a.open24h:.8f}",
                    "ts": str(stamp),
                }
            ],
        }

    def _trade(self, venue_id: str, trade_id: int, price: float, qty: float, side: str, stamp: int) -> Any:
        if self.kind == "binance":
            return {
                "stream": f"{venue_id.lower()}@aggTrade",
                "data": {
                    "e": "aggTrade",
                    "E": stamp,
                    "s": venue_id,
                    "a": trade_id,
                    "p": f"{price:.8f}",
                    "q": f"{qty:.8f}",
                    "f": trade_id * 10,
                    "l": trade_id * 10 + 2,
                    "T": stamp,
                    "m": side == "sell",
                    "M": True,
                },
            }
        if self.kind == "coinbase":
            maker = "sell" if side == "buy" else "buy"  # `side` on the wire is the maker's
            return {
                "type": "match",
                "trade_id": trade_id,
                "sequence": self._next_seq(venue_id),
                "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
                "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
                "time": iso(stamp),
                "product_id": venue_id,
                "size": f"{qty:.8f}",
                "price": f"{price:.8f}",
                "side": maker,
            }
        if self.kind == "kraken":
            return {
                "channel": "trade",
                "type": "update",
                "data": [
                    {
                        "symbol": venue_id,
                        "side": side,
                        "price": price,
                        "qty": qty,
                        "ord_type": "market",
                        "trade_id": trade_id,
                        "timestamp": iso(stamp),
                    }
                ],
            }
        return {
            "arg": {"channel": "trades", "instId": venue_id},
            "data": [
                {
                    "instId": venue_id,
                    "tradeId": str(trade_id),
                    "px": f"{price:.8f}",
                    "sz": f"{qty:.8f}",
                    "side": side,
                    "ts": str(stamp),
                    "count": "1",
                    "source": "0",
                    "seqId": trade_id,
                }
            ],
        }
