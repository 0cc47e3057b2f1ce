"""Shared fixtures: real Redis, real server processes, WebSocket clients.

Tests that need a real part (Redis, PostgreSQL, a server process, an EVM, Chromium)
use it for real and fail when it is missing: they never skip silently.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis as redis_sync
from django.conf import settings as django_settings

from realtime_project import runtime as project_runtime
from realtime_project.appsettings import reload_all
from realtime_project.gateway import runtime
from realtime_project.security import secret_key_problem
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess, server_env
from tests.support.xdist_groups import run_first

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# The test process runs embedded (the public development key), but the production-mode
# servers it starts refuse that key: give the run a strong random one, shared with them
# (tests/support/servers.py `production_env`) so tickets and cookies made here work there.
if secret_key_problem(django_settings.SECRET_KEY, dev_key=django_settings.DEV_SECRET_KEY):
    django_settings.SECRET_KEY = secrets.token_urlsafe(50)


#: Tables with rows right after the migrations (content types, permissions, the prices
#: app's seeded symbols and sources...), copied once per session: each flush puts them back.
_SNAPSHOTS: dict[str, str] = {}


@pytest.fixture(scope="session", autouse=True)
def _fast_postgres_flush(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Flush between transactional tests on PostgreSQL back to the database as the
    migrations left it, quickly.

    - DELETE instead of TRUNCATE: TRUNCATE gives every table (and index) new files; with
      ~45 tables that was the largest cost of the suite. Django's PostgreSQL foreign keys
      are DEFERRABLE INITIALLY DEFERRED, so order does not matter inside the flush.
    - The rows the migrations wrote (seeded symbols and sources, content types,
      permissions) are copied into snapshot tables once, and every flush restores them,
      with each sequence set past its table's rows: a test sees the same database whether
      a transactional test ran before it or not, so the suite is order-independent (as
      pytest-xdist's workers need: each runs modules in the order they are handed out).
    """
    from django.db import connection
    from django.db.backends.postgresql.operations import DatabaseOperations

    if connection.vendor != "postgresql":
        yield
        return
    original = DatabaseOperations.sql_flush
    sequences: list[dict[str, str]] = []
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quoted})")
            if cursor.fetchone()[0]:
                snapshot = connection.ops.quote_name(f"_snapshot_{table}")
                cursor.execute(f"DROP TABLE IF EXISTS {snapshot}")
                cursor.execute(f"CREATE TABLE {snapshot} AS SELECT * FROM {quoted}")
                _SNAPSHOTS[table] = snapshot
        sequences.extend(connection.introspection.sequence_list())

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        if not tables:
            return original(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        wanted = set(tables)
        statements = [f"DELETE FROM {style.SQL_FIELD(self.quote_name(table))};" for table in tables]
        statements += [
            f"INSERT INTO {self.quote_name(t)} SELECT * FROM {s};" for t, s in _SNAPSHOTS.items() if t in wanted
        ]
        for seq in sequences:
            if seq["table"] not in wanted:
                continue
            table, column = self.quote_name(seq["table"]), self.quote_name(seq["column"])
            # Past the restored rows (or back to 1 on an empty table), as after the migrations.
            statements.append(
                f"SELECT setval('{self.quote_name(seq['name'])}', "
                f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false);"
            )
        return statements

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]
    yield
    DatabaseOperations.sql_flush = original  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def _no_stray_database_sessions(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Before the test database is dropped, end sessions that other threads still hold.

    `database_sync_to_async` runs queries in executor threads whose connections outlive
    the tests; PostgreSQL refuses to drop a database that has sessions.
    """
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connection.close()


@pytest.fixture(autouse=True)
def _fresh_runtime() -> Iterator[None]:
    """Each test starts in a fresh process, as far as the product can tell: a new runtime
    object (hubs, history stores, clients, the publisher's loop, the apps' state) and
    settings read from the environment as it is now (a test's `setenv` is undone)."""
    reload_all()
    project_runtime.reset()
    yield
    project_runtime.reset()


#: Fixtures that bring in a real outside part, and the marker each implies: a test that
#: uses one is marked whether or not it says so (`make test-fast` deselects by marker).
IMPLIED_MARKERS = {
    "redis_url": "redis",
    "private_redis": "redis",
    "live_server_factory": "e2e",
    "anvil_node": "evm",
    "evm": "evm",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # The long groups first: they start while other workers take the modules
        # (tests/support/xdist_groups.py); a stable sort keeps every other order.
        items.sort(key=lambda item: run_first(item.nodeid))
    for item in items:
        for fixture, marker in IMPLIED_MARKERS.items():
            if fixture in item.fixturenames:  # type: ignore[attr-defined]
                item.add_marker(marker)
    # Async tests stop the hubs they started, before their event loop closes.
    for item in items:
        if asyncio.iscoroutinefunction(getattr(item, "function", None)):
            item.fixturenames.append("_stop_hubs")  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which answers for every --dist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test` under pytest-xdist: modules and the two groups as units of work."""
    if config.getvalue("dist") != "loadscope":
        return None
    from tests.support.xdist_groups import GroupScheduling

    return GroupScheduling(config, log)


@pytest_asyncio.fixture
async def _stop_hubs() -> AsyncIterator[None]:
    yield
    hub = runtime.current_hub()
    if hub is not None:
        await hub.stop()


@pytest.fixture(autouse=True)
def _fast_password_hashing(request: pytest.FixtureRequest) -> Iterator[None]:
    """Passwords hashed with one round (PBKDF2's million cost ~0.3 s of CPU per sign-up or
    sign-in) in tests that start no server process: only this process ever checks them.
    Tests marked e2e keep the production hashers, which their servers share."""
    if request.node.get_closest_marker("e2e") is not None:
        yield
        return
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def redis_url() -> str:
    """The real Redis; a test that needs it fails (never skips) when it is down."""
    client = redis_sync.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis_sync.RedisError as exc:
        pytest.fail(f"Redis is required at {TEST_REDIS_URL} ({exc}); run scripts/services.sh")
    finally:
        client.close()
    return TEST_REDIS_URL


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own on a free port, to stop and restart (never the shared one)."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key_prefix() -> str:
    """A unique key prefix so concurrent test runs never share Redis state."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
def redis_settings(settings, redis_url: str, key_prefix: str):  # type: ignore[no-untyped-def]
    """Switch this process to production mode: Redis layer, Redis history/presence."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_connect_timeout": 5}], "prefix": key_prefix},
        }
    }
    settings.REALTIME = {**settings.REALTIME, "HISTORY_REDIS_URL": redis_url, "KEY_PREFIX": key_prefix}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield settings
    channel_layers.backends.clear()
    cleanup = redis_sync.Redis.from_url(redis_url)
    for key in cleanup.scan_iter(f"{key_prefix}*", count=1000):
        cleanup.delete(key)
    cleanup.close()


@pytest.fixture
def live_server_factory(request: pytest.FixtureRequest) -> Iterator[object]:
    """Start real gateway processes: `live_server_factory(server="daphne", redis=url)`.

    The process uses the test database (tests using it need `transactional_db`).
    Each one is stopped at teardown and its log is checked for tracebacks.
    """
    started: list[ServerProcess] = []

    def start(**kwargs: object) -> ServerProcess:
        args = tuple(kwargs.pop("args", ()))  # type: ignore[arg-type]  (extra `manage.py serve` options)
        proc = ServerProcess(env=server_env(**kwargs), server=str(kwargs.get("server", "daphne")), args=args)  # type: ignore[arg-type]
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
    for proc in started:
        proc.assert_clean_log()


# --- Web Push: a VAPID key and the local push service (tests/support/push_service.py) ------


@pytest.fixture(scope="session")
def vapid_pem() -> str:
    from py_vapid import Vapid02

    key = Vapid02()
    key.generate_keys()
    return key.private_pem().decode()


@pytest.fixture
def push_service(vapid_pem: str) -> Any:
    from py_vapid import Vapid02

    from notifications.push.vapid import VapidKey
    from tests.support.push_service import LocalPushService

    expected = VapidKey(Vapid02.from_pem(vapid_pem.encode()), "mailto:x@example.com").public_key
    service = LocalPushService(expected_key=expected).start()
    yield service
    service.stop()
