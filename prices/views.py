"""REST endpoints: latest prices, a symbol's history, the market overview, source health."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .handlers import SYMBOL_RE
from .health import readiness
from .serializers import (
    HistoryQuerySerializer,
    HistorySerializer,
    LatestPricesSerializer,
    MarketOverviewSerializer,
    PriceUpdateSerializer,
)

#: The coded error shape of these views (and of DRF's own errors, realtime_project/api_errors.py).
PriceError = inline_serializer(
    "PriceError",
    {
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        "errors": serializers.DictField(required=False),
    },
)


def _error(code: str, detail: str, status: int, **extra: Any) -> Response:
    return Response({"code": code, "detail": detail, **extra}, status=status)


def _symbol(raw: str) -> str | None:
    return raw.upper() if SYMBOL_RE.match(raw) else None


class LatestPricesView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(operation_id="prices_latest", responses=LatestPricesSerializer)
    def get(self, request: Request) -> Response:
        prices = sorted(selectors.latest_prices().values(), key=lambda u: u["symbol"])
        return Response({"prices": prices, "timestamp": int(time.time() * 1000)})


class SymbolPriceView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(operation_id="prices_symbol", responses={200: PriceUpdateSerializer, 404: PriceError})
    def get(self, request: Request, symbol: str) -> Response:
        name = _symbol(symbol)
        update = selectors.latest_price(name) if name else None
        if update is None:
            return _error("not_found", "no price for this symbol", 404)
        return Response(update)


class PriceHistoryView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="prices_history",
        parameters=[
            OpenApiParameter("start", int, description="ms since the epoch (inclusive)"),
            OpenApiParameter("end", int, description="ms since the epoch (exclusive); default now"),
            OpenApiParameter("limit", int, description="max candles (1-1440, default 60), newest kept"),
        ],
        responses={200: HistorySerializer, 400: PriceError, 404: PriceError},
    )
    def get(self, request: Request, symbol: str) -> Response:
        name = _symbol(symbol)
        if name is None or not selectors.symbol_exists(name):
            return _error("not_found", "unknown symbol", 404)
        query = HistoryQuerySerializer(data=request.query_params)
        if not query.is_valid():
            return _error("bad_request", "invalid query parameters", 400, errors=query.errors)
        params = query.validated_data
        end = _from_ms(params["end"]) if "end" in params else datetime.now(UTC)
        start = _from_ms(params["start"]) if "start" in params else end - timedelta(minutes=params["limit"])
        if start >= end:
            return _error("bad_request", "start must be before end", 400)
        candles = selectors.price_history(name, start=start, end=end, limit=params["limit"])
        return Response({"symbol": name, "interval": "1m", "candles": candles})


def _from_ms(ms: int) -> datetime:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC)


class MarketOverviewView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(operation_id="prices_market_overview", responses={200: MarketOverviewSerializer, 404: PriceError})
    def get(self, request: Request) -> Response:
        overview = selectors.market_overview()
        if overview is None:
            return _error("not_found", "no market overview yet", 404)
        return Response(overview)


class SourceHealthView(APIView):
    """Staff: per-source health (the same data as /readyz's `prices` entry)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(operation_id="prices_sources_health", responses={200: dict[str, Any], 403: PriceError})
    def get(self, request: Request) -> Response:
        return Response(readiness())
