"""The venues' stream protocols, pure: subscribe frames and parsing of every frame kind
(shapes from ../shared/reference/streams.md), bad input as counted problems."""

from __future__ import annotations

import json

import pytest

from prices.streams.binance import BinanceProtocol
from prices.streams.coinbase import CoinbaseProtocol
from prices.streams.events import (
    Acked,
    Liveness,
    Problem,
    RateLimited,
    Rejected,
    RequestFailed,
    Shutdown,
    Tick,
    TradeEvent,
)
from prices.streams.kraken import KrakenProtocol
from prices.streams.okx import OKXProtocol
from prices.streams.order import SequenceBook, TradeIds


def frame(obj: object) -> str:
    return json.dumps(obj)


# --- Binance ------------------------------------------------------------------------------


def test_binance_subscribes_tickers_and_trades_in_one_numbered_request() -> None:
    proto = BinanceProtocol(trade_ids=["BTCUSDT"])
    [text] = proto.subscribe(["BTCUSDT", "ETHUSDT"], 7)
    assert json.loads(text) == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@ticker", "btcusdt@aggTrade", "ethusdt@ticker"],
        "id": 7,
    }
    assert proto.ws_ping_interval is None and proto.lifetime == 24 * 3600  # the server pings; 24 h limit


def test_binance_parses_ticker_trades_acks_errors_and_shutdown() -> None:
    proto = BinanceProtocol()
    ticker = {
        "e": "24hrTicker",
        "E": 1672515782136,
        "s": "BNBBTC",
        "p": "0.0015",
        "P": "250.00",
        "w": "0.0018",
        "x": "0.0009",
        "c": "0.0025",
        "Q": "10",
        "b": "0.0024",
        "B": "10",
        "a": "0.0026",
        "A": "100",
        "o": "0.0010",
        "h": "0.0025",
        "l": "0.0010",
        "v": "10000",
        "q": "18",
        "O": 0,
        "C": 86400000,
        "F": 0,
        "L": 18150,
        "n": 18151,
    }
    assert proto.parse(frame({"stream": "bnbbtc@ticker", "data": ticker})) == [
        Tick("BNBBTC", 0.0025, 1672515782136, 250.0, 18.0)
    ]
    mini = {
        "e": "24hrMiniTicker",
        "E": 1672515782136,
        "s": "BNBBTC",
        "c": "0.0025",
        "o": "0.0010",
        "h": "0.0025",
        "l": "0.0010",
        "v": "10000",
        "q": "18",
    }
    [tick] = proto.parse(frame({"stream": "bnbbtc@miniTicker", "data": mini}))
    assert isinstance(tick, Tick) and tick.change24h == pytest.approx(150.0)
    agg = {
        "e": "aggTrade",
        "E": 1672515782136,
        "s": "BNBBTC",
        "a": 12345,
        "p": "0.001",
        "q": "100",
        "f": 100,
        "l": 105,
        "T": 1672515782136,
        "m": True,
        "M": True,
    }
    assert proto.parse(frame({"stream": "bnbbtc@aggTrade", "data": agg})) == [
        TradeEvent("BNBBTC", 12345, 0.001, 100.0, "sell", 1672515782136)  # buyer is maker: the taker sold
    ]
    raw = {"e": "trade", "E": 1, "s": "BNBBTC", "t": 9, "p": "0.001", "q": "1", "T": 1672515782136, "m": False}
    assert proto.parse(frame({"stream": "bnbbtc@trade", "data": raw}))[0].side == "buy"
    assert proto.parse(frame({"result": None, "id": 3})) == [Acked(request=3)]
    assert proto.parse(frame({"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"})) == [
        RequestFailed("3", "Invalid JSON: expected value at line 1 column 1", None)
    ]
    assert proto.parse(frame({"code": 2, "msg": "Invalid request", "id": 4})) == [
        RequestFailed("2", "Invalid request", 4)
    ]
    assert proto.parse(frame({"e": "serverShutdown", "E": 1770123456789})) == [Shutdown("serverShutdown")]
    combined = {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1770123456789}}
    assert proto.parse(frame(combined)) == [Shutdown("serverShutdown")]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "malformed_json"),
        ('{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1,"s":"BTCUSDT","c":"12abc"}}', "malformed"),
        ('{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","s":"BTCUSDT","c":"1"}}', "malformed"),
        ('{"stream":"btcusdt@ticker","data":"x"}', "malformed"),
        ('{"stream":"btcusdt@depth","data":{"e":"depthUpdate"}}', "unknown_event"),
        (
            '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT","a":"7","p":"1","q":"1","T":1,"m":true}}',
            "malformed",
        ),
        ("[1, 2]", "malformed"),
    ],
)
def test_binance_bad_frames_are_problems_not_exceptions(text: str, code: str) -> None:
    [event] = BinanceProtocol().parse(text)
    assert isinstance(event, Problem) and event.code == code


