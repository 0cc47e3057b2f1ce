"""Delivery counters in `/metrics`, counted where deliveries change state, in any process.

Push and email run in Celery workers while `/metrics` is served by the gateways: the
counts live in one Redis hash (HINCRBY per change, HGETALL per scrape) so every
gateway shows the cluster's totals. Embedded mode counts in this process. The
backlog (`queued` rows due per channel) is read from the database at scrape time.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from realtime_project.runtime import Slot

logger = logging.getLogger("notifications.metrics")

#: Embedded mode's counts (no Redis), guarded by `_lock`.
_LOCAL: Slot[Counter[str]] = Slot("notifications.delivery_counts", Counter)
_lock = threading.Lock()


def _redis() -> tuple[Any, str] | None:
    from realtime_project.gateway.conf import gateway_settings

    conf = gateway_settings()
    if not conf.history_redis_url:
        return None
    import redis

    return redis.Redis.from_url(conf.history_redis_url, socket_timeout=2), f"{conf.key_prefix}:notifications:deliveries"


def count(changes: Iterable[tuple[str, str, str]]) -> None:
    """Count state changes: (channel, state, reason) triples (reason may be '')."""
    tally = Counter("|".join(change) for change in changes)
    if not tally:
        return
    target = _redis()
    if target is None:
        with _lock:
            _LOCAL.get().update(tally)
        return
    client, key = target
    try:
        pipe = client.pipeline(transaction=False)
        for field, n in tally.items():
            pipe.hincrby(key, field, n)
        pipe.execute()
    except Exception as exc:  # metrics never fail a delivery
        logger.warning("could not count deliveries: %s", exc)
    finally:
        client.close()


def totals() -> dict[tuple[str, str, str], int]:
    target = _redis()
    if target is None:
        with _lock:
            raw = dict(_LOCAL.get())
    else:
        client, key = target
        try:
            raw = {k.decode(): int(v) for k, v in client.hgetall(key).items()}
        finally:
            client.close()
    out: dict[tuple[str, str, str], int] = {}
    for field, n in raw.items():
        channel, state, reason = [*field.split("|"), "", ""][:3]
        out[(channel, state, reason)] = n
    return out


class DeliveryCollector(Collector):
    def describe(self) -> Iterator[Any]:
        """Names only: registering must not touch Redis or the database."""
        yield CounterMetricFamily("notifications_deliveries", "", labels=["channel", "state", "reason"])
        yield GaugeMetricFamily("notifications_deliveries_queued", "", labels=["channel"])

    def collect(self) -> Iterator[Any]:
        counter = CounterMetricFamily(
            "notifications_deliveries",
            "Notification deliveries by channel and state reached (reason for failed/suppressed/cancelled)",
            labels=["channel", "state", "reason"],
        )
        try:
            for (channel, state, reason), n in sorted(totals().items()):
                counter.add_metric([channel, state, reason], n)
        except Exception as exc:
            logger.warning("delivery totals unavailable: %s", exc)
        yield counter
        backlog = GaugeMetricFamily(
            "notifications_deliveries_queued", "Deliveries waiting to be sent, by channel", labels=["channel"]
        )
        try:
            from django.db.models import Count

            from .models import Delivery

            rows = Delivery.objects.filter(state="queued").values("channel").annotate(n=Count("id"))
            for row in rows:
                backlog.add_metric([row["channel"]], row["n"])
        except Exception as exc:
            logger.warning("delivery backlog unavailable: %s", exc)
        yield backlog


_registered = False


def register() -> None:
    """Once per process (AppConfig.ready)."""
    global _registered
    if not _registered:
        REGISTRY.register(DeliveryCollector())
        _registered = True
