"""URL configuration: admin, accounts, API, schema/docs, health and metrics, dashboard."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from notifications import views as notification_views
from realtime_project.accounts import tokens as account_tokens
from realtime_project.feeds_admin import feeds_admin_view
from realtime_project.gateway import views as gateway_views

# The admin index links the feed runner's page (live inputs are not models).
admin.site.index_template = "admin/realtime_index.html"

urlpatterns = [
    path("admin/feeds/", admin.site.admin_view(feeds_admin_view), name="admin-feeds"),
    path("admin/", admin.site.urls),
    path("accounts/", include("realtime_project.accounts.urls")),
    path("api/auth/token/", account_tokens.TokenObtainView.as_view(), name="auth-token"),
    path("api/auth/token/revoke/", account_tokens.TokenRevokeView.as_view(), name="auth-token-revoke"),
    path("healthz", gateway_views.healthz, name="healthz"),
    path("readyz", gateway_views.readyz, name="readyz"),
    path("metrics", gateway_views.metrics, name="metrics"),
    path("api/ws-ticket/", gateway_views.WsTicketView.as_view(), name="ws-ticket"),
    path("api/publish/", gateway_views.PublishView.as_view(), name="publish"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/prices/", include("prices.urls")),
    path("api/wallets/", include("wallets.urls")),
    path("api/notifications/", include("notifications.urls")),
    path("api/alerts/", include("alerts.urls")),
    # Web Push's service worker, at the root so its scope is the whole site.
    path("sw.js", notification_views.service_worker, name="service-worker"),
    path("notifications/preferences/", notification_views.preferences_page, name="notifications-preferences"),
    path("notifications/unsubscribe/<str:token>/", notification_views.unsubscribe, name="notifications-unsubscribe"),
    path("", gateway_views.dashboard, name="dashboard"),
]

# A URL under /api/ that matches no route (a malformed path parameter) is a JSON 404.
handler404 = "realtime_project.api_errors.not_found"
