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


def test_a_subscriber_outlives_a_failure_to_close_its_connections(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Closing connections after a failed handler is best effort: when it raises too (a
    database that refuses access), the subscriber's thread logs it and serves on."""
    from realtime_project import events

    def refuse() -> None:
        raise RuntimeError("database access refused")

    monkeypatch.setattr(events, "close_old_connections", refuse)
    bus = EventBus()
    handled: list[int] = []

    def handler(event: Ping) -> None:
        handled.append(len(handled))
        if len(handled) == 1:
            raise ValueError("the first event fails")

    sub = bus.subscribe(Ping, handler, name="tests.events.refused")
    bus.emit(Ping(), after_commit=False)
    assert sub.drain(10)
    bus.emit(Ping(), after_commit=False)
    assert sub.drain(10)
    assert handled == [0, 1]
    assert sub.stats()["failed"] == 1
    assert sub._thread is not None and sub._thread.is_alive()
    assert "could not close its database connections" in caplog.text
    bus.unsubscribe(sub)
