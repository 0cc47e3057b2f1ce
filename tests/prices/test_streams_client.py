"""Stream adapters against local fake venues speaking each protocol, failure modes included.

Every bad-input case of issue #11 at the connection level: lifetime close, rotation
before it without a gap, shutdown notices, silent stalls, one unknown symbol, rate
limits with a disconnect, malformed JSON, garbage numbers, negative and zero prices,
far future and past timestamps, duplicate and out-of-order trade ids, sequence gaps.
None stops the stream; each shows in its health.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from prices.conf import prices_settings
from prices.live import LivePrices
from prices.streams.binance import BinanceProtocol
from prices.streams.client import StreamSettings, VenueStream
from prices.streams.registry import protocol_for
from realtime_project.clock import SYSTEM_CLOCK, Clock
from tests.support.clock import FakeClock

from .streamkit import RecordingSink, until
from .venues import FakeVenue

VENUES = ["binance", "coinbase", "kraken", "okx"]
IDS = {
    "binance": {"BTCUSDT": "BTC", "ETHUSDT": "ETH"},
    "coinbase": {"BTC-USD": "BTC", "ETH-USD": "ETH"},
    "kraken": {"BTC/USD": "BTC", "ETH/USD": "ETH"},
    "okx": {"BTC-USDT": "BTC", "ETH-USDT": "ETH"},
}
#: Quick reconnects: tests wait for outcomes, never for durations.
FAST = StreamSettings(backoff_base=0.05, backoff_cap=0.2, rate_limit_wait=0.2, ack_timeout=5.0, connect_timeout=5.0)


def btc(kind: str) -> str:
    return next(v for v, s in IDS[kind].items() if s == "BTC")


def eth(kind: str) -> str:
    return next(v for v, s in IDS[kind].items() if s == "ETH")


@pytest.fixture
def venue(request: pytest.FixtureRequest) -> Iterator[FakeVenue]:
    kind, options = request.param if isinstance(request.param, tuple) else (request.param, {})
    fake = FakeVenue(kind, **options).start()
    for venue_id in IDS[kind]:
        fake.set_price(venue_id, 50.0)  # a listed market (Binance pushes its ticker every second)
    yield fake
    fake.stop()


@contextlib.asynccontextmanager
async def streaming(
    fake: FakeVenue,
    sink: Any,
    *,
    ids: dict[str, str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    settings: StreamSettings = FAST,
    protocol: Any = None,
    trades: bool = True,
) -> AsyncIterator[VenueStream]:
    ids = ids or IDS[fake.kind]
    stream = VenueStream(
        source=fake.kind,
        protocol=protocol or protocol_for(fake.kind, trade_ids=list(ids) if trades else []),
        url=fake.url,
        ids=ids,
        sink=sink,
        settings=settings,
        clock=clock,
    )
    task = asyncio.create_task(stream.run())
    try:
        yield stream
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def live_prices() -> LivePrices:
    published: list[Any] = []

    async def publish(updates: list[dict[str, Any]], timestamp: int) -> None:
        published.append(updates)

    live = LivePrices(conf=prices_settings(), symbol_ids={"BTC": 1, "ETH": 2}, publish=publish, emit=lambda e: None)
    for kind in VENUES:
        live.add_source(kind)
    return live


@pytest.mark.parametrize("venue", VENUES, indirect=True)
async def test_each_venue_streams_ticks_and_trades_with_the_taker_side(venue: FakeVenue) -> None:
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(stream.live, "subscribed and live")
        assert venue.subscribed() == set(IDS[venue.kind])
        venue.tick(btc(venue.kind), 97_012.5)
        venue.tick(eth(venue.kind), 3_500.25)
        await until(lambda: 97_012.5 in sink.prices("BTC") and 3_500.25 in sink.prices("ETH"), "two ticks")
        await until(lambda: btc(venue.kind) in venue.trade_subscribed(), "trades subscribed")
        venue.trade(btc(venue.kind), 41, 97_010.0, 0.25, "sell")
        venue.trade(btc(venue.kind), 42, 97_011.0, 0.5, "buy")
        await until(lambda: len(sink.trades) == 2, "two trades")
        assert [(t.trade_id, t.side, t.qty) for _, _, t in sink.trades] == [(41, "sell", 0.25), (42, "buy", 0.5)]
        health = stream.health()
        assert health["ok"] and health["connected"] and health["subscribed"] == 2 and health["errors"] == {}


@pytest.mark.parametrize("venue", [(k, {"known": None}) for k in VENUES], indirect=True)
async def test_an_unknown_symbol_is_refused_and_the_others_keep_streaming(venue: FakeVenue) -> None:
    venue.known = {btc(venue.kind)}  # the venue does not list ETH
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(lambda: stream.health()["unknown_symbols"] == [eth(venue.kind)], "ETH refused")
        await until(stream.live, "BTC live")  # live means: every id the venue lists is streaming
        venue.tick(btc(venue.kind), 97_000.0)
        await until(lambda: sink.prices("BTC"), "BTC still streams")
        assert stream.health()["errors"]["unknown_symbol"] == 1
        assert venue.subscribed() == {btc(venue.kind)}


@pytest.mark.parametrize("venue", VENUES, indirect=True)
async def test_malformed_json_and_garbage_numbers_are_counted_and_skipped(venue: FakeVenue) -> None:
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(stream.live, "live")
        venue.send_raw("{this is not json", btc(venue.kind))
        venue.tick(btc(venue.kind), 1.0, raw="12.3.4abc")
        venue.send_raw('{"surprise": [1, 2, 3]}' if venue.kind != "coinbase" else '{"type": "ticker", "price": "1"}')
        venue.tick(btc(venue.kind), 97_000.0)
        await until(lambda: 97_000.0 in sink.prices("BTC"), "the good tick after the garbage")
        errors = stream.health()["errors"]
        assert errors.get("malformed_json", 0) == 1 and errors.get("malformed", 0) >= 1, errors
        assert stream.health()["connected"] and venue.total_connections == 1  # no reconnect for bad frames


@pytest.mark.parametrize("venue", VENUES, indirect=True)
async def test_bad_prices_and_timestamps_never_reach_the_aggregate(venue: FakeVenue) -> None:
    live = live_prices()
    now_ms = int(time.time() * 1000)
    async with streaming(venue, live) as stream:
        await until(stream.live, "live")
        venue.tick(btc(venue.kind), 97_000.0)
        await until(lambda: live.aggregator.get_price("BTC") is not None, "a good price")
        venue.tick(btc(venue.kind), 1.0, raw=-5 if venue.kind == "kraken" else "-5")
        venue.tick(btc(venue.kind), 1.0, raw=0 if venue.kind == "kraken" else "0")
        venue.tick(btc(venue.kind), 1.0, time_ms=now_ms + 3_600_000)  # an hour ahead
        venue.tick(btc(venue.kind), 2.0, time_ms=now_ms - 30 * 86_400_000)  # a month old
        await until(lambda: sum(stream.health()["errors"].values()) >= 4, "four rejections")
        errors = stream.health()["errors"]
        assert errors == {"invalid_price": 2, "future_timestamp": 1, "old_timestamp": 1}, errors
        price = live.aggregator.get_price("BTC")
        assert price is not None and price.price == 97_000.0
        assert dict(live.rejected[venue.kind]) == errors  # also counted in the source's health


@pytest.mark.parametrize("venue", VENUES, indirect=True)
async def test_duplicate_and_out_of_order_trade_ids_are_dropped(venue: FakeVenue) -> None:
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(lambda: stream.live() and btc(venue.kind) in venue.trade_subscribed(), "trades subscribed")
        for trade_id in (5, 6, 6, 4, 7):
            venue.trade(btc(venue.kind), trade_id, 100.0 + trade_id, 1.0, "buy")
        await until(lambda: [t.trade_id for _, _, t in sink.trades] == [5, 6, 7], "trades 5, 6, 7")
        health = stream.health()
        assert health["errors"] == {"out_of_order_trade": 1} and stream.counts["duplicate_trades"] == 1


@pytest.mark.parametrize("venue", VENUES, indirect=True)
async def test_a_jump_in_trade_ids_is_counted_where_they_are_consecutive(venue: FakeVenue) -> None:
    """Kraken's trade_id is the book's sequence, Coinbase's and Binance's aggregate trade ids
    are consecutive per product: a jump means trades were missed (used, counted). OKX's
    tradeId is the last fill of a merged order: its jumps are normal."""
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(lambda: stream.live() and btc(venue.kind) in venue.trade_subscribed(), "trades subscribed")
        for trade_id in (5, 6, 9, 10):
            venue.trade(btc(venue.kind), trade_id, 100.0 + trade_id, 1.0, "buy")
        await until(lambda: [t.trade_id for _, _, t in sink.trades] == [5, 6, 9, 10], "every trade, the gap's too")
        expected = 0 if venue.kind == "okx" else 1
        assert stream.health()["trade_gaps"] == expected
        assert stream.health()["errors"] == ({"trade_gap": 1} if expected else {})
        # After a reconnect, what was missed while away is not counted as a gap.
        venue.close_all(1011, "internal error")
        await until(lambda: venue.total_connections == 2 and stream.live(), "reconnected")
        await until(lambda: btc(venue.kind) in venue.trade_subscribed(), "trades subscribed again")
        venue.trade(btc(venue.kind), 20, 120.0, 1.0, "sell")
        await until(lambda: sink.trades[-1][2].trade_id == 20, "the trade after the reconnect")
        assert stream.health()["trade_gaps"] == expected


@pytest.mark.parametrize("venue", ["coinbase"], indirect=True)
async def test_a_coinbase_sequence_gap_is_detected(venue: FakeVenue) -> None:
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(stream.live, "live")
        venue.tick("BTC-USD", 100.0)
        venue.skip_sequence("BTC-USD", 3)  # three messages lost upstream
        venue.tick("BTC-USD", 101.0)
        await until(lambda: sink.prices("BTC")[-2:] == [100.0, 101.0], "both ticks (the second after the gap)")
        health = stream.health()
        assert health["sequence_gaps"] == 1 and health["errors"]["sequence_gap"] == 1


@pytest.mark.parametrize("venue", ["binance", "okx"], indirect=True)
async def test_a_shutdown_notice_replaces_the_connection_at_once(venue: FakeVenue) -> None:
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(stream.live, "live")
        venue.notice()
        await until(lambda: stream.counts["shutdown_notices"] == 1 and venue.total_connections == 2, "a new connection")
        await until(lambda: venue.open_connections() == 1 and stream.live(), "the old one closed, the new one live")
        venue.tick(btc(venue.kind), 99.0)
        await until(lambda: 99.0 in sink.prices("BTC"), "ticks on the new connection")
        assert stream.counts["reconnects"] == 1, (dict(stream.counts), stream.health(), venue.total_connections)


@pytest.mark.parametrize("venue", ["kraken"], indirect=True)
async def test_kraken_maintenance_reconnects_after_its_delay(venue: FakeVenue) -> None:
    clock = FakeClock(wall=time.time())
    sink = RecordingSink()
    async with streaming(venue, sink, clock=clock) as stream:
        await until(stream.live, "live")
        venue.notice()  # status: maintenance
        await until(lambda: venue.open_connections() == 0, "the client left")
        assert venue.total_connections == 1  # and waits (reference: ≥ 5 s after maintenance)
        await clock.run_for(5.0)
        await until(lambda: venue.total_connections == 2 and stream.live(), "back after the delay")


@pytest.mark.parametrize("venue", [("binance", {"lifetime": 1.0})], indirect=True)
async def test_a_venue_closing_at_its_lifetime_limit_is_reconnected(venue: FakeVenue) -> None:
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(lambda: venue.total_connections >= 2, "the venue closed the first connection")
        await until(stream.live, "live again")
        venue.tick("BTCUSDT", 123.0)
        await until(lambda: 123.0 in sink.prices("BTC"), "streaming after the reconnect")
        assert stream.counts["reconnects"] >= 1


@pytest.mark.parametrize("venue", ["binance"], indirect=True)
async def test_rotation_before_the_lifetime_limit_loses_no_update(venue: FakeVenue) -> None:
    clock = FakeClock(wall=time.time())
    protocol = BinanceProtocol()
    protocol.lifetime = 100.0  # the venue's 24 h, shortened
    settings = StreamSettings(**{**FAST.__dict__, "rotate_margin": 10.0})
    sink = RecordingSink()
    emitted: list[float] = []
    stop = threading.Event()

    def emit() -> None:
        n = 0
        while not stop.is_set():
            price = 100.0 + n / 100
            venue.tick("BTCUSDT", price)
            emitted.append(price)
            n += 1
            time.sleep(0.002)

    async with streaming(venue, sink, clock=clock, settings=settings, protocol=protocol) as stream:
        await until(stream.live, "live")
        emitter = threading.Thread(target=emit)
        emitter.start()
        try:
            await until(lambda: len(sink.ticks) > 20, "ticks flowing")
            await clock.run_for(91.0)  # past lifetime - margin
            await until(lambda: stream.counts["rotations"] == 1, "a rotation")
            await until(lambda: venue.open_connections() == 1, "the old connection closed")
            seen = len(sink.ticks)
            await until(lambda: len(sink.ticks) > seen + 20, "ticks on the new connection")
        finally:
            stop.set()
            await asyncio.to_thread(emitter.join)
        await until(lambda: emitted and emitted[-1] in sink.prices("BTC"), "the last tick")
        missing = set(emitted) - set(sink.prices("BTC"))
        assert not missing, f"{len(missing)} updates fell into the gap"
        assert venue.total_connections == 2 and stream.counts["reconnects"] == 0


@pytest.mark.parametrize("venue", VENUES, indirect=True)
async def test_a_silent_stall_is_detected_and_reconnected(venue: FakeVenue) -> None:
    clock = FakeClock(wall=time.time())
    sink = RecordingSink()
    async with streaming(venue, sink, clock=clock) as stream:
        await until(stream.live, "live")
        venue.silence(True)
        # Its quotes stop counting after two cadences of silence...
        took = await clock.step_until(lambda: not stream.live(), "not live")
        # (simulated seconds, in steps of 0.25: one more for a heartbeat already on its way)
        assert took <= 2 * stream.protocol.cadence + FAST.live_grace + 2 * 0.25, took
        # ... and the connection is replaced once the venue's stall limit passes.
        await clock.step_until(lambda: stream.counts["stalls"] == 1, "a stall")
        venue.silence(False)
        await clock.step_until(lambda: venue.total_connections == 2 and stream.live(), "reconnected")
        assert stream.health()["errors"]["stall"] == 1


@pytest.mark.parametrize("venue", VENUES, indirect=True)
async def test_rate_limited_subscriptions_slow_down_and_reconnect(venue: FakeVenue) -> None:
    protocol = protocol_for(venue.kind)
    protocol.ids_per_message = 1  # two subscribe messages, back to back
    venue.set_limit(1.0)  # the venue tolerates one message per second
    sink = RecordingSink()
    async with streaming(venue, sink, protocol=protocol, trades=False) as stream:
        await until(lambda: stream.counts["rate_limited"] >= 1, "a rate-limit disconnect")
        await until(stream.live, "subscribed at a slower pace", timeout=30)
        assert stream.pace < protocol.messages_per_second
        assert stream.health()["errors"]["rate_limited"] >= 1


@pytest.mark.parametrize("venue", VENUES, indirect=True)
async def test_a_dropped_connection_reconnects_and_resubscribes(venue: FakeVenue) -> None:
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(stream.live, "live")
        venue.close_all(1011, "internal error")
        await until(lambda: venue.total_connections == 2 and stream.live(), "reconnected")
        venue.tick(btc(venue.kind), 42.0)
        await until(lambda: 42.0 in sink.prices("BTC"), "resubscribed")
        assert stream.counts["reconnects"] == 1


@pytest.mark.parametrize("venue", ["binance"], indirect=True)
async def test_a_venue_that_is_down_is_retried_with_backoff(venue: FakeVenue) -> None:
    venue.down(True)
    sink = RecordingSink()
    async with streaming(venue, sink) as stream:
        await until(lambda: stream.health()["errors"].get("connect_failed", 0) >= 3, "three refused attempts")
        assert not stream.live() and venue.refused >= 3
        venue.down(False)
        await until(stream.live, "connected once the venue is back")


async def test_closing_a_connection_never_swallows_the_callers_cancellation() -> None:
    """Stopping the feed cancels the link while it closes a connection and waits for that
    connection's reader: the cancellation must reach the link, or it reconnects forever
    and the stop hangs (seen under load: a test's teardown waited for its stream 2 min)."""
    from types import SimpleNamespace

    from prices.streams.client import _Connection, _Link

    class Socket:
        async def close(self, code: int, reason: str) -> None:
            return None

    async def reader_that_finishes_its_work_when_cancelled() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)

    link = _Link(SimpleNamespace(liveness_changed=lambda: None), [], 0)  # type: ignore[arg-type]
    conn = _Connection(Socket(), 0.0, 1, None)  # type: ignore[arg-type]
    conn.reader = asyncio.create_task(reader_that_finishes_its_work_when_cancelled())
    closing = asyncio.create_task(link._close(conn, "stopped"))
    await asyncio.sleep(0.05)  # the reader is cancelled and finishing
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await asyncio.wait({conn.reader})
    assert conn.closed == "stopped"
