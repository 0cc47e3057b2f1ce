"""The signed-in user of a request, for views that require one."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request


def signed_in_user_id(request: HttpRequest | Request) -> int:
    """The id of the request's user. Views that call it require a signed-in user
    (`login_required`, `IsAuthenticated`); an anonymous one is refused all the same."""
    user_id = request.user.pk
    if user_id is None:
        raise PermissionDenied("sign in first")
    return int(user_id)