def test_negative_and_zero_prices_parse_so_the_aggregator_can_reject_them() -> None:
    data = {"e": "24hrTicker", "E": 1, "s": "BTCUSDT", "c": "-5", "P": "1", "q": "1"}
    assert BinanceProtocol().parse(frame({"stream": "btcusdt@ticker", "data": data}))[0].price == -5.0


# --- Coinbase -----------------------------------------------------------------------------


def test_coinbase_subscribes_ticker_heartbeat_and_matches_for_trade_products() -> None:
    [text] = CoinbaseProtocol(trade_ids=["BTC-USD"]).subscribe(["BTC-USD", "ETH-USD"], 1)
    assert json.loads(text) == {
        "type": "subscribe",
        "channels": [
            {"name": "ticker", "product_ids": ["BTC-USD", "ETH-USD"]},
            {"name": "heartbeat", "product_ids": ["BTC-USD", "ETH-USD"]},
            {"name": "matches", "product_ids": ["BTC-USD"]},
        ],
    }


def test_coinbase_parses_ticker_heartbeat_matches_subscriptions_and_errors() -> None:
    proto = CoinbaseProtocol()
    ticker = {
        "type": "ticker",
        "sequence": 37475248783,
        "product_id": "ETH-USD",
        "price": "1285.22",
        "open_24h": "1310.79",
        "volume_24h": "245532.79269678",
        "low_24h": "1280.52",
        "high_24h": "1313.8",
        "volume_30d": "9788783.60117027",
        "best_bid": "1285.04",
        "best_bid_size": "0.46688654",
        "best_ask": "1285.27",
        "best_ask_size": "1.56637040",
        "side": "buy",
        "time": "2022-10-19T23:28:22.061769Z",
        "trade_id": 370843401,
        "last_size": "11.4396987",
    }
    [tick] = proto.parse(frame(ticker))
    assert isinstance(tick, Tick) and tick.id == "ETH-USD" and tick.price == 1285.22 and tick.seq == 37475248783
    assert tick.time == 1666222102061 and tick.change24h == pytest.approx((1285.22 / 1310.79 - 1) * 100)
    assert tick.volume24h == pytest.approx(245532.79269678 * 1285.22)  # base units x price
    heartbeat = {
        "type": "heartbeat",
        "sequence": 90,
        "last_trade_id": 20,
        "product_id": "BTC-USD",
        "time": "2014-11-07T08:19:28.464459Z",
    }
    assert proto.parse(frame(heartbeat)) == [Liveness("BTC-USD", 90, 20)]
    match = {
        "type": "match",
        "trade_id": 10,
        "sequence": 50,
        "maker_order_id": "ac928c66",
        "taker_order_id": "132fb6ae",
        "time": "2014-11-07T08:19:27.028459Z",
        "product_id": "BTC-USD",
        "size": "5.23512",
        "price": "400.23",
        "side": "sell",
    }
    [trade] = proto.parse(frame(match))
    assert trade == TradeEvent("BTC-USD", 10, 400.23, 5.23512, "buy", 1415348367028, 50)  # maker sold: taker bought
    subscriptions = {
        "type": "subscriptions",
        "channels": [
            {"name": "ticker", "product_ids": ["ETH-USD", "ETH-EUR"]},
            {"name": "heartbeat", "product_ids": ["ETH-USD"]},
        ],
    }
    assert proto.parse(frame(subscriptions)) == [Acked(("ETH-USD", "ETH-EUR"))]
    refused = {"type": "error", "message": "Failed to subscribe", "reason": "FOO-USD is not a valid product"}
    assert proto.parse(frame(refused)) == [
        Rejected(("FOO-USD",), "Failed to subscribe: FOO-USD is not a valid product")
    ]
    assert proto.parse(frame({"type": "error", "message": "error message"})) == [
        RequestFailed("error", "error message")
    ]
    assert isinstance(proto.parse(frame({"type": "error", "message": "rate limit exceeded"}))[0], RateLimited)
    assert proto.parse(frame({"type": "status", "products": []})) == []  # unknown types are ignored


