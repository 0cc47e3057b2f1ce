"""Input validation of the alerts app, shared by the REST API, the socket actions, the
admin and the engine: client input (a REST body or a socket frame) to `validate_rule`
arguments (`parse_create`, `parse_time`), and `validate_rule` itself.

Times arrive as ms since the epoch (the protocol's convention) or ISO 8601 strings;
durations (`window`, `cooldown`) as seconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

from .choices import DIRECTED_KINDS, PORTFOLIO_KINDS, Direction, Kind, Mode
from .conf import alert_settings
from .errors import InvalidRule

SYMBOL_RE = re.compile(r"^[A-Za-z0-9]{1,20}$")
#: Fields a client may send to create a rule.
FIELDS = {"kind", "symbol", "threshold", "direction", "window", "cooldown", "mode", "expires_at"}
#: Fits the model's DecimalField(max_digits=30, decimal_places=10).
MAX_THRESHOLD = Decimal("1e19")


@dataclass(frozen=True, slots=True)
class RuleInput:
    kind: str
    symbol: str
    threshold: Decimal
    direction: str
    window: timedelta | None
    cooldown: timedelta
    mode: str
    expires_at: datetime | None


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise InvalidRule(f"{field} must be a number", field=field)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRule(f"{field} must be a finite number", field=field)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidRule(f"{field} must be a number", field=field) from None
    if not number.is_finite():
        raise InvalidRule(f"{field} must be a finite number", field=field)
    if abs(number) >= MAX_THRESHOLD:
        raise InvalidRule(f"{field} is too large", field=field)
    # The column keeps 10 decimal places; round here so the index and the row agree.
    return number.quantize(Decimal("1e-10"))


def parse_seconds(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRule(f"{field} must be a number of seconds", field=field)
    if value != int(value):
        raise InvalidRule(f"{field} must be a whole number of seconds", field=field)
    return int(value)


def validate_rule(
    *,
    kind: Any,
    symbol: Any = "",
    threshold: Any,
    direction: Any = None,
    window: Any = None,
    cooldown: Any = None,
    mode: Any = None,
    expires_at: datetime | None = None,
    now: datetime,
    known_symbols: set[str],
) -> RuleInput:
    """Normalise a rule or raise `InvalidRule` naming the field. Nothing is written here."""
    conf = alert_settings()
    if kind not in Kind.values:
        raise InvalidRule(f"unknown kind; one of {', '.join(Kind.values)}", field="kind")
    if kind in PORTFOLIO_KINDS:
        if symbol not in (None, ""):
            raise InvalidRule("portfolio rules take no symbol", field="symbol")
        symbol = ""
    else:
        if not isinstance(symbol, str) or not SYMBOL_RE.match(symbol):
            raise InvalidRule("symbol must be 1-20 letters or digits", field="symbol")
        symbol = symbol.upper()
        if symbol not in known_symbols:
            raise InvalidRule(f"unknown symbol {symbol}", field="symbol")
    number = _decimal(threshold, "threshold")
    if kind in PORTFOLIO_KINDS:
        if number < 0:
            raise InvalidRule("a portfolio value cannot be negative", field="threshold")
    elif kind == Kind.PERCENT_MOVE:
        if number <= 0 or number > Decimal(str(conf.max_percent)):
            raise InvalidRule(f"a percent move must be > 0 and <= {conf.max_percent:g}", field="threshold")
    elif number <= 0:
        raise InvalidRule("a price threshold must be greater than 0", field="threshold")
    if direction in (None, ""):
        direction = Direction.EITHER
    if direction not in Direction.values:
        raise InvalidRule("direction must be up, down or either", field="direction")
    if kind not in DIRECTED_KINDS and direction != Direction.EITHER:
        raise InvalidRule(f"{kind} rules take no direction", field="direction")
    window_s = parse_seconds(window, "window")
    if kind == Kind.PERCENT_MOVE:
        if window_s is None:
            raise InvalidRule("a percent move needs a window (seconds)", field="window")
        if not conf.min_window <= window_s <= conf.max_window:
            raise InvalidRule(f"window must be between {conf.min_window} and {conf.max_window} seconds", field="window")
    elif window_s is not None:
        raise InvalidRule(f"{kind} rules take no window", field="window")
    mode = mode or Mode.ONCE
    if mode not in Mode.values:
        raise InvalidRule("mode must be once or repeat", field="mode")
    cooldown_s = parse_seconds(cooldown, "cooldown")
    if cooldown_s is None:
        cooldown_s = conf.default_cooldown if mode == Mode.REPEAT else 0
    if not 0 <= cooldown_s <= conf.max_cooldown:
        raise InvalidRule(f"cooldown must be between 0 and {conf.max_cooldown} seconds", field="cooldown")
    if expires_at is not None:
        if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
            raise InvalidRule("expires_at must be an aware datetime", field="expires_at")
        if expires_at <= now:
            raise InvalidRule("expires_at must be in the future", field="expires_at")
    return RuleInput(
        kind=kind,
        symbol=symbol,
        threshold=number,
        direction=direction,
        window=None if window_s is None else timedelta(seconds=window_s),
        cooldown=timedelta(seconds=cooldown_s),
        mode=mode,
        expires_at=expires_at,
    )


def parse_time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRule(f"{field} must be ms since the epoch or an ISO 8601 time", field=field)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 < value < 1e14:
            raise InvalidRule(f"{field} is out of range", field=field)
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None or parsed.tzinfo is None:
            raise InvalidRule(f"{field} must be an ISO 8601 time with a timezone", field=field)
        return parsed
    raise InvalidRule(f"{field} must be ms since the epoch or an ISO 8601 time", field=field)


def parse_create(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRule("expected an object")
    unknown = set(body) - FIELDS
    if unknown:
        raise InvalidRule(f"unknown field {sorted(unknown)[0]}", field=sorted(unknown)[0])
    for required in ("kind", "threshold"):
        if required not in body:
            raise InvalidRule(f"{required} is required", field=required)
    out = dict(body)
    out["expires_at"] = parse_time(body.get("expires_at"), "expires_at")
    out.setdefault("symbol", "")
    if out["symbol"] is None:
        out["symbol"] = ""
    return out
