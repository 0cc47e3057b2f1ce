"""System checks: a wrong `PRICES` setting or `PRICES_*` env var stops every command at start.

Without this, `manage.py feeds` would start, its prices feed would raise on the bad value
and be restarted with backoff forever, while the operator believes the streams point
where `PRICES_STREAM_URLS` says. Django runs these checks before `feeds`, `serve`,
`migrate`… (`requires_system_checks`), so the process exits with the message instead.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from .conf import prices_settings


@register()
def prices_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    try:
        prices_settings()
    except ValueError as exc:
        return [
            Error(
                str(exc),
                hint="Fix settings.PRICES or the PRICES_* environment variables (docs/prices.md, Settings).",
                id="prices.E001",
            )
        ]
    return []
