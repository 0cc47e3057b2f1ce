"""CoinGecko v3: `/simple/price` quotes, `/global` market figures, `/coins/markets` rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..quotes import Quote
from .base import BadResponse, FetchResult, PriceSource, RateLimited, SourceUnavailable
from .http import Reply, get_json
from .parsing import Malformed, chunks, epoch_ms, number, optional_number

#: Ids per /simple/price request: keeps the URL short (keyless is ≈10 requests/min, so
#: batching every id into as few requests as possible matters more than anything).
IDS_PER_REQUEST = 250
#: When a 429 carries no Retry-After (or comes inside HTTP 200), wait at least this.
DEFAULT_RETRY_AFTER = 60.0


class CoinGeckoSource(PriceSource):
    kind = "coingecko"

    def _headers(self) -> dict[str, str]:
        if not self.config.api_key:
            return {}
        header = "x-cg-pro-api-key" if self.config.pro else "x-cg-demo-api-key"
        return {header: self.config.api_key}

    def _get(self, path: str, params: dict[str, str]) -> Any:
        reply = get_json(
            self.config.base_url.rstrip("/") + path,
            params=params,
            headers=self._headers(),
            timeout=(self.config.connect_timeout, self.config.read_timeout),
        )
        return self._check(reply)

    @staticmethod
    def _check(reply: Reply) -> Any:
        """CoinGecko may put its error object in any status, even HTTP 200."""
        body = reply.body
        if isinstance(body, dict) and isinstance(body.get("status"), dict) and "error_code" in body["status"]:
            code = body["status"].get("error_code")
            retry = reply.headers.get("retry-after")
            if code == 429:
                wait = float(retry) if retry and retry.isdigit() else DEFAULT_RETRY_AFTER
                raise RateLimited("error_code 429", retry_after=wait)
            if isinstance(code, int) and 500 <= code < 600:
                raise SourceUnavailable(f"error_code {code}", code=f"http_{code}")
            raise BadResponse(f"error_code {code}", code=f"error_{code}")
        if reply.status != 200:
            raise BadResponse(f"HTTP {reply.status}", code=f"http_{reply.status}")
        return body

    def fetch(self, symbols: Mapping[str, str]) -> FetchResult:
        result = FetchResult()
        by_id = {external: symbol for symbol, external in symbols.items()}
        seen: set[str] = set()
        for ids in chunks(sorted(by_id), IDS_PER_REQUEST):
            body = self._get(
                "/simple/price",
                {
                    "ids": ",".join(ids),
                    "vs_currencies": "usd",
                    "include_24hr_vol": "true",
                    "include_24hr_change": "true",
                    "include_last_updated_at": "true",
                },
            )
            result.requests += 1
            if not isinstance(body, dict):
                raise BadResponse("not an object", code="bad_shape")
            asked = set(ids)
            for coin, row in body.items():
                if coin not in asked:
                    result.problems["unexpected_symbol"] += 1
                    continue
                seen.add(coin)
                if not isinstance(row, dict) or row.get("usd") is None:
                    # Unknown or delisted ids come back as {} or with null values.
                    result.problems["missing_price"] += 1
                    continue
                try:
                    price = number(row["usd"])
                    updated = row.get("last_updated_at")
                    ts = epoch_ms(updated, seconds=True) if updated is not None else self.now_ms()
                except Malformed:
                    result.problems["malformed"] += 1
                    continue
                result.quotes.append(
                    self._quote(by_id[coin], price, ts, row.get("usd_24h_change"), row.get("usd_24h_vol"))
                )
        result.problems["missing_symbol"] += len(by_id) - len(seen)
        return result

    def _quote(self, symbol: str, price: float, ts: int, change: Any, volume: Any) -> Quote:
        return Quote(symbol, self.id, price, ts, optional_number(change), optional_number(volume))

    def global_stats(self) -> dict[str, Any]:
        """Total market cap and volume (USD) and BTC dominance (%) from `/global`."""
        body = self._get("/global", {})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise BadResponse("no data object", code="bad_shape")
        try:
            cap = number(data["total_market_cap"]["usd"])
            volume = number(data["total_volume"]["usd"])
            dominance = number(data["market_cap_percentage"]["btc"])
        except (KeyError, TypeError, Malformed):
            raise BadResponse("missing usd figures", code="bad_shape") from None
        if not (cap > 0 and volume >= 0 and 0 <= dominance <= 100):
            raise BadResponse("figures out of range", code="bad_values")
        return {"total_market_cap": cap, "total_volume": volume, "btc_dominance": dominance}
