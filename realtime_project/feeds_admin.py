"""The admin page of the feed runner: each feed's state, restarts, errors and own health."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .feeds_health import feeds_report


def feeds_admin_view(request: HttpRequest) -> HttpResponse:
    """`/admin/feeds/` (staff only: wrapped in `admin.site.admin_view` in urls.py)."""
    report = feeds_report()
    rows = [
        {"name": name, **entry, "details": json.dumps(entry.get("health") or {}, indent=2, sort_keys=True)}
        for name, entry in sorted(report["feeds"].items())
    ]
    context = {**admin.site.each_context(request), "title": "Feeds", "report": report, "rows": rows}
    return render(request, "admin/feeds.html", context)
