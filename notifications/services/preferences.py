"""Delivery preferences: read and change a user's channels per type, quiet hours, mute, digest.

One shape for the REST API and the preferences page. A change is validated whole
before anything is written: an unknown type or channel, a bad time zone or time
changes nothing (`InvalidPreferences` names the field).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils.dateparse import parse_datetime

from .. import selectors
from ..choices import CHANNELS, TYPES, NotificationType
from ..errors import InvalidPreferences
from ..models import DeliverySettings, NotificationPreference
from ..policy import CHANNEL_ORDER, time_zones

#: Longest mute a user can ask for at once (a forgotten mute should not last forever).
MAX_MUTE_MINUTES = 30 * 24 * 60
TOP_LEVEL = frozenset({"types", "time_zone", "quiet_hours", "muted_until", "mute_minutes", "email_digest"})


def _hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def preferences_get(*, user_id: int) -> dict[str, Any]:
    policy = selectors.user_policy(user_id)
    row = DeliverySettings.objects.filter(user_id=user_id).first()
    quiet = None
    if policy.quiet_start is not None and policy.quiet_end is not None:
        quiet = {"start": _hhmm(policy.quiet_start), "end": _hhmm(policy.quiet_end)}
    return {
        "channels": list(CHANNEL_ORDER),
        "types": {
            t.value: {"label": t.label, **{c: policy.allows(t.value, c) for c in CHANNEL_ORDER}}
            for t in NotificationType
        },
        "time_zone": policy.time_zone,
        "quiet_hours": quiet,
        "muted_until": policy.muted_until.isoformat() if policy.muted_until else None,
        "email_digest": bool(row and row.email_digest),
    }


def _parse_time(value: Any, field: str) -> time:
    if not isinstance(value, str):
        raise InvalidPreferences(f"{field} must be a time like '22:00'", field=field)
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise InvalidPreferences(f"{field} must be a time like '22:00'", field=field) from None


def _validate(changes: Any, now: datetime) -> tuple[dict[tuple[str, str], bool], dict[str, Any]]:
    if not isinstance(changes, dict):
        raise InvalidPreferences("preferences must be an object")
    unknown = set(changes) - TOP_LEVEL
    if unknown:
        raise InvalidPreferences(f"unknown field(s): {sorted(unknown)}", field=sorted(unknown)[0])
    channels: dict[tuple[str, str], bool] = {}
    types = changes.get("types", {})
    if not isinstance(types, dict):
        raise InvalidPreferences("types must be an object of {type: {channel: bool}}", field="types")
    for type_, per_channel in types.items():
        if type_ not in TYPES:
            raise InvalidPreferences(
                f"unknown notification type {type_!r}", field=f"types.{type_}", code="unknown_type"
            )
        if not isinstance(per_channel, dict):
            raise InvalidPreferences(f"types.{type_} must be an object of {{channel: bool}}", field=f"types.{type_}")
        for channel, on in per_channel.items():
            if channel not in CHANNELS:
                raise InvalidPreferences(
                    f"unknown channel {channel!r}; one of {list(CHANNEL_ORDER)}",
                    field=f"types.{type_}.{channel}",
                    code="unknown_channel",
                )
            if not isinstance(on, bool):
                raise InvalidPreferences(f"types.{type_}.{channel} must be true or false", field=f"types.{type_}")
            channels[(type_, channel)] = on
    fields: dict[str, Any] = {}
    if "time_zone" in changes:
        tz = changes["time_zone"]
        if not isinstance(tz, str) or tz not in time_zones():
            raise InvalidPreferences("unknown time zone (an IANA name like 'Europe/Paris')", field="time_zone")
        fields["time_zone"] = tz
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"]
        if quiet is None:
            fields["quiet_start"] = fields["quiet_end"] = None
        elif isinstance(quiet, dict) and set(quiet) == {"start", "end"}:
            fields["quiet_start"] = _parse_time(quiet["start"], "quiet_hours.start")
            fields["quiet_end"] = _parse_time(quiet["end"], "quiet_hours.end")
            if fields["quiet_start"] == fields["quiet_end"]:
                raise InvalidPreferences("quiet hours must not start and end at the same time", field="quiet_hours")
        else:
            raise InvalidPreferences('quiet_hours must be null or {"start": "22:00", "end": "07:00"}', "quiet_hours")
    if "mute_minutes" in changes and "muted_until" in changes:
        raise InvalidPreferences("give mute_minutes or muted_until, not both", field="mute_minutes")
    if "mute_minutes" in changes:
        minutes = changes["mute_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes <= MAX_MUTE_MINUTES:
            raise InvalidPreferences(f"mute_minutes must be 0..{MAX_MUTE_MINUTES}", field="mute_minutes")
        fields["muted_until"] = now + timedelta(minutes=minutes) if minutes else None
    if "muted_until" in changes:
        raw = changes["muted_until"]
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
        if raw is not None and (parsed is None or parsed.tzinfo is None):
            raise InvalidPreferences("muted_until must be null or an ISO 8601 time with a zone", field="muted_until")
        if parsed is not None and parsed > now + timedelta(minutes=MAX_MUTE_MINUTES):
            raise InvalidPreferences("muted_until is too far ahead (30 days at most)", field="muted_until")
        fields["muted_until"] = parsed
    if "email_digest" in changes:
        if not isinstance(changes["email_digest"], bool):
            raise InvalidPreferences("email_digest must be true or false", field="email_digest")
        fields["email_digest"] = changes["email_digest"]
    return channels, fields


def preferences_update(*, user_id: int, changes: Any, now: datetime) -> dict[str, Any]:
    """Apply a partial change (validated first: all or nothing); returns the new state.

    A switch is stored as the user's own choice only when it differs from what they had
    (the page posts every switch): untouched switches keep following staff's defaults.
    """
    channels, fields = _validate(changes, now)
    with transaction.atomic():
        own = {
            (t, c): on
            for t, c, on in NotificationPreference.objects.filter(user_id=user_id).values_list(
                "type", "channel", "enabled"
            )
        }
        defaults = selectors.type_defaults() if channels else {}
        for (type_, channel), on in channels.items():
            if own.get((type_, channel), defaults[(type_, channel)]) == on:
                continue
            NotificationPreference.objects.update_or_create(
                user_id=user_id, type=type_, channel=channel, defaults={"enabled": on}
            )
        if fields:
            DeliverySettings.objects.update_or_create(user_id=user_id, defaults=fields)
    return preferences_get(user_id=user_id)


def channel_set(*, user_id: int, type: str, channel: str, enabled: bool) -> None:
    """One switch (the unsubscribe link uses it)."""
    NotificationPreference.objects.update_or_create(
        user_id=user_id, type=type, channel=channel, defaults={"enabled": enabled}
    )
