"""Admin: staff write announcements here (validated by the service's rules) and browse
notifications. Saving schedules publication; the admin holds no rules of its own."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from .errors import InvalidAnnouncement, InvalidNotification
from .models import Announcement, Delivery, DeliverySettings, Notification, PushSubscription, TypeDefault
from .services.announcements import announcement_schedule, announcement_validate
from .services.notifications import notification_send
from .validation import NotificationSpec


class DeliveryInline(admin.TabularInline[Delivery, Notification]):
    """The notification's delivery record: one row per channel (per device for push)."""

    model = Delivery
    extra = 0
    can_delete = False
    fields = ("channel", "state", "reason", "subscription", "attempts", "due_at", "sent_at", "delivered_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


#: What staff fill in to send a notification to a user.
SEND = ("user", "type", "priority", "title", "body", "data")


class NotificationSendForm(forms.ModelForm[Notification]):
    """A new notification, validated by the service's spec (type, priority, title)."""

    class Meta:
        model = Notification
        fields = list(SEND)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                self.spec = NotificationSpec(**{name: data.get(name) or _EMPTY[name] for name in SEND[1:]})
            except InvalidNotification as exc:
                self.add_error(None, str(exc))
        return data


_EMPTY: dict[str, Any] = {"type": "", "priority": "medium", "title": "", "body": "", "data": {}}


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin[Notification]):
    """Browse notifications; one added here is sent like any other (stored, delivered live
    to the user's open sockets, then push and email by their preferences)."""

    list_display = ("title", "type", "priority", "user", "created_at", "read_at", "dismissed_at")
    list_filter = ("type", "priority")
    search_fields = ("title", "user__username", "dedupe_key")
    raw_id_fields = ("user",)
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = NotificationSendForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return SEND if obj is None else super().get_fields(request, obj)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.inlines

    def save_model(self, request: HttpRequest, obj: Notification, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        result = notification_send(user_id=obj.user_id, spec=form.spec, now=timezone.now())
        if result.notification is None:  # low priority: it waits in the digest window
            messages.info(request, "Low priority: the notification joins the user's next digest.")
            return
        obj.pk, obj._state.adding = result.notification.pk, False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None if obj.pk is None else super().log_addition(request, obj, message)

    def response_add(self, request: HttpRequest, obj: Notification, post_url_continue: str | None = None) -> Any:
        if obj.pk is None:
            return HttpResponseRedirect(reverse("admin:notifications_notification_changelist"))
        return super().response_add(request, obj, post_url_continue)


class AnnouncementForm(forms.ModelForm[Announcement]):
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
class AnnouncementAdmin(admin.ModelAdmin[Announcement]):
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


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin[Delivery]):
    """Every delivery attempt's outcome: filter by channel and state to see what failed and why."""

    list_display = ("id", "public_id", "user", "channel", "state", "reason", "attempts", "created_at", "sent_at")
    list_filter = ("channel", "state")
    search_fields = ("user__username", "reason")
    raw_id_fields = ("notification", "announcement", "user", "subscription")
    readonly_fields = [f.name for f in Delivery._meta.fields]
    date_hierarchy = "created_at"
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin[PushSubscription]):
    """Users' devices (expired ones are removed when the push service answers 404/410)."""

    list_display = ("id", "user", "device", "service_host", "created_at", "last_success_at", "failures")
    search_fields = ("user__username", "device", "endpoint")
    raw_id_fields = ("user",)
    readonly_fields = ("endpoint", "p256dh", "auth", "created_at", "last_success_at", "last_failure_at", "failures")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(TypeDefault)
class TypeDefaultAdmin(admin.ModelAdmin[TypeDefault]):
    """Default channels per notification type, for users who have not chosen themselves."""

    list_display = ("type", "in_app", "push", "email", "updated_at")
    list_editable = ("in_app", "push", "email")


@admin.register(DeliverySettings)
class DeliverySettingsAdmin(admin.ModelAdmin[DeliverySettings]):
    list_display = ("user", "time_zone", "quiet_start", "quiet_end", "muted_until", "email_digest")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
