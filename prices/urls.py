"""`/api/prices/` routes."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import views

app_name = "prices"

urlpatterns: list[URLPattern] = [
    path("", views.LatestPricesView.as_view(), name="latest"),
    path("market/overview/", views.MarketOverviewView.as_view(), name="market-overview"),
    path("sources/", views.SourceHealthView.as_view(), name="sources"),
    path("<str:symbol>/", views.SymbolPriceView.as_view(), name="symbol"),
    path("<str:symbol>/history/", views.PriceHistoryView.as_view(), name="history"),
]
