"""Routes of /api/notifications/ (ids are `n:123` or `a:45`)."""

from django.urls import path

from . import views, views_delivery

app_name = "notifications"

urlpatterns = [
    path("", views.NotificationListView.as_view(), name="list"),
    path("unread-count/", views.UnreadCountView.as_view(), name="unread-count"),
    path("read-all/", views.MarkAllReadView.as_view(), name="read-all"),
    path("preferences/", views_delivery.PreferencesView.as_view(), name="preferences"),
    path("push/", views_delivery.PushStatusView.as_view(), name="push"),
    path("push/subscriptions/", views_delivery.PushSubscriptionsView.as_view(), name="push-subscriptions"),
    path(
        "push/subscriptions/<int:subscription_id>/",
        views_delivery.PushSubscriptionDetailView.as_view(),
        name="push-subscription",
    ),
    path("push/unsubscribe/", views_delivery.PushUnsubscribeView.as_view(), name="push-unsubscribe"),
    path("push/receipt/", views_delivery.PushReceiptView.as_view(), name="push-receipt"),
    path("<str:notification_id>/read/", views.MarkReadView.as_view(), name="read"),
    path("<str:notification_id>/dismiss/", views.DismissView.as_view(), name="dismiss"),
]
