"""Kraken: `/0/public/Ticker` for many pairs; errors come inside HTTP 200 bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..quotes import Quote
from .base import BadResponse, FetchResult, PriceSource, RateLimited, SourceUnavailable, UnknownSymbol
from .batching import UnknownIds, fetch_isolating
from .http import get_json
from .parsing import Malformed, chunks, number

#: Pairs per request (URL length); Kraken allows about one public request per second.
PAIRS_PER_REQUEST = 100


class KrakenSource(PriceSource):
    """Mappings hold Kraken's canonical pair names (XXBTZUSD): results are keyed by them.

    The ticker has no timestamp (the receive time is used) and its `o` is the open at
    UTC midnight, not 24 h ago, so Kraken reports no 24 h change; its 24 h volume is
    `v[1]` (base units) x `p[1]` (24 h VWAP), in USD.
    """

    kind = "kraken"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unknown = UnknownIds(self.clock)

    def _ticker(self, pairs: list[str]) -> dict[str, Any]:
        reply = get_json(
            self.config.base_url.rstrip("/") + "/0/public/Ticker",
            params={"pair": ",".join(pairs)},
            timeout=(self.config.connect_timeout, self.config.read_timeout),
        )
        body = reply.body
        if not isinstance(body, dict):
            raise BadResponse("not an object", code="bad_shape")
        errors = body.get("error")
        if errors:
            raise self._error(errors)
        if reply.status != 200:
            raise BadResponse(f"HTTP {reply.status}", code=f"http_{reply.status}")
        result = body.get("result")
        if not isinstance(result, dict):
            raise BadResponse("no result object", code="bad_shape")
        return result

    @staticmethod
    def _error(errors: Any) -> Exception:
        first = str(errors[0]) if isinstance(errors, list) and errors else str(errors)
        if first.startswith("EQuery:Unknown asset pair"):
            return UnknownSymbol(first)
        if first.startswith(("EGeneral:Too many requests", "EAPI:Rate limit")):
            return RateLimited(first)
        if first.startswith(("EService:Unavailable", "EService:Busy", "EGeneral:Temporary")):
            return SourceUnavailable(first, code="busy" if "Busy" in first else "unavailable")
        return BadResponse(first[:100], code="api_error")

    def fetch(self, symbols: Mapping[str, str]) -> FetchResult:
        result = FetchResult()
        by_pair = {external.upper(): symbol for symbol, external in symbols.items()}
        pairs, skipped = self.unknown.filter(sorted(by_pair))
        result.problems["skipped_unknown"] += skipped
        received = self.now_ms()
        returned: set[str] = set()
        newly_unknown: set[str] = set()

        def request(batch: list[str]) -> dict[str, Any]:
            result.requests += 1
            return self._ticker(batch)

        for batch in chunks(pairs, PAIRS_PER_REQUEST):
            found_unknown: set[str] = set()
            asked = set(batch)
            for body in fetch_isolating(batch, request, unknown=found_unknown, problems=result.problems):
                for pair, row in body.items():
                    if pair not in asked:
                        result.problems["unexpected_symbol"] += 1
                        continue
                    returned.add(pair)
                    try:
                        price = number(row["c"][0])
                        base_volume = number(row["v"][1])
                        vwap = number(row["p"][1])
                    except (KeyError, IndexError, TypeError, Malformed):
                        result.problems["malformed"] += 1
                        continue
                    # No venue time in the body: `received` is when we got it, not when it was quoted.
                    quote = Quote(by_pair[pair], self.id, price, received, None, base_volume * vwap, quoted_at=0)
                    result.quotes.append(quote)
            self.unknown.add(found_unknown)
            newly_unknown |= found_unknown
        result.problems["missing_symbol"] += len(set(pairs) - returned - newly_unknown)
        return result
