"""`NotificationSpec`: what a caller asks to send, validated before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .choices import PRIORITIES, TYPES
from .errors import InvalidNotification
from .payloads import jsonable

MAX_TITLE = 200
MAX_BODY = 4_000
MAX_DEDUPE_KEY = 200
#: Data travels in every event and snapshot: keep it small.
MAX_DATA_BYTES = 8_192


@dataclass(frozen=True, slots=True)
class NotificationSpec:
    type: str
    title: str
    body: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    priority: str = "medium"
    dedupe_key: str | None = None

    @classmethod
    def build(
        cls,
        *,
        type: str,
        title: str,
        body: str = "",
        data: dict[str, Any] | None = None,
        priority: str = "medium",
        dedupe_key: str | None = None,
    ) -> NotificationSpec:
        """Validate and normalise; raises `InvalidNotification` with a clear message."""
        if type not in TYPES:
            raise InvalidNotification(f"unknown notification type {type!r}; one of {sorted(TYPES)}")
        if priority not in PRIORITIES:
            raise InvalidNotification(f"unknown priority {priority!r}; one of low, medium, high, urgent")
        if not isinstance(title, str) or not title.strip():
            raise InvalidNotification("title is required")
        if len(title) > MAX_TITLE:
            raise InvalidNotification(f"title is longer than {MAX_TITLE} characters")
        if not isinstance(body, str) or len(body) > MAX_BODY:
            raise InvalidNotification(f"body must be a string of at most {MAX_BODY} characters")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidNotification("data must be an object")
        clean = jsonable(data)
        try:
            size = len(orjson.dumps(clean))
        except TypeError:
            raise InvalidNotification("data must be JSON-serialisable") from None
        if size > MAX_DATA_BYTES:
            raise InvalidNotification(f"data is larger than {MAX_DATA_BYTES} bytes")
        if dedupe_key is not None and (not isinstance(dedupe_key, str) or not 0 < len(dedupe_key) <= MAX_DEDUPE_KEY):
            raise InvalidNotification(f"dedupe_key must be a non-empty string of at most {MAX_DEDUPE_KEY} characters")
        return cls(type, title.strip(), body, clean, priority, dedupe_key)

    @classmethod
    def coerce(cls, value: NotificationSpec | dict[str, Any]) -> NotificationSpec:
        if isinstance(value, NotificationSpec):
            return cls.build(
                type=value.type,
                title=value.title,
                body=value.body,
                data=value.data,
                priority=value.priority,
                dedupe_key=value.dedupe_key,
            )
        if not isinstance(value, dict):
            raise InvalidNotification("a notification is a NotificationSpec or a dict")
        known = {"type", "title", "body", "data", "priority", "dedupe_key"}
        unknown = set(value) - known
        if unknown:
            raise InvalidNotification(f"unknown notification fields: {sorted(unknown)}")
        if "type" not in value or "title" not in value:
            raise InvalidNotification("a notification needs a type and a title")
        return cls.build(**value)
