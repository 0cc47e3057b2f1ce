"""Choices of the prices app: the kinds of price source."""

from __future__ import annotations

from django.db import models


class SourceKind(models.TextChoices):
    COINGECKO = "coingecko", "CoinGecko"
    BINANCE = "binance", "Binance"
    COINBASE = "coinbase", "Coinbase Exchange"
    KRAKEN = "kraken", "Kraken"
    OKX = "okx", "OKX"
    SIMULATED = "simulated", "Simulated market"
