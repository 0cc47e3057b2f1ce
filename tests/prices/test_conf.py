"""The PRICES setting: defaults by mode, env overrides, typos refused."""

from __future__ import annotations

from typing import Any

import pytest

from prices.conf import prices_settings
from realtime_project.appsettings import reload_all


def test_embedded_defaults_simulated_on_live_off(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRICES_SIMULATED", raising=False)
    monkeypatch.delenv("PRICES_LIVE_SOURCES", raising=False)
    settings.EMBEDDED = True
    conf = prices_settings()
    assert conf.simulated and not conf.live_sources and conf.min_sources == 1
    settings.EMBEDDED = False
    conf = prices_settings()
    assert not conf.simulated and conf.live_sources and conf.min_sources == 2


def test_env_and_setting_overrides(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICES_SIMULATED", "0")
    monkeypatch.setenv("PRICES_COINGECKO_API_KEY", "k")
    reload_all()  # the environment is read once per process
    settings.EMBEDDED = True
    settings.PRICES = {"BASE_URLS": {"binance": "https://data-api.binance.vision"}, "DEVIATION_BPS": 5}
    conf = prices_settings()
    assert not conf.simulated and conf.coingecko_api_key == "k" and conf.deviation_bps == 5
    assert conf.base_urls["binance"] == "https://data-api.binance.vision"
    assert conf.base_urls["kraken"] == "https://api.kraken.com"


def test_unknown_key_is_refused(settings: Any) -> None:
    settings.PRICES = {"DEVIATON_BPS": 5}
    with pytest.raises(ValueError, match="DEVIATON_BPS"):
        prices_settings()