def test_coinbase_garbage_numbers_and_times_are_problems() -> None:
    proto = CoinbaseProtocol()
    bad_price = {
        "type": "ticker",
        "sequence": 1,
        "product_id": "BTC-USD",
        "price": "NaNx",
        "time": "2022-10-19T23:28:22Z",
    }
    bad_time = {"type": "ticker", "sequence": 1, "product_id": "BTC-USD", "price": "1", "time": "yesterday"}
    for msg in (bad_price, bad_time):
        [event] = proto.parse(frame(msg))
        assert isinstance(event, Problem) and event.code == "malformed"


# --- Kraken -------------------------------------------------------------------------------


def test_kraken_subscribes_ticker_and_trades_and_pings() -> None:
    proto = KrakenProtocol(trade_ids=["BTC/USD"])
    frames = [json.loads(t) for t in proto.subscribe(["BTC/USD", "ETH/USD"], 5)]
    assert frames == [
        {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD", "ETH/USD"]}, "req_id": 5},
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": False}, "req_id": 5},
    ]
    assert json.loads(proto.ping(9) or "") == {"method": "ping", "req_id": 9}


def test_kraken_parses_ticker_trade_acks_failures_heartbeat_status_and_pong() -> None:
    proto = KrakenProtocol()
    ticker = {
        "channel": "ticker",
        "type": "update",
        "data": [
            {
                "symbol": "ALGO/USD",
                "bid": 0.10025,
                "bid_qty": 740.0,
                "ask": 0.10035,
                "ask_qty": 740.0,
                "last": 0.10035,
                "volume": 997038.98383185,
                "vwap": 0.10148,
                "low": 0.09979,
                "high": 0.10285,
                "change": -0.00017,
                "change_pct": -0.17,
                "timestamp": "2023-09-25T09:04:31.742648Z",
            }
        ],
    }
    [tick] = proto.parse(frame(ticker))
    assert tick == Tick("ALGO/USD", 0.10035, 1695632671742, -0.17, pytest.approx(997038.98383185 * 0.10148))
    trade = {
        "channel": "trade",
        "type": "update",
        "data": [
            {
                "symbol": "MATIC/USD",
                "side": "sell",
                "price": 0.5117,
                "qty": 40.0,
                "ord_type": "market",
                "trade_id": 4665906,
                "timestamp": "2023-09-25T07:49:37.708706Z",
            }
        ],
    }
    assert proto.parse(frame(trade)) == [TradeEvent("MATIC/USD", 4665906, 0.5117, 40.0, "sell", 1695628177708)]
    ack = {
        "method": "subscribe",
        "result": {"channel": "ticker", "snapshot": True, "symbol": "ALGO/USD"},
        "success": True,
        "time_in": "2023-09-25T09:04:31.742599Z",
        "time_out": "2023-09-25T09:04:31.742648Z",
    }
    assert proto.parse(frame(ack)) == [Acked(("ALGO/USD",))]
    failure = {
        "error": "Currency pair not supported XBT/USD",
        "method": "subscribe",
        "success": False,
        "symbol": "XBT/USD",
        "time_in": "…",
        "time_out": "…",
    }
    assert proto.parse(frame(failure)) == [Rejected(("XBT/USD",), "Currency pair not supported XBT/USD")]
    assert proto.parse(frame({"channel": "heartbeat"})) == [Liveness()]
    pong = {"method": "pong", "req_id": 101, "time_in": "…", "time_out": "…"}
    assert proto.parse(frame(pong)) == [Liveness()]
    online = {
        "channel": "status",
        "data": [{"api_version": "v2", "connection_id": 12393906104898154338, "system": "online", "version": "2.0.4"}],
        "type": "update",
    }
    assert proto.parse(frame(online)) == []
    online["data"][0]["system"] = "maintenance"  # type: ignore[index]
    assert proto.parse(frame(online)) == [Shutdown("status maintenance", delay=5.0)]
    limited = {"error": "EGeneral:Too many requests", "method": "subscribe", "success": False}
    assert isinstance(proto.parse(frame(limited))[0], RateLimited)


# --- OKX ----------------------------------------------------------------------------------


def test_okx_subscribes_args_and_pings_with_text() -> None:
    proto = OKXProtocol(trade_ids=["BTC-USDT"])
    [text] = proto.subscribe(["BTC-USDT", "ETH-USDT"], 1)
    assert json.loads(text) == {
        "op": "subscribe",
        "args": [
            {"channel": "tickers", "instId": "BTC-USDT"},
            {"channel": "tickers", "instId": "ETH-USDT"},
            {"channel": "trades", "instId": "BTC-USDT"},
        ],
    }
    assert proto.ping(1) == "ping" and proto.parse("pong") == [Liveness()]


def test_okx_parses_tickers_trades_acks_errors_and_notices() -> None:
    proto = OKXProtocol()
    tickers = {
        "arg": {"channel": "tickers", "instId": "BTC-USDT"},
        "data": [
            {
                "instType": "SPOT",
                "instId": "BTC-USDT",
                "last": "9999.99",
                "lastSz": "0.1",
                "askPx": "9999.99",
                "askSz": "11",
                "bidPx": "8888.88",
                "bidSz": "5",
                "open24h": "9000",
                "high24h": "10000",
                "low24h": "8888.88",
                "volCcy24h": "2222",
                "vol24h": "2222",
                "sodUtc0": "2222",
                "sodUtc8": "2222",
                "ts": "1597026383085",
            }
        ],
    }
    assert proto.parse(frame(tickers)) == [
        Tick("BTC-USDT", 9999.99, 1597026383085, pytest.approx((9999.99 / 9000 - 1) * 100), 2222.0)
    ]
    trades = {
        "arg": {"channel": "trades", "instId": "BTC-USDT"},
        "data": [
            {
                "instId": "BTC-USDT",
                "tradeId": "130639474",
                "px": "42219.9",
                "sz": "0.12060306",
                "side": "buy",
                "ts": "1630048897897",
                "count": "3",
                "source": "0",
                "seqId": 1234,
            }
        ],
    }
    assert proto.parse(frame(trades)) == [TradeEvent("BTC-USDT", 130639474, 42219.9, 0.12060306, "buy", 1630048897897)]
    ack = {"event": "subscribe", "arg": {"channel": "tickers", "instId": "BTC-USDT"}, "connId": "accb8e21"}
    assert proto.parse(frame(ack)) == [Acked(("BTC-USDT",))]
    unknown = {
        "event": "error",
        "code": "60018",
        "msg": "Wrong URL or channel:tickers,instId:FOO-USDT doesn't exist.",
        "connId": "a4d3ae55",
    }
    assert proto.parse(frame(unknown))[0] == Rejected(("FOO-USDT",), "60018 " + unknown["msg"])
    generic = {"event": "error", "code": "60012", "msg": 'Invalid request: {"op": "subscribe"}', "connId": "a4d3ae55"}
    assert proto.parse(frame(generic)) == [RequestFailed("60012", generic["msg"])]
    assert isinstance(
        proto.parse(frame({"event": "error", "code": "60014", "msg": "Requests too frequent."}))[0], RateLimited
    )
    notice = {
        "event": "notice",
        "code": "64008",
        "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
        "connId": "a4d3ae55",
    }
    assert isinstance(proto.parse(frame(notice))[0], Shutdown)
    assert isinstance(proto.parse("garbage")[0], Problem)


# --- ordering -----------------------------------------------------------------------------


def test_sequences_tell_gaps_duplicates_and_late_messages_apart() -> None:
    book = SequenceBook()
    assert book.check("BTC-USD", 10) == ("first", 10)
    assert book.check("BTC-USD", 11) == ("ok", 11)
    assert book.check("BTC-USD", 11) == ("duplicate", 12)  # the same message from a second connection
    assert book.check("BTC-USD", 15) == ("gap", 12)  # 12-14 were lost
    assert book.check("BTC-USD", 13) == ("late", 16)  # never seen and older: dropped
    assert book.check("BTC-USD", 11) == ("duplicate", 16)
    assert book.check("ETH-USD", 1) == ("first", 1)  # per product
    book.reset()
    assert book.check("BTC-USD", 100) == ("first", 100)  # after a reconnect no gap is claimed


def test_trade_ids_only_grow_per_product() -> None:
    ids = TradeIds()
    assert [ids.accept("BTC", n) for n in (5, 6, 6, 4, 8, 7)] == [
        "ok",
        "ok",
        "duplicate",
        "out_of_order",
        "ok",
        "out_of_order",
    ]
    assert ids.last("BTC") == 8 and ids.accept("ETH", 1) == "ok"
    ids.skip_to("BTC", 20)
    assert ids.accept("BTC", 19) == "out_of_order" and ids.accept("BTC", 21) == "ok"


def test_consecutive_trade_ids_tell_a_gap_except_right_after_a_reconnect() -> None:
    ids = TradeIds(contiguous=True)
    assert [ids.accept("BTC", n) for n in (5, 6, 9, 9, 10)] == ["ok", "ok", "gap", "duplicate", "ok"]
    ids.resume()
    assert ids.accept("BTC", 15) == "ok"  # missed while reconnecting: not a gap of the stream
    assert ids.accept("BTC", 17) == "gap"
    assert [ids.accept("BTC", n) for n in (12, 16)] == ["out_of_order", "out_of_order"]
