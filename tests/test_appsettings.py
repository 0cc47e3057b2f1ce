"""`AppSettings`: defaults, then the environment, then the Django setting; reloads on change."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from realtime_project.appsettings import AppSettings, reload_all

DEFAULTS: dict[str, Any] = {
    "RATE": 2.0,
    "COUNT": 3,
    "ON": False,
    "NAME": "x",
    "HOSTS": ["a"],
    "URLS": {"one": "u1", "two": "u2"},
    "RENAMED": 1,
    "NO_ENV": "d",
}


def make() -> AppSettings:
    return AppSettings("TESTAPP", DEFAULTS, env_prefix="TESTAPP_", env_names={"RENAMED": "OLD_NAME", "NO_ENV": None})


def test_defaults_without_setting_or_environment() -> None:
    conf = make()
    assert conf.RATE == 2.0 and conf.COUNT == 3 and conf.ON is False and conf.HOSTS == ["a"]
    with pytest.raises(AttributeError, match="no TESTAPP setting 'MISSING'"):
        conf.MISSING  # noqa: B018


def test_environment_is_parsed_by_the_type_of_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTAPP_RATE", "0.5")
    monkeypatch.setenv("TESTAPP_COUNT", "7")
    monkeypatch.setenv("TESTAPP_ON", "yes")
    monkeypatch.setenv("TESTAPP_NAME", "")  # empty: unset
    monkeypatch.setenv("TESTAPP_HOSTS", "b, c,")
    monkeypatch.setenv("TESTAPP_URLS", '{"two": "env2"}')
    monkeypatch.setenv("OLD_NAME", "9")
    monkeypatch.setenv("TESTAPP_NO_ENV", "ignored")
    conf = make()
    assert (conf.RATE, conf.COUNT, conf.ON, conf.NAME, conf.HOSTS) == (0.5, 7, True, "x", ["b", "c"])
    assert conf.URLS == {"one": "u1", "two": "env2"}
    assert conf.RENAMED == 9 and conf.NO_ENV == "d"
    monkeypatch.setenv("TESTAPP_COUNT", "many")
    conf.reload()
    with pytest.raises(ValueError, match="TESTAPP_COUNT='many' is not a int"):
        conf.COUNT  # noqa: B018


def test_the_django_setting_wins_and_merges_dicts_one_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTAPP_RATE", "0.5")
    monkeypatch.setenv("TESTAPP_COUNT", "7")
    with override_settings(TESTAPP={"RATE": 9.0, "URLS": {"one": "s1"}}):
        conf = make()
        assert conf.RATE == 9.0 and conf.COUNT == 7
        assert conf.URLS == {"one": "s1", "two": "u2"}


def test_override_settings_reloads_and_typed_views_follow() -> None:
    conf = make()
    calls: list[float] = []

    def typed(values: Any) -> float:
        calls.append(values["RATE"])
        return float(values["RATE"]) * 10

    assert conf.build(typed) == 20.0 and conf.build(typed) == 20.0 and calls == [2.0]
    with override_settings(TESTAPP={"RATE": 3.0}):
        assert conf.RATE == 3.0 and conf.build(typed) == 30.0
    assert conf.RATE == 2.0 and conf.build(typed) == 20.0


def test_defaults_may_derive_from_other_settings() -> None:
    from django.conf import settings

    conf = AppSettings("TESTAPP", lambda: {"MODE": "embedded" if settings.EMBEDDED else "production"}, "TESTAPP_")
    with override_settings(EMBEDDED=True):
        assert conf.MODE == "embedded"
    with override_settings(EMBEDDED=False):
        assert conf.MODE == "production"


def test_an_unknown_key_is_refused() -> None:
    with override_settings(TESTAPP={"RAT": 1}):
        with pytest.raises(ValueError, match=r"unknown TESTAPP settings: \['RAT'\]"):
            make().values()


def test_reload_all_reads_a_changed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = make()
    assert conf.NAME == "x"
    monkeypatch.setenv("TESTAPP_NAME", "y")
    assert conf.NAME == "x"  # read once per process (or per reload)
    reload_all()
    assert conf.NAME == "y"


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("REALTIME_GC_FREEZE", "0", lambda: _conf("realtime_project.gateway.conf").REALTIME.GC_FREEZE),
        (
            "REALTIME_DEFLATE_CONTEXT_TAKEOVER",
            "1",
            lambda: _conf("realtime_project.gateway.conf").REALTIME.DEFLATE_CONTEXT_TAKEOVER,
        ),
        ("SITE_URL", "https://example.org/", lambda: _conf("notifications.conf").notification_settings().site_url),
        (
            "NOTIFICATIONS_QUIET_URGENT",
            "0",
            lambda: _conf("notifications.conf").notification_settings().quiet_hours_urgent_breaks_through,
        ),
        (
            "WALLETS_DEV_CHAIN_INTERVAL",
            "7.5",
            lambda: _conf("wallets.conf").wallets_settings().dev_chain_activity_interval,
        ),
        ("ALERTS_MAX_RULES_PER_USER", "3", lambda: _conf("alerts.conf").alert_settings().max_rules_per_user),
        ("FEEDS_ONLY", "a, b", lambda: _conf("realtime_project.feeds").feed_settings().only),
    ],
)
def test_the_apps_variables_keep_their_names(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, read: Any
) -> None:
    monkeypatch.setenv(variable, value)
    reload_all()
    expected = {
        "REALTIME_GC_FREEZE": False,
        "REALTIME_DEFLATE_CONTEXT_TAKEOVER": True,
        "SITE_URL": "https://example.org",
        "NOTIFICATIONS_QUIET_URGENT": False,
        "WALLETS_DEV_CHAIN_INTERVAL": 7.5,
        "ALERTS_MAX_RULES_PER_USER": 3,
        "FEEDS_ONLY": ("a", "b"),
    }[variable]
    assert read() == expected


def test_every_app_refuses_an_unknown_key_and_lets_the_setting_win(monkeypatch: pytest.MonkeyPatch) -> None:
    from wallets.conf import wallets_settings

    monkeypatch.setenv("WALLETS_BATCH_BLOCKS", "5")
    reload_all()
    assert wallets_settings().batch_blocks == 5
    with override_settings(WALLETS={"BATCH_BLOCKS": 7, "CONFIRMATIONS": {"137": 128}}):
        conf = wallets_settings()
        assert conf.batch_blocks == 7 and conf.confirmations_for(137) == 128 and conf.confirmations_for(1) == 12
    with override_settings(WALLETS={"batch_blocks": 7}):  # keys are upper case, as in every app
        with pytest.raises(ValueError, match="unknown WALLETS settings"):
            wallets_settings()


def _conf(module: str) -> Any:
    import importlib

    return importlib.import_module(module)
