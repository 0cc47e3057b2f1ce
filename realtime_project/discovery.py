"""Find the apps' optional submodules (`<app>/schedule.py`, `<app>/embedded.py`, ...)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

from django.apps import AppConfig
from django.apps import apps as django_apps


def app_submodules(name: str) -> Iterator[tuple[AppConfig, ModuleType]]:
    """Each installed app's `<app>.<name>` module, for the apps that have one.

    An app without it is skipped; an import error inside an existing module propagates.
    """
    for config in django_apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.{name}":
                raise
            continue
        yield config, module
