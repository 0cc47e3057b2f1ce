"""Access ends when the session ends: account events end the user's sockets everywhere.

Django's own signals are the hooks (the events come from Django, allauth, the admin and
DRF alike, not from our services): signing out ends the sockets of that session,
a password change or a deactivation ends every socket of the user (and a password
change deletes the user's API token), a deleted API token ends the sockets of the
tickets it bought. `gateway.api.end_sessions_on_commit` delivers the revocation to every
gateway through the user's group; re-validation (`gateway/revalidation.py`) catches what
no signal saw, such as an expired session or a bulk update.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from realtime_project.gateway.api import end_sessions_on_commit

#: Set on a user instance between pre_save and post_save: was it active before?
_WAS_ACTIVE = "_realtime_was_active"


def on_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and user.pk is not None and key:
        end_sessions_on_commit(int(user.pk), reason="signed_out", session_key=key)


def before_user_saved(sender: Any, instance: Any, raw: bool, update_fields: Any, **kwargs: Any) -> None:
    if raw or instance.pk is None:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    was = sender._default_manager.filter(pk=instance.pk).values_list("is_active", flat=True).first()
    setattr(instance, _WAS_ACTIVE, was)


def on_user_saved(sender: Any, instance: Any, created: bool, raw: bool, update_fields: Any, **kwargs: Any) -> None:
    was_active = instance.__dict__.pop(_WAS_ACTIVE, None)
    if created or raw:
        return
    if was_active and not instance.is_active:
        end_sessions_on_commit(int(instance.pk), reason="deactivated")
    # `set_password` keeps the new raw password until the save; Django's transparent
    # re-hash on sign-in (`check_password`) clears it first: that is not a change.
    elif getattr(instance, "_password", None) is not None and (update_fields is None or "password" in update_fields):
        Token.objects.filter(user_id=instance.pk).delete()  # its own revocation follows
        end_sessions_on_commit(int(instance.pk), reason="password_changed")


def on_user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    end_sessions_on_commit(int(instance.pk), reason="deleted")


def on_token_deleted(sender: Any, instance: Token, **kwargs: Any) -> None:
    end_sessions_on_commit(int(instance.user_id), reason="token_revoked", token_key=instance.key)


def connect() -> None:
    user = get_user_model()
    user_logged_out.connect(on_logged_out, dispatch_uid="realtime.revocation.logged_out")
    pre_save.connect(before_user_saved, sender=user, dispatch_uid="realtime.revocation.pre_save")
    post_save.connect(on_user_saved, sender=user, dispatch_uid="realtime.revocation.post_save")
    post_delete.connect(on_user_deleted, sender=user, dispatch_uid="realtime.revocation.user_deleted")
    post_delete.connect(on_token_deleted, sender=Token, dispatch_uid="realtime.revocation.token_deleted")
