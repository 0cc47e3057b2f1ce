"""Admin: staff browse, change, deactivate and delete rules (through the services, so
every engine's index follows). Rules are created by users, not in the admin."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from . import services
from .conf import alert_settings
from .models import AlertRule

#: What may change after creation (the rest is the rule's place in every index).
MUTABLE = ("active", "mode", "cooldown", "expires_at")


class AlertRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    """The service's rules for the mutable fields, as form errors instead of a 500."""

    class Meta:
        model = AlertRule
        fields = list(MUTABLE)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        expires_at = data.get("expires_at")
        if "expires_at" in self.changed_data and expires_at is not None and expires_at <= timezone.now():
            self.add_error("expires_at", "expires_at must be in the future")
        cooldown = data.get("cooldown")
        limit = alert_settings().max_cooldown
        if cooldown is not None and not 0 <= cooldown.total_seconds() <= limit:
            self.add_error("cooldown", f"cooldown must be between 0 and {limit} seconds")
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = AlertRuleForm
    list_display = ("id", "user", "kind", "symbol", "threshold", "mode", "active", "last_triggered_at", "deleted_at")
    list_filter = ("kind", "mode", "active")
    search_fields = ("symbol", "user__username")
    readonly_fields = (
        "user",
        "kind",
        "symbol",
        "threshold",
        "direction",
        "window",
        "last_triggered_at",
        "last_trigger_price",
        "trigger_count",
        "next_allowed_at",
        "last_batch_ts",
        "claim",
        "revision",
        "deleted_at",
        "created_at",
        "updated_at",
    )
    fields = (*MUTABLE, *readonly_fields)
    actions = ["deactivate", "soft_delete"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Rules are created by users (API/socket), validated against known symbols.
        return False

    def save_model(self, request: HttpRequest, obj: AlertRule, form: Any, change: bool) -> None:
        services.alert_rule_update(
            user_id=obj.user_id,
            rule_id=obj.pk,
            changes={k: getattr(obj, k) for k in form.changed_data if k in MUTABLE},
            now=timezone.now(),
        )

    def delete_model(self, request: HttpRequest, obj: AlertRule) -> None:
        services.alert_rule_delete(user_id=obj.user_id, rule_id=obj.pk, now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        for rule in queryset.filter(deleted_at__isnull=True):
            services.alert_rule_delete(user_id=rule.user_id, rule_id=rule.pk, now=timezone.now())

    @admin.action(description="Deactivate selected rules")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        for rule in queryset.filter(deleted_at__isnull=True, active=True):
            services.alert_rule_update(
                user_id=rule.user_id, rule_id=rule.pk, changes={"active": False}, now=timezone.now()
            )

    @admin.action(description="Delete selected rules")
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        self.delete_queryset(request, queryset)
