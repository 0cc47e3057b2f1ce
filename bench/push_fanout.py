"""Web Push benchmark: an announcement to 10,000 users with push subscriptions, and the
created → received latency of one user's notification, through the product's real path.

Usage: .venv/bin/python -m bench.push_fanout [--users 10000] [--samples 200] [--naive 1000]
       [--database-url postgres://postgres@127.0.0.1:5432/realtime_bench_push]

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0) and PostgreSQL (the database is
created if missing). Parts, all on this machine:
- the local push service of the tests (tests/support/push_service.py) in its own process:
  it checks every VAPID JWT signature and claims and DECRYPTS every aes128gcm payload;
- ONE real Celery worker (`--pool=solo`, Redis broker, its own queue): the announcement
  is published as staff do (`announcement_publish` → after commit `push_announcement` →
  chunk tasks of PUSH_CHUNK_SIZE devices), and the worker does the whole fan-out:
  presence, preferences, delivery rows, RFC 8291 encryption (a fresh ECDH key per message),
  VAPID, HTTP to the push service, outcomes recorded. Measured: from publish to the last
  message decrypted by the push service; the worker's peak RSS (VmHWM, reset before).
- latency: `samples` urgent notifications to one user (`notify`, as another app would),
  each from before the call to its arrival at the push service (same clock).
- the peer, in the same run: pywebpush's one-call `webpush()` in a loop (what a naive
  integration does: a VAPID signature and a new HTTPS-less connection per message),
  `naive` messages to the same push service.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import time
from typing import Any

from bench import __name__ as _bench  # noqa: F401  (run as a module from the repository root)


def push_service_process(conn: Any) -> None:
    from tests.support.push_service import LocalPushService

    service = LocalPushService().start()
    conn.send(service.origin)
    while True:
        command, arg = conn.recv()
        if command == "subscriptions":
            conn.send([service.new_subscription().info() for _ in range(arg)])
        elif command == "decrypt_every":
            service.decrypt_every = arg
            conn.send(True)
        elif command == "answer_delay":
            service.answer_delay = arg
            conn.send(True)
        elif command == "count":
            conn.send((len(service.received), len(service.rejected)))
        elif command == "arrivals":
            conn.send([(r.json["id"], r.at) for r in service.received[-arg:] if r.text])
        elif command == "reset":
            service.received.clear()
            service.rejected.clear()
            conn.send(True)
        elif command == "stop":
            service.stop()
            conn.send(True)
            return


class PushService:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=push_service_process, args=(child,), daemon=True)
        self.proc.start()
        self.origin = self.conn.recv()

    def ask(self, command: str, arg: Any = None) -> Any:
        self.conn.send((command, arg))
        return self.conn.recv()

    def stop(self) -> None:
        try:
            self.ask("stop")
        finally:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def rss_peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def wait_count(service: PushService, target: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, rejected = service.ask("count")
        if got + rejected >= target:
            return time.monotonic()
        time.sleep(0.02)
    raise RuntimeError(f"push service got {service.ask('count')} of {target} in {timeout} s")


#: Variables CeleryWorker sets itself (SECRET_KEY: from this process's settings, the same key).
SET_BY_WORKER = {
    "SECRET_KEY",
    "LOG_LEVEL",
    "REDIS_URL",
    "DATABASE_URL",
    "REALTIME_KEY_PREFIX",
    "CHANNEL_PREFIX",
    "CACHE_PREFIX",
    "DJANGO_SETTINGS_MODULE",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--naive", type=int, default=1000)
    parser.add_argument(
        "--decrypt-every",
        type=int,
        default=1,
        help="the push service decrypts 1 fan-out message in N (default: all); the rest are VAPID-checked only",
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="the push service answers this long after a request arrives (a real push service's round trip)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="the worker's PUSH_CONCURRENCY (default: its default)"
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/realtime_bench_push")
    args = parser.parse_args()

    from py_vapid import Vapid02

    vapid = Vapid02()
    vapid.generate_keys()
    pem = vapid.private_pem().decode()
    prefix = f"bench{secrets.token_hex(3)}"
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    env = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": args.database_url,
        "REALTIME_KEY_PREFIX": prefix,
        "CHANNEL_PREFIX": prefix,
        "CACHE_PREFIX": prefix,
        "NOTIFICATIONS_VAPID_PRIVATE_KEY": pem,
        "NOTIFICATIONS_PUSH_ALLOW_INSECURE": "1",
        "NOTIFICATIONS_PUSH_ALLOW_PRIVATE": "1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "realtime_project.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),  # production mode (REDIS_URL) refuses a default key
    }
    if args.concurrency:
        env["NOTIFICATIONS_PUSH_CONCURRENCY"] = str(args.concurrency)
    ensure_database(args.database_url)
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from tests.support.celery_worker import CeleryWorker

    service = PushService()
    worker = CeleryWorker(
        redis_url=redis_url,
        key_prefix=prefix,
        name="bench-push",
        extra_env={k: v for k, v in env.items() if k not in SET_BY_WORKER},
    )
    # This process enqueues on the worker's own queue (the worker's default queue is it too).
    settings.NOTIFICATIONS = {"CELERY_QUEUE": worker.queue}
    call_command("migrate", verbosity=0)
    from notifications.api import notify
    from notifications.conf import notification_settings
    from notifications.models import Announcement, Delivery, PushSubscription
    from notifications.services.announcements import announcement_create

    try:
        User = get_user_model()
        Delivery.objects.all().delete()
        PushSubscription.objects.all().delete()
        Announcement.objects.all().delete()
        User.objects.filter(username__startswith="bench-push-").delete()
        now = timezone.now()
        users = User.objects.bulk_create(
            [User(username=f"bench-push-{i}", is_active=True) for i in range(args.users + 1)], batch_size=2000
        )
        infos = service.ask("subscriptions", args.users + 1)
        PushSubscription.objects.bulk_create(
            [
                PushSubscription(
                    user=u,
                    endpoint=i["endpoint"],
                    p256dh=i["keys"]["p256dh"],
                    auth=i["keys"]["auth"],
                    device="bench",
                    created_at=now,
                )
                for u, i in zip(users, infos, strict=True)
            ],
            batch_size=2000,
        )
        single = users[-1]
        audience = args.users + 1
        print(
            f"setup: {audience} users with a push subscription each; push service {service.origin} "
            f"answering after {args.rtt_ms:g} ms; PUSH_CONCURRENCY {notification_settings().push_concurrency}",
            flush=True,
        )

        # --- fan-out: one announcement to everyone, one worker --------------------------
        service.ask("decrypt_every", args.decrypt_every)
        service.ask("answer_delay", args.rtt_ms / 1000)
        reset_peak(worker.proc.pid)
        rss_before = rss_peak_kb(worker.proc.pid)
        cpu_before = cpu_seconds(worker.proc.pid)
        service_cpu_before = cpu_seconds(service.proc.pid)
        load_before = os.getloadavg()[0]
        t0 = time.monotonic()
        announcement_create(
            title="Scheduled maintenance at 02:00 UTC",
            body="About ten minutes.",
            priority="high",
            publish_at=now,
            now=now,
        )
        t1 = wait_count(service, audience, timeout=600)
        elapsed = t1 - t0
        got, rejected = service.ask("count")
        deadline = time.monotonic() + 120
        while Delivery.objects.filter(channel="push", state="queued").exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # the worker records the last chunk's outcomes
        recorded = time.monotonic() - t0
        worker_cpu = cpu_seconds(worker.proc.pid) - cpu_before
        service_cpu = cpu_seconds(service.proc.pid) - service_cpu_before
        rss_after = rss_peak_kb(worker.proc.pid)
        sent = Delivery.objects.filter(channel="push", state="sent").count()
        print(
            f"fan-out: {got} pushes accepted by the push service (1 in {args.decrypt_every} decrypted; "
            f"{rejected} rejected) in {elapsed:.2f} s = "
            f"{got / elapsed:,.0f} pushes/s with one worker; {sent} deliveries recorded 'sent' after {recorded:.2f} s; "
            f"worker peak RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB",
            flush=True,
        )
        print(
            f"fan-out CPU: worker {worker_cpu:.2f} s = {worker_cpu / got * 1e6:.0f} us per push "
            f"({got / worker_cpu:,.0f} pushes per worker CPU-second); push service {service_cpu:.2f} s; "
            f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}",
            flush=True,
        )

        # --- latency: created -> received, one user -------------------------------------
        service.ask("reset")
        service.ask("decrypt_every", 1)
        latencies = []
        for i in range(args.samples):
            start = time.time()
            result = notify(user_id=single.pk, type="security_warning", title=f"Sign-in {i}", priority="urgent")
            target = f"n:{result.notification.pk}"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                arrivals = dict(service.ask("arrivals", 5))
                if target in arrivals:
                    latencies.append((arrivals[target] - start) * 1000)
                    break
                time.sleep(0.002)
            else:
                raise RuntimeError(f"{target} never arrived")
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
        print(
            f"latency (notify -> decrypted at the push service, {len(latencies)} urgent notifications, one user): "
            f"p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {latencies[-1]:.0f} ms, "
            f"mean {statistics.mean(latencies):.0f} ms",
            flush=True,
        )

        # --- peer: pywebpush's one-call webpush() in a loop ------------------------------
        from pywebpush import webpush

        service.ask("reset")
        subs = infos[: args.naive]
        t0 = time.monotonic()
        for info in subs:
            webpush(info, data='{"title": "Scheduled maintenance at 02:00 UTC"}', vapid_private_key=vapid,
                    vapid_claims={"sub": "mailto:ops@example.com"}, ttl=43200, timeout=10)  # fmt: skip
        naive_elapsed = time.monotonic() - t0
        naive_rate = len(subs) / naive_elapsed
        print(
            f"peer: pywebpush webpush() loop: {len(subs)} pushes in {naive_elapsed:.2f} s = {naive_rate:,.0f} pushes/s",
            flush=True,
        )
        print(f"ratio: the product's fan-out is {got / elapsed / naive_rate:.1f}x the naive loop", flush=True)
    finally:
        worker.stop()
        service.stop()
        Delivery.objects.all().delete()
        PushSubscription.objects.all().delete()
        get_user_model().objects.filter(username__startswith="bench-push-").delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
