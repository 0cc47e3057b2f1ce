"""OpenAPI shapes of the REST endpoints (documentation only: the payloads are built in
`payloads.py`, shared with the socket)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .choices import NotificationType, Priority


class NotificationOut(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="`n:<id>` personal, `a:<id>` announcement")
    type = serializers.ChoiceField(choices=NotificationType.choices)
    title = serializers.CharField()
    body = serializers.CharField()
    data = serializers.DictField()  # type: ignore[assignment]
    priority = serializers.ChoiceField(choices=Priority.choices)
    created_at = serializers.IntegerField(help_text="ms since the epoch")
    read_at = serializers.IntegerField(allow_null=True, help_text="ms since the epoch, or null")


class NotificationPage(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = NotificationOut(many=True)


class UnreadCount(serializers.Serializer[Any]):
    unread_count = serializers.IntegerField()


class NotificationError(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)


# --- delivery preferences and Web Push (issue #14) ----------------------------------------


class ChannelSwitches(serializers.Serializer[Any]):
    in_app = serializers.BooleanField(required=False)
    push = serializers.BooleanField(required=False)
    email = serializers.BooleanField(required=False)


class TypePreferences(ChannelSwitches):
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]


class QuietHours(serializers.Serializer[Any]):
    start = serializers.CharField(help_text="HH:MM in the user's time zone")
    end = serializers.CharField(help_text="HH:MM; before start: the window spans midnight")


class Preferences(serializers.Serializer[Any]):
    channels = serializers.ListField(child=serializers.CharField(), read_only=True)
    types = serializers.DictField(child=TypePreferences(), help_text="per notification type")
    time_zone = serializers.CharField(help_text="IANA name, e.g. Europe/Paris")
    quiet_hours = QuietHours(allow_null=True)
    muted_until = serializers.DateTimeField(allow_null=True)
    email_digest = serializers.BooleanField()


class PreferencesChange(serializers.Serializer[Any]):
    types = serializers.DictField(child=ChannelSwitches(), required=False, help_text='{"price_alert": {"push": false}}')
    time_zone = serializers.CharField(required=False)
    quiet_hours = QuietHours(required=False, allow_null=True)
    muted_until = serializers.DateTimeField(required=False, allow_null=True)
    mute_minutes = serializers.IntegerField(required=False, min_value=0, help_text="0 unmutes")
    email_digest = serializers.BooleanField(required=False)


class PushKeys(serializers.Serializer[Any]):
    p256dh = serializers.CharField(help_text="base64url P-256 point")
    auth = serializers.CharField(help_text="base64url, 16 bytes")


class PushSubscriptionIn(serializers.Serializer[Any]):
    """What `PushSubscription.toJSON()` gives in the browser."""

    endpoint = serializers.URLField()
    keys = PushKeys()
    expirationTime = serializers.IntegerField(required=False, allow_null=True)


class PushSubscriptionOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    device = serializers.CharField()
    service = serializers.CharField(help_text="the push service's host")
    created_at = serializers.DateTimeField()
    last_success_at = serializers.DateTimeField(allow_null=True)


class PushStatus(serializers.Serializer[Any]):
    enabled = serializers.BooleanField(help_text="false: the server has no VAPID key")
    public_key = serializers.CharField(allow_null=True, help_text="applicationServerKey (base64url)")
    subscriptions = PushSubscriptionOut(many=True)


class PushUnsubscribe(serializers.Serializer[Any]):
    endpoint = serializers.CharField()


class PushReceipt(serializers.Serializer[Any]):
    token = serializers.CharField()
    event = serializers.ChoiceField(choices=["shown", "clicked"])
