"""Admin: staff create, browse, change, deactivate and delete rules (through the engine
and the services, with the API's validation, so every engine's index follows)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .conf import alert_settings
from .engine import get_engine
from .errors import InvalidRule
from .models import AlertRule
from .services.rules import alert_rule_delete, alert_rule_update
from .validation import validate_rule

#: What may change after creation (the rest is the rule's place in every index).
MUTABLE = ("active", "mode", "cooldown", "expires_at")


#: What staff fill in to create a rule for a user (as the API takes it).
CREATE = ("user", "kind", "symbol", "threshold", "direction", "window", "mode", "cooldown", "expires_at")


class AlertRuleCreateForm(forms.ModelForm[AlertRule]):
    """A new rule, validated exactly as the API validates one (known symbols included)."""

    class Meta:
        model = AlertRule
        fields = list(CREATE)
        help_texts = {
            "window": "Percent moves only: the period the move is measured over (e.g. 01:00:00).",
            "cooldown": "Repeat mode: the quiet time after each trigger. Empty: the default.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["cooldown"].required = False
        self.fields["cooldown"].initial = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        fields = {name: data.get(name) for name in CREATE if name != "user"}
        try:
            validate_rule(now=timezone.now(), known_symbols=get_engine().prices.known_symbols(), **fields)
        except InvalidRule as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        limit = alert_settings().max_rules_per_user
        user = data.get("user")
        if user is not None and AlertRule.objects.filter(user=user, deleted_at__isnull=True).count() >= limit:
            self.add_error("user", f"this user already has {limit} alert rules (the limit)")
        return data


class AlertRuleForm(forms.ModelForm[AlertRule]):
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
class AlertRuleAdmin(admin.ModelAdmin[AlertRule]):
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

    raw_id_fields = ("user",)

    def get_form(self, request: HttpRequest, obj: AlertRule | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = AlertRuleCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: AlertRule | None = None) -> Any:
        return CREATE if obj is None else super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: AlertRule | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: AlertRule, form: Any, change: bool) -> None:
        if not change:
            # Through the engine, as the API does: the user's limit, the index, the revision.
            rule = get_engine().register_alert(
                user_id=obj.user_id, **{name: form.cleaned_data.get(name) for name in CREATE if name != "user"}
            )
            obj.pk, obj._state.adding = rule.pk, False
            return
        alert_rule_update(
            user_id=obj.user_id,
            rule_id=obj.pk,
            changes={k: getattr(obj, k) for k in form.changed_data if k in MUTABLE},
            now=timezone.now(),
        )

    def delete_model(self, request: HttpRequest, obj: AlertRule) -> None:
        alert_rule_delete(user_id=obj.user_id, rule_id=obj.pk, now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        for rule in queryset.filter(deleted_at__isnull=True):
            alert_rule_delete(user_id=rule.user_id, rule_id=rule.pk, now=timezone.now())

    @admin.action(description="Deactivate selected rules")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        for rule in queryset.filter(deleted_at__isnull=True, active=True):
            alert_rule_update(user_id=rule.user_id, rule_id=rule.pk, changes={"active": False}, now=timezone.now())

    @admin.action(description="Delete selected rules")
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        self.delete_queryset(request, queryset)
