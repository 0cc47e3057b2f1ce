"""HTML pages of notifications: the preferences page, one-click unsubscribe, the service worker."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from realtime_project.accounts.identity import signed_in_user_id

from .choices import DeliveryChannel, NotificationType
from .errors import InvalidPreferences
from .policy import CHANNEL_ORDER, time_zones
from .services.email import BadUnsubscribeLink, category_label, unsubscribe_apply, unsubscribe_check
from .services.preferences import preferences_get, preferences_update

SERVICE_WORKER = Path(__file__).resolve().parent / "static" / "notifications" / "sw.js"
#: Mute choices of the page (minutes; 0 unmutes).
MUTE_CHOICES = [(60, "1 hour"), (8 * 60, "8 hours"), (24 * 60, "1 day"), (7 * 24 * 60, "1 week")]


@functools.lru_cache(maxsize=1)
def _service_worker() -> bytes:
    return SERVICE_WORKER.read_bytes()


def service_worker(request: HttpRequest) -> HttpResponse:
    """`/sw.js`: served from the site root so its scope is the whole site."""
    response = HttpResponse(_service_worker(), content_type="text/javascript; charset=utf-8")
    # Browsers check for a new worker on navigation; never serve a stale one from cache.
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response


def _changes_from_form(post: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "types": {t: {c: post.get(f"{t}__{c}") == "on" for c in CHANNEL_ORDER} for t in NotificationType.values},
        "time_zone": post.get("time_zone", "UTC"),
        "email_digest": post.get("email_digest") == "on",
    }
    start, end = post.get("quiet_start", ""), post.get("quiet_end", "")
    changes["quiet_hours"] = {"start": start, "end": end} if start and end else None
    mute = post.get("mute", "keep")
    if mute == "off":
        changes["mute_minutes"] = 0
    elif mute.isdigit():
        changes["mute_minutes"] = int(mute)
    return changes


@login_required
@require_http_methods(["GET", "POST"])
def preferences_page(request: HttpRequest) -> HttpResponse:
    user_id = signed_in_user_id(request)
    error: InvalidPreferences | None = None
    if request.method == "POST":
        try:
            preferences_update(user_id=user_id, changes=_changes_from_form(request.POST), now=timezone.now())
        except InvalidPreferences as exc:
            error = exc
        else:
            return redirect(f"{request.path}?saved=1")
    current = preferences_get(user_id=user_id)
    rows = [{"type": t, **current["types"][t]} for t in NotificationType.values]
    context = {
        "prefs": current,
        "rows": rows,
        "channels": [(c, DeliveryChannel(c).label) for c in CHANNEL_ORDER],
        "time_zones": sorted(time_zones()),
        "mute_choices": MUTE_CHOICES,
        "saved": request.GET.get("saved") == "1" and error is None,
        "error": error,
    }
    return render(request, "notifications/preferences.html", context, status=400 if error else 200)


@csrf_exempt  # the signed token is the credential; mail clients POST without a session (RFC 8058)
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page with one button (link scanners fetch GETs, so GET changes nothing).
    POST (the button, or a mail client's RFC 8058 one-click): unsubscribe."""
    try:
        _, category = unsubscribe_check(token)
        if request.method == "POST":
            unsubscribe_apply(token)
    except BadUnsubscribeLink as exc:
        return render(
            request,
            "notifications/unsubscribe.html",
            {"error": str(exc), "expired": exc.expired},
            status=410 if exc.expired else 400,
        )
    return render(
        request,
        "notifications/unsubscribe.html",
        {"label": category_label(category), "done": request.method == "POST", "token": token},
    )
