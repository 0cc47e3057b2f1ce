"""OKX v5 REST: `/api/v5/market/tickers?instType=SPOT` (every spot ticker in one request).

The REST side of the OKX stream (`prices/streams/okx.py`): polled while the stream is
down and, slowly, to reconcile. Bodies are `{"code": "0", "msg": "", "data": [...]}`; a
non-zero `code` is an error even with HTTP 200 (50011: too many requests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..quotes import Quote
from .base import BadResponse, FetchResult, PriceSource, RateLimited, Trade
from .http import get_json
from .parsing import Malformed, epoch_ms, number, optional_number

#: OKX's "Too Many Requests" code inside a body.
TOO_MANY_REQUESTS = "50011"


class OKXSource(PriceSource):
    kind = "okx"

    def _get(self, path: str, params: dict[str, str]) -> list[Any]:
        reply = get_json(
            self.config.base_url.rstrip("/") + path,
            params=params,
            timeout=(self.config.connect_timeout, self.config.read_timeout),
        )
        body = reply.body
        if not isinstance(body, dict):
            raise BadResponse("not an object", code="bad_shape")
        code = str(body.get("code", ""))
        if code == TOO_MANY_REQUESTS:
            raise RateLimited(str(body.get("msg", ""))[:100])
        if code != "0" or reply.status != 200:
            raise BadResponse(f"HTTP {reply.status} code {code}: {str(body.get('msg', ''))[:80]}", code="api_error")
        data = body.get("data")
        if not isinstance(data, list):
            raise BadResponse("no data list", code="bad_shape")
        return data

    def fetch(self, symbols: Mapping[str, str]) -> FetchResult:
        result = FetchResult()
        by_inst = {external.upper(): symbol for symbol, external in symbols.items()}
        if not by_inst:
            return result
        result.requests += 1
        returned: set[str] = set()
        for row in self._get("/api/v5/market/tickers", {"instType": "SPOT"}):
            inst = row.get("instId") if isinstance(row, dict) else None
            if inst not in by_inst:
                continue  # every spot pair comes back; only ours matter
            try:
                price = number(row["last"])
                ts = epoch_ms(row["ts"], seconds=False)
            except (KeyError, Malformed):
                result.problems["malformed"] += 1
                continue
            returned.add(inst)
            opened = optional_number(row.get("open24h"))
            change = (price / opened - 1) * 100 if opened else None
            result.quotes.append(
                Quote(by_inst[inst], self.id, price, ts, change, optional_number(row.get("volCcy24h")))
            )
        result.problems["missing_symbol"] += len(set(by_inst) - returned)
        return result

    def trades(self, symbol: str, external_id: str, limit: int) -> list[Trade]:
        """Recent trades; OKX's `side` is the taker's."""
        out: list[Trade] = []
        for row in self._get("/api/v5/market/trades", {"instId": external_id.upper(), "limit": str(limit)}):
            try:
                side = row["side"]
                if side not in ("buy", "sell"):
                    continue
                out.append(
                    Trade(symbol, number(row["px"]), number(row["sz"]), side, epoch_ms(row["ts"], seconds=False))
                )
            except (KeyError, TypeError, Malformed):
                continue
        return out
