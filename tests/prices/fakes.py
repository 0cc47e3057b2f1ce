"""A local HTTP server shaped like CoinGecko, Binance, Coinbase Exchange and Kraken.

Bodies follow ../shared/reference/api-samples (field names, strings vs numbers, ms vs
seconds, errors inside HTTP 200). Tests set the market (`set_price`) and inject
faults per path prefix (429 + Retry-After, 5xx, timeouts, truncated JSON, HTML pages).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLOUDFLARE_HTML = b"""<!DOCTYPE html>
<html lang="en-US"><head><title>Just a moment...</title></head>
<body><h1>Error 1015</h1><p>You are being rate limited</p></body></html>"""


@dataclass
class Asset:
    price: float
    change: float = 1.5  # percent over 24 h
    volume: float = 1_000.0  # base units over 24 h
    updated: float = field(default_factory=time.time)


@dataclass
class Fault:
    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int | None = None  # None: until cleared
    raw: Callable[[Any], None] | None = None  # write to the socket yourself (truncated, reset)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out hangs up before the delayed reply: expected here.
        pass


class Market:
    """Assets by each source's own id, shared by the fake APIs."""

    def __init__(self) -> None:
        self.coingecko: dict[str, Asset] = {}
        self.binance: dict[str, Asset] = {}
        self.coinbase: dict[str, Asset] = {}
        self.kraken: dict[str, Asset] = {}
        self.okx: dict[str, Asset] = {}
        self.global_figures = {"usd_cap": 2_721_226_850_772.63, "usd_volume": 69_327_091_133.5489, "btc": 50.4465}
        self.trades: dict[str, list[dict[str, Any]]] = {}


class FakeExchanges:
    def __init__(self) -> None:
        self.market = Market()
        self.faults: dict[str, Fault] = {}
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self._lock = threading.Lock()
        handler = self._handler_class()
        self.server = QuietServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    # --- control ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def base_urls(self) -> dict[str, str]:
        return {k: f"{self.url}/{k}" for k in ("coingecko", "binance", "coinbase", "kraken", "okx")}

    def start(self) -> FakeExchanges:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def set_price(self, symbol: str, price: float, *, change: float = 1.5, volume: float = 1_000.0) -> None:
        """Quote `symbol` at `price` on every fake, under each source's own id."""
        ids = IDS[symbol]
        now = time.time()
        for source, external in ids.items():
            if external is not None:
                getattr(self.market, source)[external] = Asset(price, change, volume, now)

    def fault(self, prefix: str, fault: Fault) -> None:
        with self._lock:
            self.faults[prefix] = fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def hits(self, prefix: str) -> int:
        return sum(1 for path, _, _ in self.requests if path.startswith(prefix))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for prefix, fault in self.faults.items():
                if path.startswith(prefix):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            del self.faults[prefix]
                    return fault
        return None

    # --- the APIs --------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fakes = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffered: headers and body leave in one write (two small writes meet the
            # client's delayed ACK and cost 40 ms per request).
            wbufsize = 1 << 16

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                fakes.requests.append((parts.path, query, dict(self.headers)))
                fault = fakes._take_fault(parts.path)
                if fault is not None:
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.raw is not None:
                        fault.raw(self)
                        return
                    if fault.body is not None or fault.status != 200:
                        self.reply(fault.status, fault.body or b"", fault.headers)
                        return
                try:
                    status, body = fakes.route(parts.path, query)
                except KeyError:
                    status, body = 404, {"message": "NotFound"}
                self.reply(status, json.dumps(body).encode())

            def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                headers = headers or {}
                if not any(k.lower() == "content-type" for k in headers):
                    self.send_header("Content-Type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        m = self.market
        if path == "/coingecko/simple/price":
            ids = query["ids"][0].split(",")
            out: dict[str, Any] = {}
            for coin in ids:
                a = m.coingecko.get(coin)
                if a is not None:
                    out[coin] = {
                        "usd": a.price,
                        "usd_market_cap": a.price * 19e6,
                        "usd_24h_vol": a.volume * a.price,
                        "usd_24h_change": a.change,
                        "last_updated_at": int(a.updated),
                    }
            return 200, out
        if path == "/coingecko/global":
            g = m.global_figures
            return 200, {
                "data": {
                    "active_cryptocurrencies": 13690,
                    "markets": 1046,
                    "total_market_cap": {"btc": 39003738.08, "usd": g["usd_cap"]},
                    "total_volume": {"btc": 993675.2, "usd": g["usd_volume"]},
                    "market_cap_percentage": {"btc": g["btc"], "eth": 14.92},
                    "market_cap_change_percentage_24h_usd": 1.72,
                    "updated_at": int(time.time()),
                }
            }
        if path == "/binance/api/v3/ticker/24hr":
            symbols = json.loads(query["symbols"][0])
            if any(s not in m.binance for s in symbols):
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            return 200, [binance_row(s, m.binance[s]) for s in symbols]
        if path == "/binance/api/v3/trades":
            symbol = query["symbol"][0]
            if symbol not in m.binance:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            return 200, m.trades.get(symbol, [])[: int(query.get("limit", ["500"])[0])]
        if path.startswith("/coinbase/products/"):
            _, _, _, product, what = path.split("/")
            a = m.coinbase.get(product)
            if a is None:
                return 404, {"message": "NotFound"}
            if what == "ticker":
                return 200, {
                    "trade_id": 86326522,
                    "price": f"{a.price:.8f}",
                    "size": "0.00698254",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(a.updated))
                    + f".{int(a.updated * 1000) % 1000:03d}Z",
                    "bid": f"{a.price * 0.9999:.8f}",
                    "ask": f"{a.price * 1.0001:.8f}",
                    "volume": f"{a.volume:.8f}",
                    "rfq_volume": "123.122",
                    "conversions_volume": "0.00",
                }
            if what == "stats":
                open_ = a.price / (1 + a.change / 100)
                return 200, {
                    "open": f"{open_:.8f}",
                    "high": f"{a.price * 1.02:.8f}",
                    "low": f"{open_ * 0.98:.8f}",
                    "volume": f"{a.volume:.8f}",
                    "last": f"{a.price:.8f}",
                    "volume_30day": "786763.72930864",
                }
            if what == "trades":
                return 200, m.trades.get(product, [])
        if path == "/kraken/0/public/Ticker":
            pairs = query["pair"][0].split(",")
            if any(p not in m.kraken for p in pairs):
                return 200, {"error": ["EQuery:Unknown asset pair"]}
            return 200, {"error": [], "result": {p: kraken_row(m.kraken[p]) for p in pairs}}
        if path == "/okx/api/v5/market/tickers":
            if query.get("instType") != ["SPOT"]:
                return 200, {"code": "51000", "msg": "Parameter instType error", "data": []}
            return 200, {"code": "0", "msg": "", "data": [okx_row(inst, a) for inst, a in m.okx.items()]}
        raise KeyError(path)


