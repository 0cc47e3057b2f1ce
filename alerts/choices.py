"""Choices of the alerts app: rule kinds, directions and modes."""

from __future__ import annotations

from django.db import models


class Kind(models.TextChoices):
    PRICE_ABOVE = "price_above", "Price at or above"
    PRICE_BELOW = "price_below", "Price at or below"
    PRICE_CROSS = "price_cross", "Price crosses"
    PERCENT_MOVE = "percent_move", "Percent move within a window"
    PORTFOLIO_ABOVE = "portfolio_above", "Portfolio value at or above"
    PORTFOLIO_BELOW = "portfolio_below", "Portfolio value at or below"


class Direction(models.TextChoices):
    UP = "up", "Up"
    DOWN = "down", "Down"
    EITHER = "either", "Either"


class Mode(models.TextChoices):
    ONCE = "once", "Once"
    REPEAT = "repeat", "Repeat"


SYMBOL_KINDS = frozenset({Kind.PRICE_ABOVE, Kind.PRICE_BELOW, Kind.PRICE_CROSS, Kind.PERCENT_MOVE})
PORTFOLIO_KINDS = frozenset({Kind.PORTFOLIO_ABOVE, Kind.PORTFOLIO_BELOW})
DIRECTED_KINDS = frozenset({Kind.PRICE_CROSS, Kind.PERCENT_MOVE})
