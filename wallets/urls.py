"""Routes of /api/wallets/."""

from django.urls import URLPattern, path

from . import views

urlpatterns: list[URLPattern] = [
    path("", views.WalletListView.as_view(), name="wallets-list"),
    path("<int:wallet_id>/", views.WalletDetailView.as_view(), name="wallets-detail"),
    path("chains/", views.ChainsView.as_view(), name="wallets-chains"),
    path("challenge/", views.ChallengeView.as_view(), name="wallets-challenge"),
    path("verify/", views.VerifyView.as_view(), name="wallets-verify"),
    path("activity/", views.ActivityView.as_view(), name="wallets-activity"),
    path("transactions/", views.TransactionWatchView.as_view(), name="wallets-transactions"),
    path(
        "transactions/<int:chain_id>/<str:tx_hash>/",
        views.TransactionDetailView.as_view(),
        name="wallets-transaction",
    ),
]
