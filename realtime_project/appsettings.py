"""`AppSettings`: one namespaced dict setting per app, with documented defaults.

Every app (and the gateway) declares its defaults once and reads them through one
object, in the shape of Django REST framework's `api_settings`::

    PRICES = AppSettings("PRICES", DEFAULTS, env_prefix="PRICES_")
    PRICES.STALE_AFTER                    # one value
    PRICES.build(_typed)                  # a typed, frozen view, built once per reload

Precedence, lowest first (the same for every app; docs/deployment.md "Configuration"):

1. the default declared in the app's `conf.py` (`defaults` may be a function of other
   Django settings, e.g. `EMBEDDED`);
2. the environment variable `<env_prefix><KEY>` (or the name given in `env_names`),
   parsed by the type of the default: bool `1/true/yes/on` (anything else is false),
   int, float, a comma-separated list, JSON for a dict, text otherwise; an empty
   variable counts as unset;
3. the key in the Django setting `<name>` (a dict), which always wins.

A dict-valued setting is merged one level over its default (`{"BASE_URLS": {"binance":
...}}` changes one URL, not all). A key the defaults do not know is refused with a
ValueError (a typo must not pass silently).

Values are read on first use and kept until Django's `setting_changed` signal fires
(`override_settings` and pytest-django's `settings` fixture send it), when every
`AppSettings` reloads: defaults may derive from other settings. The environment of a
process is fixed at start; a test that changes it calls `reload()` (or `reload_all()`).
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.signals import setting_changed

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})

_instances: weakref.WeakSet[AppSettings] = weakref.WeakSet()
_instances_lock = threading.Lock()


def parse_env(name: str, raw: str, default: Any) -> Any:
    """The environment variable `name`'s text `raw` as a value of the default's type."""
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in _TRUE
        if isinstance(default, int):
            try:
                return int(raw)
            except ValueError:
                return int(float(raw))
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, dict):
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
        if isinstance(default, list | tuple):
            return [item.strip() for item in raw.split(",") if item.strip()]
    except ValueError as exc:
        raise ValueError(f"env {name}={raw!r} is not a {type(default).__name__} ({exc})") from None
    return raw


class AppSettings:
    """The setting `name` over `defaults` and `<env_prefix><KEY>` variables (module docstring)."""

    def __init__(
        self,
        name: str,
        defaults: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        env_prefix: str,
        *,
        env_names: Mapping[str, str | None] | None = None,
    ) -> None:
        """`env_names` renames a key's variable (kept for compatibility) or, with None,
        gives it none (a key with its own, validated variable)."""
        self._name = name
        self._defaults = defaults
        self._env_prefix = env_prefix
        self._env_names = dict(env_names or {})
        self._values: dict[str, Any] | None = None
        self._built: dict[Callable[..., Any], Any] = {}
        with _instances_lock:
            _instances.add(self)

    @property
    def name(self) -> str:
        return self._name

    def env_name(self, key: str) -> str | None:
        """The environment variable of `key` (None: it has none)."""
        return self._env_names.get(key, f"{self._env_prefix}{key}")

    def defaults(self) -> dict[str, Any]:
        return dict(self._defaults() if callable(self._defaults) else self._defaults)

    def values(self) -> Mapping[str, Any]:
        """Every key's value, merged (read once per reload)."""
        values = self._values
        if values is None:
            values = self._values = self._merge()
        return values

    def build(self, make: Callable[[Mapping[str, Any]], T]) -> T:
        """`make(values)`, kept until the next reload (a typed view: `make` is its builder)."""
        try:
            return cast(T, self._built[make])  # `make` built it
        except KeyError:
            value = self._built[make] = make(self.values())
            return value

    def reload(self) -> None:
        self._values = None
        self._built = {}

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self.values()[key]
        except KeyError:
            raise AttributeError(f"no {self._name} setting {key!r}") from None

    def _merge(self) -> dict[str, Any]:
        merged = self.defaults()
        for key, default in merged.items():
            env = self.env_name(key)
            raw = os.environ.get(env) if env else None
            if raw:
                merged[key] = _merge_one(default, parse_env(env or key, raw, default))
        user = getattr(settings, self._name, None) or {}
        unknown = set(user) - set(merged)
        if unknown:
            raise ValueError(f"unknown {self._name} settings: {sorted(unknown)}")
        for key, value in user.items():
            merged[key] = _merge_one(merged[key], value)
        return merged


def _merge_one(current: Any, value: Any) -> Any:
    if isinstance(current, dict) and isinstance(value, dict):
        return {**current, **value}
    return value


def reload_all() -> None:
    """Reload every `AppSettings` (a test that changed the environment)."""
    with _instances_lock:
        instances = list(_instances)
    for instance in instances:
        instance.reload()


def _on_setting_changed(**kwargs: Any) -> None:
    reload_all()


setting_changed.connect(_on_setting_changed, dispatch_uid="realtime_project.appsettings")
