"""OpenAPI shapes of the REST endpoints (documentation only: input is validated by
`validation.py`, shared with the socket and the engine)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .choices import Direction, Kind, Mode


class RuleIn(serializers.Serializer[dict[str, Any]]):
    kind = serializers.ChoiceField(choices=Kind.choices)
    symbol = serializers.CharField(required=False, help_text="not for portfolio kinds")
    threshold = serializers.DecimalField(max_digits=30, decimal_places=10)
    direction = serializers.ChoiceField(choices=Direction.choices, required=False)
    window = serializers.IntegerField(required=False, help_text="seconds, percent_move only")
    cooldown = serializers.IntegerField(required=False, help_text="seconds")
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    expires_at = serializers.IntegerField(required=False, help_text="ms since the epoch (or ISO 8601)")


class RulePatch(serializers.Serializer[dict[str, Any]]):
    active = serializers.BooleanField(required=False)
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    cooldown = serializers.IntegerField(required=False)
    expires_at = serializers.IntegerField(required=False, allow_null=True)


class RuleOut(serializers.Serializer[dict[str, Any]]):
    """A rule as the API returns it (`payloads.rule_payload`): numbers are numbers, and
    what a rule may not have is null."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    symbol = serializers.CharField(allow_null=True, help_text="null for portfolio kinds")
    threshold = serializers.FloatField()
    direction = serializers.ChoiceField(choices=Direction.choices)
    window = serializers.IntegerField(allow_null=True, help_text="seconds, percent_move only")
    cooldown = serializers.IntegerField(help_text="seconds")
    mode = serializers.ChoiceField(choices=Mode.choices)
    expires_at = serializers.IntegerField(allow_null=True, help_text="ms since the epoch")
    active = serializers.BooleanField()
    last_triggered_at = serializers.IntegerField(allow_null=True)
    last_trigger_price = serializers.FloatField(allow_null=True)
    trigger_count = serializers.IntegerField()
    created_at = serializers.IntegerField()


class RuleEnvelope(serializers.Serializer[dict[str, Any]]):
    rule = RuleOut()


class RuleList(serializers.Serializer[dict[str, Any]]):
    rules = RuleOut(many=True)


class Deleted(serializers.Serializer[dict[str, Any]]):
    deleted = serializers.BooleanField()


class AlertErrorOut(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)
