"""URLs of site accounts under /accounts/: allauth's pages, Sign-In with Ethereum."""

from __future__ import annotations

from django.urls import include, path

from . import siwe

urlpatterns = [
    path("siwe/challenge/", siwe.challenge, name="siwe-challenge"),
    path("siwe/login/", siwe.login, name="siwe-login"),
    path("", include("allauth.urls")),
]
