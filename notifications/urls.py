"""Routes of /api/notifications/ (ids are `n:123` or `a:45`)."""

from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.NotificationListView.as_view(), name="list"),
    path("unread-count/", views.UnreadCountView.as_view(), name="unread-count"),
    path("read-all/", views.MarkAllReadView.as_view(), name="read-all"),
    path("<str:notification_id>/read/", views.MarkReadView.as_view(), name="read"),
    path("<str:notification_id>/dismiss/", views.DismissView.as_view(), name="dismiss"),
]