def okx_row(inst: str, a: Asset) -> dict[str, Any]:
    open_ = a.price / (1 + a.change / 100)
    return {
        "instType": "SPOT",
        "instId": inst,
        "last": f"{a.price:.8f}",
        "lastSz": "0.1",
        "askPx": f"{a.price:.8f}",
        "askSz": "11",
        "bidPx": f"{a.price:.8f}",
        "bidSz": "5",
        "open24h": f"{open_:.8f}",
        "high24h": f"{a.price * 1.01:.8f}",
        "low24h": f"{open_ * 0.99:.8f}",
        "volCcy24h": f"{a.volume * a.price:.8f}",
        "vol24h": f"{a.volume:.8f}",
        "sodUtc0": f"{open_:.8f}",
        "sodUtc8": f"{open_:.8f}",
        "ts": str(int(a.updated * 1000)),
    }


def binance_row(symbol: str, a: Asset) -> dict[str, Any]:
    open_ = a.price / (1 + a.change / 100)
    close_ms = int(a.updated * 1000)
    return {
        "symbol": symbol,
        "priceChange": f"{a.price - open_:.8f}",
        "priceChangePercent": f"{a.change:.3f}",
        "weightedAvgPrice": f"{a.price:.8f}",
        "prevClosePrice": f"{open_:.8f}",
        "lastPrice": f"{a.price:.8f}",
        "lastQty": "200.00000000",
        "bidPrice": f"{a.price:.8f}",
        "bidQty": "100.00000000",
        "askPrice": f"{a.price:.8f}",
        "askQty": "100.00000000",
        "openPrice": f"{open_:.8f}",
        "highPrice": f"{a.price * 1.01:.8f}",
        "lowPrice": f"{open_ * 0.99:.8f}",
        "volume": f"{a.volume:.8f}",
        "quoteVolume": f"{a.volume * a.price:.8f}",
        "openTime": close_ms - 86_400_000,
        "closeTime": close_ms,
        "firstId": 28385,
        "lastId": 28460,
        "count": 76,
    }


def kraken_row(a: Asset) -> dict[str, Any]:
    p = f"{a.price:.5f}"
    return {
        "a": [p, "1", "1.000"],
        "b": [p, "1", "1.000"],
        "c": [p, "0.00067643"],
        "v": [f"{a.volume / 2:.8f}", f"{a.volume:.8f}"],
        "p": [p, p],
        "t": [34619, 38907],
        "l": [p, p],
        "h": [p, p],
        "o": p,
    }


#: Each symbol's id per source (as the seed migration maps them).
IDS: dict[str, dict[str, str | None]] = {
    "BTC": {
        "coingecko": "bitcoin",
        "binance": "BTCUSDT",
        "coinbase": "BTC-USD",
        "kraken": "XXBTZUSD",
        "okx": "BTC-USDT",
    },
    "ETH": {
        "coingecko": "ethereum",
        "binance": "ETHUSDT",
        "coinbase": "ETH-USD",
        "kraken": "XETHZUSD",
        "okx": "ETH-USDT",
    },
    "SOL": {"coingecko": "solana", "binance": "SOLUSDT", "coinbase": "SOL-USD", "kraken": "SOLUSD", "okx": "SOL-USDT"},
    "BNB": {"coingecko": "binancecoin", "binance": "BNBUSDT", "coinbase": None, "kraken": None, "okx": "BNB-USDT"},
}


def truncated(body: bytes) -> Callable[[Any], None]:
    """A reply whose JSON body is cut in the middle (Content-Length matches what is sent)."""

    def write(handler: Any) -> None:
        cut = body[: len(body) // 2]
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(cut)))
        handler.end_headers()
        handler.wfile.write(cut)

    return write


def reset_mid_body(handler: Any) -> None:
    """Promise 1,000 bytes, send 10, close: the client sees the body break off."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"bitcoin"')
    handler.wfile.flush()
    handler.close_connection = True
