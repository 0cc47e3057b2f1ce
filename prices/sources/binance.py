"""Binance spot: `/api/v3/ticker/24hr` for many symbols at once, `/api/v3/trades` for the overview."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..quotes import Quote
from .base import BadResponse, FetchResult, PriceSource, Trade, UnknownSymbol
from .batching import UnknownIds, fetch_isolating
from .http import Reply, get_json
from .parsing import Malformed, chunks, epoch_ms, number, optional_number

#: Request weight is 40 for 21-100 symbols and 80 above: 100 per request keeps URLs
#: short and a 500-symbol tick at 200 of the 6,000 weight per minute.
SYMBOLS_PER_REQUEST = 100
INVALID_SYMBOL = -1121


class BinanceSource(PriceSource):
    kind = "binance"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unknown = UnknownIds(self.clock)

    def _get(self, path: str, params: dict[str, str]) -> Any:
        reply = get_json(
            self.config.base_url.rstrip("/") + path,
            params=params,
            timeout=(self.config.connect_timeout, self.config.read_timeout),
        )
        return self._check(reply)

    @staticmethod
    def _check(reply: Reply) -> Any:
        body = reply.body
        if reply.status == 200:
            return body
        if isinstance(body, dict) and body.get("code") == INVALID_SYMBOL:
            raise UnknownSymbol(str(body.get("msg", ""))[:100])
        code = body.get("code") if isinstance(body, dict) else None
        raise BadResponse(f"HTTP {reply.status} code {code}", code=f"http_{reply.status}")

    def fetch(self, symbols: Mapping[str, str]) -> FetchResult:
        result = FetchResult()
        by_pair = {external.upper(): symbol for symbol, external in symbols.items()}
        pairs, skipped = self.unknown.filter(sorted(by_pair))
        result.problems["skipped_unknown"] += skipped
        returned: set[str] = set()
        newly_unknown: set[str] = set()

        def request(batch: list[str]) -> Any:
            result.requests += 1
            body = self._get("/api/v3/ticker/24hr", {"symbols": json.dumps(batch, separators=(",", ":"))})
            if not isinstance(body, list):
                raise BadResponse("not a list", code="bad_shape")
            return body

        for batch in chunks(pairs, SYMBOLS_PER_REQUEST):
            found_unknown: set[str] = set()
            asked = set(batch)
            for body in fetch_isolating(batch, request, unknown=found_unknown, problems=result.problems):
                for row in body:
                    quote = self._parse(row, asked, by_pair, result)
                    if quote is not None:
                        returned.add(row["symbol"])
                        result.quotes.append(quote)
            self.unknown.add(found_unknown)
            newly_unknown |= found_unknown
        result.problems["missing_symbol"] += len(set(pairs) - returned - newly_unknown)
        return result

    def _parse(self, row: Any, asked: set[str], by_pair: dict[str, str], result: FetchResult) -> Quote | None:
        if not isinstance(row, dict):
            result.problems["malformed"] += 1
            return None
        pair = row.get("symbol")
        if pair not in asked:
            result.problems["unexpected_symbol"] += 1
            return None
        try:
            price = number(row["lastPrice"])
            ts = epoch_ms(row["closeTime"], seconds=False)
        except (KeyError, Malformed):
            result.problems["malformed"] += 1
            return None
        return Quote(
            by_pair[pair],
            self.id,
            price,
            ts,
            optional_number(row.get("priceChangePercent")),
            optional_number(row.get("quoteVolume")),
        )

    def trades(self, symbol: str, external_id: str, limit: int) -> list[Trade]:
        """Recent trades; `isBuyerMaker: true` means the taker sold."""
        body = self._get("/api/v3/trades", {"symbol": external_id.upper(), "limit": str(limit)})
        if not isinstance(body, list):
            raise BadResponse("not a list", code="bad_shape")
        out: list[Trade] = []
        for row in body:
            try:
                price, qty = number(row["price"]), number(row["qty"])
                when = epoch_ms(row["time"], seconds=False)
            except (KeyError, TypeError, Malformed):
                continue
            if price > 0 and qty > 0:
                out.append(Trade(symbol, price, qty, "sell" if row.get("isBuyerMaker") else "buy", when))
        return out
