"""Admin for symbols, per-source mappings and sources (configuration and health)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .conf import prices_settings
from .health import STREAM_HEALTH_MAX_AGE
from .models import Candle, LatestPrice, MarketOverview, Source, Symbol, SymbolMapping
from .selectors import source_allowed
from .services.sources import source_reset_health, source_set_enabled

HEALTH_FIELDS = (
    "last_polled_at",
    "last_success_at",
    "last_error_at",
    "last_error",
    "last_error_detail",
    "consecutive_failures",
    "backoff_until",
    "total_polls",
    "total_failures",
    "quotes_accepted",
    "outliers",
    "problems",
    "stream_health",
    "reconciliation",
)


class MappingInline(admin.TabularInline[SymbolMapping, Symbol]):
    model = SymbolMapping
    extra = 0
    fields = ("source", "external_id", "active")


@admin.register(Symbol)
class SymbolAdmin(admin.ModelAdmin[Symbol]):
    list_display = ("symbol", "name", "active")
    list_filter = ("active",)
    search_fields = ("symbol", "name")
    inlines = [MappingInline]


@admin.register(SymbolMapping)
class SymbolMappingAdmin(admin.ModelAdmin[SymbolMapping]):
    list_display = ("symbol", "source", "external_id", "active")
    list_filter = ("source", "active")
    search_fields = ("symbol__symbol", "external_id")
    list_select_related = ("symbol", "source")


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin[Source]):
    list_display = (
        "slug",
        "kind",
        "enabled",
        "status",
        "stream",
        "poll_interval",
        "consecutive_failures",
        "last_success_at",
        "last_error",
        "backoff_until",
        "outliers",
    )
    list_editable = ("enabled",)
    list_filter = ("kind", "enabled")
    readonly_fields = HEALTH_FIELDS
    fieldsets = (
        (None, {"fields": ("slug", "kind", "name", "enabled", "base_url", "poll_interval", "max_requests")}),
        ("Stream", {"fields": ("streaming", "stream_url")}),
        ("Health (written by the tick and the feed process)", {"fields": HEALTH_FIELDS}),
    )
    actions = ["enable", "disable", "reset_health"]

    @admin.display(description="status")
    def status(self, obj: Source) -> str:
        if not obj.enabled:
            return "disabled"
        if not source_allowed(obj.kind, prices_settings()):
            return "off by settings"
        if obj.backoff_until and obj.backoff_until > timezone.now():
            return "backing off"
        if obj.consecutive_failures:
            return "failing"
        return "ok" if obj.last_success_at else "not polled yet"

    @admin.display(description="stream")
    def stream(self, obj: Source) -> str:
        """The stream as the feed process last reported it: live, REST fallback, or why not."""
        health = obj.stream_health or {}
        if not health:
            return "—"
        age = timezone.now().timestamp() - float(health.get("updated_at") or 0)
        if age > STREAM_HEALTH_MAX_AGE:
            return "no report (feed process stopped?)"
        if health.get("ok"):
            text = f"live, {health.get('reconnects', 0)} reconnects"
        else:
            text = f"{health.get('state', 'down')}: {health.get('last_error') or 'not live'}"[:80]
        if health.get("rest") == "fallback":
            text += " · REST fallback"
        disagreements = (obj.reconciliation or {}).get("disagreements")
        if disagreements:
            text += f" · REST disagrees on {len(disagreements)}"
        return text

    @admin.action(description="Enable selected sources")
    def enable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for slug in queryset.values_list("slug", flat=True):
            source_set_enabled(slug=slug, enabled=True)
        self.message_user(request, "Enabled; the next tick polls them.", messages.SUCCESS)

    @admin.action(description="Disable selected sources")
    def disable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for slug in queryset.values_list("slug", flat=True):
            source_set_enabled(slug=slug, enabled=False)
        self.message_user(request, "Disabled; their quotes leave the aggregate on the next tick.", messages.SUCCESS)

    @admin.action(description="Reset health (clear failures and backoff)")
    def reset_health(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for slug in queryset.values_list("slug", flat=True):
            source_reset_health(slug=slug)
        self.message_user(request, "Health reset.", messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LatestPrice)
class LatestPriceAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "price", "published_at")


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "start", "open", "high", "low", "close", "samples")
    list_filter = ("symbol",)
    date_hierarchy = "start"


@admin.register(MarketOverview)
class MarketOverviewAdmin(ReadOnlyAdmin):
    list_display = ("key", "published_at", "global_fetched_at")
