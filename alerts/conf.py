"""The `ALERTS` setting: documented defaults, overridable by `ALERTS_<KEY>` env vars and
`settings.ALERTS` (in that order: `realtime_project.appsettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from realtime_project.appsettings import AppSettings

DEFAULTS: dict[str, Any] = {
    # Rules a user may have (active or not, not deleted): bounds index memory and abuse.
    "MAX_RULES_PER_USER": 100,
    # Cooldown bounds in seconds; the default for repeating rules avoids a fire per tick.
    "DEFAULT_COOLDOWN": 3_600,
    "MAX_COOLDOWN": 30 * 24 * 3_600,
    # Percent-move windows: at least a minute (below that it is noise), at most 30 days
    # (what the prices app keeps history for).
    "MIN_WINDOW": 60,
    "MAX_WINDOW": 30 * 24 * 3_600,
    # Largest percent move a rule may ask for.
    "MAX_PERCENT": 1_000,
    # Portfolio values need wallet balances (a database read per user): evaluated at
    # most this often, not on every tick.
    "PORTFOLIO_INTERVAL": 30.0,
    # The engine re-reads everything (not just the changes) at least this often.
    "FULL_RELOAD_SECONDS": 3_600.0,
}

ALERTS = AppSettings("ALERTS", DEFAULTS, env_prefix="ALERTS_")


@dataclass(frozen=True)
class AlertSettings:
    max_rules_per_user: int
    default_cooldown: int
    max_cooldown: int
    min_window: int
    max_window: int
    max_percent: float
    portfolio_interval: float
    full_reload_seconds: float


def alert_settings() -> AlertSettings:
    return ALERTS.build(_alert_settings)


def _alert_settings(merged: Mapping[str, Any]) -> AlertSettings:
    return AlertSettings(
        max_rules_per_user=int(merged["MAX_RULES_PER_USER"]),
        default_cooldown=int(merged["DEFAULT_COOLDOWN"]),
        max_cooldown=int(merged["MAX_COOLDOWN"]),
        min_window=int(merged["MIN_WINDOW"]),
        max_window=int(merged["MAX_WINDOW"]),
        max_percent=float(merged["MAX_PERCENT"]),
        portfolio_interval=float(merged["PORTFOLIO_INTERVAL"]),
        full_reload_seconds=float(merged["FULL_RELOAD_SECONDS"]),
    )
