"""Fixtures of the prices tests: the fake exchanges and settings pointing at them."""

from __future__ import annotations

import importlib
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


@pytest.fixture
def seeded_defaults(transactional_db: None) -> None:
    """The default symbols, sources and mappings, as the data migration seeds them.

    A transactional test's flush empties every table; re-seeding explicitly (rather than
    `serialized_rollback`, which restores rows by primary key and collides on PostgreSQL
    with content types recreated after the flush) keeps these tests order-independent.
    """
    from django.apps import apps

    importlib.import_module("prices.migrations.0002_seed_defaults").seed(apps, None)
    importlib.import_module("prices.migrations.0003_streams").seed(apps, None)


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
