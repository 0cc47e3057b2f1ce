"""OpenAPI shapes of the REST endpoints (documentation only: the payloads are built in
`payloads.py`, shared with the socket)."""

from __future__ import annotations

from rest_framework import serializers

from .types import NotificationType, Priority


class NotificationOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField(help_text="`n:<id>` personal, `a:<id>` announcement")
    type = serializers.ChoiceField(choices=NotificationType.choices)
    title = serializers.CharField()
    body = serializers.CharField()
    data = serializers.DictField()  # type: ignore[assignment]
    priority = serializers.ChoiceField(choices=Priority.choices)
    created_at = serializers.IntegerField(help_text="ms since the epoch")
    read_at = serializers.IntegerField(allow_null=True, help_text="ms since the epoch, or null")


class NotificationPage(serializers.Serializer):  # type: ignore[type-arg]
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = NotificationOut(many=True)


class UnreadCount(serializers.Serializer):  # type: ignore[type-arg]
    unread_count = serializers.IntegerField()


class NotificationError(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)
