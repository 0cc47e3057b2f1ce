"""The supervised cluster (realtime_project/cluster.py) for tests: on free ports, in a
temporary directory, against the test database and a Redis key prefix of the test's own.

    seed_prices()                    # a transactional test starts with empty tables
    spec = cluster_spec(tmp_path, redis_url=redis_url, key_prefix=key_prefix)
    with Cluster(spec) as cluster:   # or Cluster(spec, programs=[...]) for a subset
        ...

Its Celery queues and node names are the test's own too, so concurrent runs on the shared
Redis never take each other's tasks.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from realtime_project.cluster import ClusterSpec
from tests.support.servers import free_port, production_env, test_database_url


def cluster_spec(
    tmp_path: Path,
    *,
    redis_url: str,
    key_prefix: str,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
) -> ClusterSpec:
    port = free_port()
    return ClusterSpec(
        port=port,
        gateway_ports=(free_port(), free_port()),
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "log",
        env={
            "DJANGO_SETTINGS_MODULE": "realtime_project.settings",
            "DATABASE_URL": database_url or test_database_url(),
            "REDIS_URL": redis_url,
            "REALTIME_KEY_PREFIX": key_prefix,
            "CHANNEL_PREFIX": key_prefix,
            "CACHE_PREFIX": key_prefix,
            "CELERY_QUEUE": f"{key_prefix}-celery",
            "PRICES_QUEUE": f"{key_prefix}-prices",
            "REALTIME_CLUSTER": key_prefix,
            "REALTIME_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
            "LOG_FORMAT": "text",
            "WALLETS_DEV_CHAIN": "0",
            # No venue is reachable from the tests: the simulated market, as make cluster.
            "PRICES_SIMULATED": "1",
            "PRICES_LIVE_SOURCES": "0",
            "PRICES_MIN_SOURCES": "1",
            **production_env(),
            **(env or {}),
        },
    )


def seed_prices() -> None:
    """The default symbols and sources (the simulated market among them), as the data
    migrations seed them: the flush between transactional tests empties every table, and
    the cluster's feed process streams only the sources it finds."""
    from django.apps import apps

    importlib.import_module("prices.migrations.0002_seed_defaults").seed(apps, None)
    importlib.import_module("prices.migrations.0003_streams").seed(apps, None)
