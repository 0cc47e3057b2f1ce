"""The real-time platform's Django project: settings, ASGI app, Celery app, gateway."""

from .celery import app as celery_app

__all__ = ["celery_app"]
