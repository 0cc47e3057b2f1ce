"""Prices data: tracked symbols, sources with their health, per-source mappings, history."""

from __future__ import annotations

from django.core.validators import URLValidator
from django.db import models

from .choices import SourceKind

#: `stream_url` accepts WebSocket URLs only.
stream_url_validator = URLValidator(schemes=["ws", "wss"])


class Symbol(models.Model):
    symbol = models.CharField(max_length=20, unique=True, help_text="Upper-case ticker, e.g. BTC")
    name = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


class Source(models.Model):
    """A price source: its configuration (admin-editable, read every tick) and health."""

    slug = models.SlugField(max_length=40, unique=True, help_text="Id used in payloads' `sources`")
    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    name = models.CharField(max_length=100, blank=True)
    enabled = models.BooleanField(default=True, help_text="Takes effect on the next tick, no restart")
    # A CharField with a URL validator: the form URLField's scheme default is changing in Django 6.
    base_url = models.CharField(
        max_length=200, blank=True, validators=[URLValidator()], help_text="Empty: PRICES['BASE_URLS'][kind]"
    )
    poll_interval = models.FloatField(default=2.0, help_text="Seconds between polls (respect the source's limits)")
    max_requests = models.PositiveIntegerField(
        default=0, help_text="Requests per poll for per-product APIs (Coinbase); 0: the adapter's default"
    )
    streaming = models.BooleanField(
        default=True,
        help_text="Use the venue's WebSocket stream (Binance, Coinbase, Kraken, OKX); REST polls then run only "
        "while it is down, plus a slow reconciliation",
    )
    stream_url = models.CharField(
        max_length=200,
        blank=True,
        validators=[stream_url_validator],
        help_text="Empty: PRICES['STREAM_URLS'][kind]; env PRICES_STREAM_URLS overrides both",
    )
    # Health, written by the tick (never by hand; the admin shows it read-only).
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=40, blank=True, help_text="Error code of the last failure")
    last_error_detail = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    backoff_until = models.DateTimeField(null=True, blank=True)
    total_polls = models.PositiveBigIntegerField(default=0)
    total_failures = models.PositiveBigIntegerField(default=0)
    quotes_accepted = models.PositiveBigIntegerField(default=0)
    outliers = models.PositiveBigIntegerField(default=0)
    #: Bad input counted by kind (invalid_price, future_timestamp, unexpected_symbol, ...).
    problems = models.JSONField(default=dict, blank=True)
    #: The stream's health as the feed process last wrote it (connected, last message age,
    #: reconnects, errors, REST fallback on or off, `updated_at`).
    stream_health = models.JSONField(default=dict, blank=True)
    #: The last comparison of REST quotes with the stream's (`disagreements` beyond the band).
    reconciliation = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class SymbolMapping(models.Model):
    """How one source names one symbol: BTC ↔ bitcoin ↔ BTCUSDT ↔ BTC-USD ↔ XXBTZUSD."""

    symbol = models.ForeignKey(Symbol, on_delete=models.CASCADE, related_name="mappings")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="mappings")
    external_id = models.CharField(max_length=64)
    stream_id = models.CharField(
        max_length=64, blank=True, help_text="The id on the venue's stream when it differs (Kraken v2: BTC/USD)"
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["source__slug", "symbol__symbol"]
        constraints = [
            models.UniqueConstraint(fields=["source", "symbol"], name="prices_mapping_unique_symbol"),
            models.UniqueConstraint(fields=["source", "external_id"], name="prices_mapping_unique_external"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.symbol_id}→{self.external_id}"


class LatestPrice(models.Model):
    """The last published PriceUpdate of a symbol (snapshots, REST, other apps)."""

    symbol = models.OneToOneField(Symbol, on_delete=models.CASCADE, related_name="latest", primary_key=True)
    price = models.DecimalField(max_digits=30, decimal_places=12)
    payload = models.JSONField(help_text="The PriceUpdate as published")
    published_at = models.DateTimeField()

    class Meta:
        ordering = ["symbol_id"]


class Candle(models.Model):
    """One minute of a symbol's aggregated price (bounded retention, pruned by beat)."""

    symbol = models.ForeignKey(Symbol, on_delete=models.CASCADE, related_name="candles")
    start = models.DateTimeField(help_text="Start of the minute (UTC)")
    open = models.DecimalField(max_digits=30, decimal_places=12)
    high = models.DecimalField(max_digits=30, decimal_places=12)
    low = models.DecimalField(max_digits=30, decimal_places=12)
    close = models.DecimalField(max_digits=30, decimal_places=12)
    volume24h = models.FloatField(null=True, blank=True)
    samples = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["symbol_id", "start"]
        constraints = [models.UniqueConstraint(fields=["symbol", "start"], name="prices_candle_unique_minute")]
        indexes = [models.Index(fields=["start"], name="prices_candle_start")]


class MarketOverview(models.Model):
    """The last published market overview, plus the cached CoinGecko /global figures."""

    key = models.CharField(max_length=20, unique=True, default="overview")
    payload = models.JSONField(default=dict)
    published_at = models.DateTimeField(null=True, blank=True)
    global_stats = models.JSONField(default=dict, blank=True)
    global_fetched_at = models.DateTimeField(null=True, blank=True)
