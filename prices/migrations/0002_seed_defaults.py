"""Seed the default symbols, sources and per-source mappings so a fresh database works."""

from django.db import migrations

SYMBOLS = [
    # symbol, name, coingecko id, binance, coinbase, kraken (canonical pair names)
    ("BTC", "Bitcoin", "bitcoin", "BTCUSDT", "BTC-USD", "XXBTZUSD"),
    ("ETH", "Ethereum", "ethereum", "ETHUSDT", "ETH-USD", "XETHZUSD"),
    ("SOL", "Solana", "solana", "SOLUSDT", "SOL-USD", "SOLUSD"),
    ("BNB", "BNB", "binancecoin", "BNBUSDT", None, None),
    ("XRP", "XRP", "ripple", "XRPUSDT", "XRP-USD", "XXRPZUSD"),
    ("ADA", "Cardano", "cardano", "ADAUSDT", "ADA-USD", "ADAUSD"),
    ("DOGE", "Dogecoin", "dogecoin", "DOGEUSDT", "DOGE-USD", "XDGUSD"),
    ("AVAX", "Avalanche", "avalanche-2", "AVAXUSDT", "AVAX-USD", "AVAXUSD"),
    ("DOT", "Polkadot", "polkadot", "DOTUSDT", "DOT-USD", "DOTUSD"),
    ("LINK", "Chainlink", "chainlink", "LINKUSDT", "LINK-USD", "LINKUSD"),
    ("LTC", "Litecoin", "litecoin", "LTCUSDT", "LTC-USD", "XLTCZUSD"),
]

# slug, kind, name, poll interval (s): each within the source's documented limits
# (CoinGecko keyless ≈ 10 req/min; Kraken ≤ 1 req/s; Coinbase 10 req/s per IP).
SOURCES = [
    ("coingecko", "coingecko", "CoinGecko", 30.0),
    ("binance", "binance", "Binance", 2.0),
    ("coinbase", "coinbase", "Coinbase Exchange", 4.0),
    ("kraken", "kraken", "Kraken", 2.0),
    ("simulated", "simulated", "Simulated market", 1.0),
]


def seed(apps, schema_editor):
    Symbol = apps.get_model("prices", "Symbol")
    Source = apps.get_model("prices", "Source")
    Mapping = apps.get_model("prices", "SymbolMapping")
    sources = {}
    for slug, kind, name, interval in SOURCES:
        sources[slug], _ = Source.objects.get_or_create(
            slug=slug, defaults={"kind": kind, "name": name, "poll_interval": interval}
        )
    for symbol, name, gecko, binance, coinbase, kraken in SYMBOLS:
        row, _ = Symbol.objects.get_or_create(symbol=symbol, defaults={"name": name})
        for slug, external in (
            ("coingecko", gecko),
            ("binance", binance),
            ("coinbase", coinbase),
            ("kraken", kraken),
            ("simulated", symbol),
        ):
            if external:
                Mapping.objects.get_or_create(symbol=row, source=sources[slug], defaults={"external_id": external})


def unseed(apps, schema_editor):
    apps.get_model("prices", "SymbolMapping").objects.all().delete()
    apps.get_model("prices", "Source").objects.filter(slug__in=[s[0] for s in SOURCES]).delete()


class Migration(migrations.Migration):
    dependencies = [("prices", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
