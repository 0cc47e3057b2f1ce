"""Routes of /api/alerts/."""

from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.RuleListView.as_view(), name="list"),
    path("<int:rule_id>/", views.RuleDetailView.as_view(), name="detail"),
]
