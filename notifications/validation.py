"""`NotificationSpec`: what a caller asks to send, validated once, when it is made."""

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
FIELDS = frozenset({"type", "title", "body", "data", "priority", "dedupe_key"})


@dataclass(frozen=True, slots=True)
class NotificationSpec:
    """A valid notification to send: constructing one validates and normalises it
    (raises `InvalidNotification` with a clear message), so a spec is never checked twice."""

    type: str
    title: str
    body: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    priority: str = "medium"
    dedupe_key: str | None = None

    def __post_init__(self) -> None:
        type, title, body, data, priority, dedupe_key = (
            self.type,
            self.title,
            self.body,
            self.data,
            self.priority,
            self.dedupe_key,
        )
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
        object.__setattr__(self, "title", title.strip())
        object.__setattr__(self, "data", clean)

    @classmethod
    def coerce(cls, value: NotificationSpec | dict[str, Any]) -> NotificationSpec:
        """A spec as is, or one made from a dict of its fields."""
        if isinstance(value, NotificationSpec):
            return value
        if not isinstance(value, dict):
            raise InvalidNotification("a notification is a NotificationSpec or a dict")
        unknown = set(value) - FIELDS
        if unknown:
            raise InvalidNotification(f"unknown notification fields: {sorted(unknown)}")
        if "type" not in value or "title" not in value:
            raise InvalidNotification("a notification needs a type and a title")
        return cls(**value)
