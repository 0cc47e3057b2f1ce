"""Env PRICES_STREAM_URLS points every venue stream elsewhere at once (tests, staging, an
operator's relay); a wrong value stops the process with a clear message."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from prices.conf import prices_settings, stream_urls_from_env
from prices.feeds import PricesFeed
from prices.models import Source, Symbol
from prices.selectors import stream_plan
from realtime_project.appsettings import reload_all
from tests.support.servers import ROOT, server_env

from .streamkit import until
from .venues import FakeVenue

VALID = {"binance": "ws://127.0.0.1:9001/stream", "okx": "wss://relay.example/okx"}


def test_the_override_is_a_json_object_of_kind_to_websocket_url() -> None:
    assert stream_urls_from_env(json.dumps(VALID)) == VALID
    assert stream_urls_from_env("") == {} and stream_urls_from_env("  ") == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{binance: ws://x}", "PRICES_STREAM_URLS is not JSON"),
        ('["ws://127.0.0.1:9001/stream"]', "must be a JSON object"),
        ('{"coingecko": "ws://127.0.0.1:9001"}', "no stream for ['coingecko']"),
        ('{"binance": "http://127.0.0.1:9001/stream"}', "must be a ws:// or wss:// URL"),
        ('{"kraken": 9001}', "must be a ws:// or wss:// URL"),
    ],
)
def test_a_wrong_override_is_refused_with_a_clear_message(value: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        stream_urls_from_env(value)
    assert message in str(caught.value)


@pytest.mark.django_db
def test_the_override_wins_over_the_rows_and_the_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PRICES = {"LIVE_SOURCES": True, "STREAM_URLS": {"kraken": "ws://settings.example/v2"}}
    Source.objects.filter(kind="binance").update(stream_url="ws://row.example/stream")
    Source.objects.filter(kind="okx").update(streaming=False)
    monkeypatch.delenv("PRICES_STREAM_URLS", raising=False)

    def urls() -> dict[str, str | None]:
        return {s.kind: s.stream_url for s in stream_plan(prices_settings()).sources}

    before = urls()
    assert before["binance"] == "ws://row.example/stream"  # the row's own URL
    assert before["kraken"] == "ws://settings.example/v2"  # PRICES['STREAM_URLS']
    assert before["coinbase"] == "wss://ws-feed.exchange.coinbase.com"  # the venue's
    assert before["okx"] is None and before["coingecko"] is None  # not streamed

    override = {"binance": "ws://127.0.0.1:9001/stream", "kraken": "ws://127.0.0.1:9003/v2", "okx": "ws://x/okx"}
    monkeypatch.setenv("PRICES_STREAM_URLS", json.dumps(override))
    reload_all()  # the environment is read once per process
    after = urls()
    assert after["binance"] == override["binance"] and after["kraken"] == override["kraken"]
    assert after["coinbase"] == before["coinbase"]  # a kind it does not name keeps its URL
    assert after["okx"] is None  # a source switched off stays off


@pytest.fixture
def binance() -> Iterator[FakeVenue]:
    fake = FakeVenue("binance").start()
    yield fake
    fake.stop()


@pytest.mark.django_db(transaction=True)
async def test_the_feed_streams_from_the_overridden_url(
    settings: Any, monkeypatch: pytest.MonkeyPatch, binance: FakeVenue
) -> None:
    def configure() -> None:
        Symbol.objects.exclude(symbol__in=["BTC", "ETH"]).update(active=False)
        Source.objects.exclude(kind="binance").update(enabled=False)
        # The row points at a port where nothing listens: only the override can work.
        Source.objects.filter(kind="binance").update(
            stream_url="ws://127.0.0.1:9/stream", base_url="http://127.0.0.1:9"
        )

    await asyncio.to_thread(configure)
    settings.PRICES = {"LIVE_SOURCES": True, "SIMULATED": False, "MIN_SOURCES": 1}
    monkeypatch.setenv("PRICES_STREAM_URLS", json.dumps({"binance": binance.url}))
    reload_all()  # the environment is read once per process
    binance.set_price("BTCUSDT", 97_000.0)
    binance.set_price("ETHUSDT", 3_500.0)
    feed = PricesFeed()
    task = asyncio.create_task(feed.run())
    try:
        await until(lambda: binance.subscribed() == {"BTCUSDT", "ETHUSDT"}, "subscribed at the override", timeout=30)
        binance.tick("BTCUSDT", 97_123.0)
        await until(
            lambda: (
                feed.live is not None
                and (p := feed.live.aggregator.get_price("BTC")) is not None
                and p.price == 97_123.0
            ),
            "the overridden venue's tick aggregated",
        )
        assert feed.health()["venues"]["binance"]["connected"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_wrong_override_fails_the_system_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICES_STREAM_URLS", '{"binance": "http://nope"}')
    reload_all()  # the environment is read once per process
    with pytest.raises(SystemCheckError, match=r"prices\.E001.*must be a ws:// or wss:// URL"):
        call_command("check")


def test_the_feed_process_refuses_to_start_with_a_wrong_override() -> None:
    env = server_env(extra={"PRICES_STREAM_URLS": '{"binanse": "ws://127.0.0.1:9001/stream"}'})
    done = subprocess.run(
        [sys.executable, "manage.py", "feeds", "--only", "prices"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "prices.E001" in done.stderr and "no stream for ['binanse']" in done.stderr, done.stderr[-2000:]
