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
