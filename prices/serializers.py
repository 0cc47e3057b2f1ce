"""API schemas of the prices endpoints (documentation and query validation)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

#: The history endpoint returns at most this many minute candles (one day).
MAX_HISTORY_LIMIT = 1440


class PriceUpdateSerializer(serializers.Serializer[dict[str, Any]]):
    symbol = serializers.CharField()
    price = serializers.FloatField()
    change24h = serializers.FloatField(allow_null=True)
    volume24h = serializers.FloatField(allow_null=True)
    timestamp = serializers.IntegerField(help_text="ms since the epoch")
    sources = serializers.ListField(child=serializers.CharField())
    source = serializers.ChoiceField(choices=["aggregate", "simulated"])  # type: ignore[assignment]
    stale = serializers.BooleanField()
    degraded = serializers.BooleanField()
    twap = serializers.FloatField(allow_null=True)


class LatestPricesSerializer(serializers.Serializer[dict[str, Any]]):
    prices = PriceUpdateSerializer(many=True)
    timestamp = serializers.IntegerField()


class CandleSerializer(serializers.Serializer[dict[str, Any]]):
    time = serializers.IntegerField(help_text="start of the minute, ms")
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume24h = serializers.FloatField(allow_null=True)


class HistorySerializer(serializers.Serializer[dict[str, Any]]):
    symbol = serializers.CharField()
    interval = serializers.CharField()
    candles = CandleSerializer(many=True)


class HistoryQuerySerializer(serializers.Serializer[dict[str, Any]]):
    start = serializers.IntegerField(required=False, min_value=0, help_text="ms; default: end - limit minutes")
    end = serializers.IntegerField(required=False, min_value=0, help_text="ms; default: now")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_HISTORY_LIMIT, default=60)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "start" in attrs and "end" in attrs and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError("start must be before end")
        return attrs


class TradeSerializer(serializers.Serializer[dict[str, Any]]):
    symbol = serializers.CharField()
    price = serializers.FloatField()
    qty = serializers.FloatField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    time = serializers.IntegerField()
    venue = serializers.CharField(required=False, help_text="the exchange it printed on")


class MoverSerializer(serializers.Serializer[dict[str, Any]]):
    symbol = serializers.CharField()
    price = serializers.FloatField()
    change24h = serializers.FloatField()


class MarketOverviewSerializer(serializers.Serializer[dict[str, Any]]):
    total_market_cap = serializers.FloatField(allow_null=True)
    total_volume = serializers.FloatField(allow_null=True)
    btc_dominance = serializers.FloatField(allow_null=True)
    top_gainers = MoverSerializer(many=True)
    top_losers = MoverSerializer(many=True)
    recent_trades = TradeSerializer(many=True)
    timestamp = serializers.IntegerField()
    source = serializers.CharField()  # type: ignore[assignment]
