"""Admin: staff write announcements here (validated by the service's rules) and browse
notifications. Saving schedules publication; the admin holds no rules of its own."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone

from .errors import InvalidAnnouncement
from .models import Announcement, Notification
from .services.announcements import announcement_schedule, announcement_validate


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("title", "type", "priority", "user", "created_at", "read_at", "dismissed_at")
    list_filter = ("type", "priority")
    search_fields = ("title", "user__username", "dedupe_key")
    raw_id_fields = ("user",)
    date_hierarchy = "created_at"


class AnnouncementForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Announcement
        fields = ["title", "body", "priority", "audience", "chain_id", "publish_at", "expires_at"]
        help_texts = {
            "publish_at": "A time in the past publishes at once.",
            "chain_id": "Only for the audience 'users with a wallet on a chain' (e.g. 1, 137).",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk and self.instance.published_at is not None:
            raise forms.ValidationError("This announcement is already published and can no longer be changed.")
        try:
            announcement_validate(
                priority=data.get("priority") or "",
                audience=data.get("audience") or "",
                chain_id=data.get("chain_id"),
                publish_at=data.get("publish_at"),
                expires_at=data.get("expires_at"),
            )
        except InvalidAnnouncement as exc:
            field = "expires_at" if "expires_at" in str(exc) else "chain_id" if "chain" in str(exc) else None
            self.add_error(field, str(exc))
        return data


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = AnnouncementForm
    list_display = ("title", "audience", "priority", "publish_at", "published_at", "expires_at")
    list_filter = ("audience", "priority")
    search_fields = ("title",)
    readonly_fields = ("published_at", "created_by", "created_at")

    def save_model(self, request: HttpRequest, obj: Announcement, form: Any, change: bool) -> None:
        if not change:
            obj.created_by_id = getattr(request.user, "pk", None)
        super().save_model(request, obj, form, change)
        announcement_schedule(announcement_id=obj.pk, now=timezone.now())
        if obj.publish_at <= timezone.now():
            messages.info(request, "The announcement is being published now.")
