"""Fixtures of the prices tests: the fake exchanges and settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from prices.sources.base import SourceConfig

from .fakes import FakeExchanges


@pytest.fixture
def exchanges() -> Iterator[FakeExchanges]:
    fakes = FakeExchanges().start()
    yield fakes
    fakes.stop()


def config(exchanges: FakeExchanges, kind: str, **extra: Any) -> SourceConfig:
    # Generous for a loaded CI machine; the timeout test sets its own short one.
    extra = {"connect_timeout": 2.0, "read_timeout": 3.0, **extra}
    return SourceConfig(slug=kind, kind=kind, base_url=exchanges.base_urls()[kind], **extra)


@pytest.fixture
def live_prices(settings: Any, exchanges: FakeExchanges) -> Any:
    """PRICES settings for the real adapters against the fakes (no simulated market)."""
    settings.PRICES = {
        "BASE_URLS": exchanges.base_urls(),
        "LIVE_SOURCES": True,
        "SIMULATED": False,
        "MIN_SOURCES": 2,
        "READ_TIMEOUT": 3.0,
        "CONNECT_TIMEOUT": 2.0,
    }
    return settings
