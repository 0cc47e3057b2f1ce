"""The event bus: a subscriber's worker thread leaves no database connection behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections

from realtime_project.events import EventBus


@dataclass(frozen=True)
class Ping:
    pass


@pytest.mark.django_db
def test_a_closed_subscription_closes_the_database_connection_of_its_thread() -> None:
    bus = EventBus()
    used: list[Any] = []

    def handler(event: Ping) -> None:
        connection = connections["default"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        used.append(connection)

    sub = bus.subscribe(Ping, handler, name="tests.events.db")
    bus.emit(Ping(), after_commit=False)
    assert sub.drain(10)
    thread = sub._thread
    assert thread is not None
    bus.unsubscribe(sub)
    thread.join(10)
    assert not thread.is_alive()
    # Kept between events (the recycle interval), closed when the thread ends: not left
    # open for the garbage collector (a ResourceWarning in whatever test runs then).
    (connection,) = used
    assert connection.connection is None
