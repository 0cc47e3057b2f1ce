"""Routes of /api/notifications/ (ids are `n:123` or `a:45`)."""

from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.NotificationListView.as_view(), name="list"),
    path("unread-count/", views.UnreadCountView.as_view(), name="unread-count"),
    path("read-all/", views.MarkAllReadView.as_view(), name="read-all"),
    path("preferences/", views.PreferencesView.as_view(), name="preferences"),
    path("push/", views.PushStatusView.as_view(), name="push"),
    path("push/subscriptions/", views.PushSubscriptionsView.as_view(), name="push-subscriptions"),
    path(
        "push/subscriptions/<int:subscription_id>/",
        views.PushSubscriptionDetailView.as_view(),
        name="push-subscription",
    ),
    path("push/unsubscribe/", views.PushUnsubscribeView.as_view(), name="push-unsubscribe"),
    path("push/receipt/", views.PushReceiptView.as_view(), name="push-receipt"),
    path("<str:notification_id>/read/", views.MarkReadView.as_view(), name="read"),
    path("<str:notification_id>/dismiss/", views.DismissView.as_view(), name="dismiss"),
]
