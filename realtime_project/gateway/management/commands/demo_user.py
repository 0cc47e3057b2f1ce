"""`manage.py demo_user`: create (or reset) the demo user and print how to sign in."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo user (staff, for the admin) and print its credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("DEMO_USER", "demo")
        password = os.environ.get("DEMO_PASSWORD", "demo-password")
        user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": "demo@example.com"})
        user.is_staff = True
        user.is_superuser = True
        if not user.check_password(password):  # a new password would end its sessions and token
            user.set_password(password)
        user.save()
        self.stdout.write(
            self.style.SUCCESS(f"Demo user: {username} / {password} (staff; sign in at /accounts/login/)")
        )
