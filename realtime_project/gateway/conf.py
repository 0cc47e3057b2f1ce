"""The `REALTIME` setting: one namespaced dict, every key documented with its default.

Precedence (`realtime_project.appsettings`): the defaults below, then `REALTIME_<KEY>`
environment variables, then keys set in `settings.REALTIME`.

Read through `gateway_settings()` (typed) or `REALTIME.<KEY>`; tests override with
Django's `override_settings`, which reloads them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from ..appsettings import AppSettings

DEFAULTS: dict[str, Any] = {
    # Seconds between server pings, and seconds a ping may stay unanswered before the
    # connection is closed with 4408. 25 s stays under common proxy idle timeouts (60 s).
    "HEARTBEAT_INTERVAL": 25.0,
    "HEARTBEAT_TIMEOUT": 10.0,
    # Largest client frame (issue #2: 64 KiB); larger frames get `too_large`.
    "MAX_FRAME_BYTES": 64 * 1024,
    # Transport limit: frames above this are refused by the server with close 1009.
    "MAX_MESSAGE_BYTES": 1024 * 1024,
    "MAX_SUBSCRIPTIONS": 100,
    # Token bucket per connection for client frames: sustained rate and burst. Every
    # inbound frame pays at intake, before it is decoded (so frames that fail to decode,
    # pongs and oversized frames pay too): 1 token plus 1 per whole
    # RATE_LIMIT_BYTES_PER_TOKEN bytes, at most the burst (a largest frame passes on a full bucket).
    "RATE_LIMIT_PER_SECOND": 20.0,
    "RATE_LIMIT_BURST": 40.0,
    "RATE_LIMIT_BYTES_PER_TOKEN": 4096,
    # A client that keeps flooding after being told is closed with 4429.
    "FLOOD_CLOSE_AFTER": 100,
    "MAX_CONNECTIONS_PER_USER": 20,
    # Open WebSockets (and handshakes in progress) per client address, and in all, on one
    # gateway process; 0: no limit. Over either, the handshake is refused before any
    # database work: HTTP 429 / 503 with Retry-After on uvicorn, close 4429 / 1013 on
    # daphne (which cannot refuse with a status). Behind a load balancer, set uvicorn's
    # FORWARDED_ALLOW_IPS to its address so the client's own address is the one counted.
    "MAX_CONNECTIONS_PER_ADDRESS": 256,
    "MAX_CONNECTIONS": 20_000,
    # Seconds a client has to send its whole HTTP request head (the WebSocket upgrade
    # included) after connecting: a slow-headers client is dropped (uvicorn and daphne).
    "HANDSHAKE_TIMEOUT": 10.0,
    # Frames queued for one connection before it is a slow consumer (closed with 4409).
    "SEND_QUEUE_SIZE": 2_000,
    # Allowed browser origins (scheme://host[:port]), exact; empty: derived from
    # ALLOWED_HOSTS (`_default_origins`). Clients that send no Origin header
    # (non-browsers) are allowed. Loopback origins on any port are accepted in embedded
    # mode only (development servers); production accepts exactly this list.
    "ALLOWED_ORIGINS": [],
    "TICKET_TTL": 60,
    # /readyz details and /metrics: served to staff sessions and to `Authorization: Bearer
    # <OPS_TOKEN>` (Prometheus, an operator's script); anyone else gets /readyz's bare
    # status (load balancers) and a 403 on /metrics. Embedded mode serves them openly.
    "OPS_TOKEN": "",
    # Redis for history/presence; empty: in-memory (embedded mode).
    "HISTORY_REDIS_URL": "",
    "KEY_PREFIX": "rt",
    # Per-namespace history overrides: {"prices": {"size": 100, "ttl": 3600}}.
    "HISTORY": {},
    # Graceful drain: clients are told to reconnect after a random 0..N ms.
    "DRAIN_MAX_DELAY_MS": 5_000,
    "DRAIN_GRACE_SECONDS": 2.0,
    # Presence entries of a gateway expire this long after its last heartbeat.
    "PRESENCE_TTL": 30.0,
    # Rebalancing (rebalance.py): every REBALANCE_INTERVAL s (0: off) a gateway with more
    # than its share of connections (of the gateways', or of a balancer's) asks at most
    # REBALANCE_MAX_MOVES clients open for REBALANCE_MIN_AGE s to move, by a handover
    # that keeps their socket open HANDOVER_MS (docs/protocol.md). An excess under
    # max(REBALANCE_MIN_EXCESS, REBALANCE_TOLERANCE x share) is left alone; nobody moves
    # while more connections arrived in the last REBALANCE_SETTLE s than were asked to.
    "REBALANCE_INTERVAL": 2.0,
    "REBALANCE_TOLERANCE": 0.1,
    "REBALANCE_MIN_EXCESS": 20,
    "REBALANCE_MAX_MOVES": 100,
    "REBALANCE_MIN_AGE": 10.0,
    "REBALANCE_SETTLE": 5.0,
    "HANDOVER_MS": 10_000,
    "GATEWAY_ID": "",
    # --- the server process (realtime_project/server.py) ---
    # Freeze start-up objects out of the garbage collector and collect less often
    # (`tune_gc`): full collections paused a loaded gateway 0.5-0.84 s.
    "GC_FREEZE": True,
    # uvicorn: keep a permessage-deflate context per connection (better ratios for small
    # messages, every delivery compressed again); off: each fan-out message is compressed
    # once for all (docs/benchmarks.md).
    "DEFLATE_CONTEXT_TAKEOVER": False,
    # uvicorn's event loop ("auto": uvloop when installed, "uvloop", "asyncio") and HTTP
    # parser ("auto": httptools when installed, "httptools", "h11").
    "EVENT_LOOP": "auto",
    "HTTP": "auto",
}

REALTIME = AppSettings("REALTIME", DEFAULTS, env_prefix="REALTIME_")


@dataclass(frozen=True)
class GatewaySettings:
    heartbeat_interval: float
    heartbeat_timeout: float
    max_frame_bytes: int
    max_message_bytes: int
    max_subscriptions: int
    rate_limit_per_second: float
    rate_limit_burst: float
    flood_close_after: int
    max_connections_per_user: int
    send_queue_size: int
    allowed_origins: tuple[str, ...]
    ticket_ttl: int
    history_redis_url: str
    key_prefix: str
    history: dict[str, dict[str, float]] = field(default_factory=dict)
    drain_max_delay_ms: int = 5_000
    drain_grace_seconds: float = 2.0
    presence_ttl: float = 30.0
    gateway_id: str = ""
    rebalance_interval: float = 2.0
    rebalance_tolerance: float = 0.1
    rebalance_min_excess: int = 20
    rebalance_max_moves: int = 100
    rebalance_min_age: float = 10.0
    rebalance_settle: float = 5.0
    handover_ms: int = 10_000
    rate_limit_bytes_per_token: int = 4096
    max_connections_per_address: int = 256
    max_connections: int = 20_000
    handshake_timeout: float = 10.0
    ops_token: str = ""
    #: Embedded mode: /readyz details and /metrics for anyone (a developer's machine).
    ops_public: bool = False
    #: Embedded mode: loopback origins on any port are allowed (development servers).
    loopback_any_port: bool = False


def _default_origins() -> tuple[str, ...]:
    """Origins derived from ALLOWED_HOSTS when ALLOWED_ORIGINS is not set.

    Embedded (development): http and https of every host, any host for `*`. Production:
    only `https://host` of each named host, never a wildcard (a `*` or `.domain` entry
    derives nothing: set REALTIME_ALLOWED_ORIGINS to the exact list).
    """
    production = bool(getattr(settings, "PRODUCTION", False))
    origins: list[str] = []
    for host in settings.ALLOWED_HOSTS:
        if host in ("*", ""):
            if production:
                continue
            return ("*",)
        if production:
            if not host.startswith("."):
                origins.append(f"https://{host}")
            continue
        host = host.lstrip(".")
        origins += [f"http://{host}", f"https://{host}"]
    return tuple(origins)


def gateway_settings() -> GatewaySettings:
    """The typed `REALTIME` settings (built once per reload)."""
    return REALTIME.build(_gateway_settings)


def _gateway_settings(merged: Mapping[str, Any]) -> GatewaySettings:
    port = os.environ.get("PORT", "")
    gateway_id = merged["GATEWAY_ID"] or f"{socket.gethostname()}-{os.getpid()}{'-' + port if port else ''}"
    return GatewaySettings(
        heartbeat_interval=float(merged["HEARTBEAT_INTERVAL"]),
        heartbeat_timeout=float(merged["HEARTBEAT_TIMEOUT"]),
        max_frame_bytes=int(merged["MAX_FRAME_BYTES"]),
        max_message_bytes=int(merged["MAX_MESSAGE_BYTES"]),
        max_subscriptions=int(merged["MAX_SUBSCRIPTIONS"]),
        rate_limit_per_second=float(merged["RATE_LIMIT_PER_SECOND"]),
        rate_limit_burst=float(merged["RATE_LIMIT_BURST"]),
        flood_close_after=int(merged["FLOOD_CLOSE_AFTER"]),
        max_connections_per_user=int(merged["MAX_CONNECTIONS_PER_USER"]),
        send_queue_size=int(merged["SEND_QUEUE_SIZE"]),
        allowed_origins=tuple(merged["ALLOWED_ORIGINS"]) or _default_origins(),
        ticket_ttl=int(merged["TICKET_TTL"]),
        history_redis_url=str(merged["HISTORY_REDIS_URL"]),
        key_prefix=str(merged["KEY_PREFIX"]),
        history=dict(merged["HISTORY"]),
        drain_max_delay_ms=int(merged["DRAIN_MAX_DELAY_MS"]),
        drain_grace_seconds=float(merged["DRAIN_GRACE_SECONDS"]),
        presence_ttl=float(merged["PRESENCE_TTL"]),
        gateway_id=gateway_id,
        rebalance_interval=max(0.0, float(merged["REBALANCE_INTERVAL"])),
        rebalance_tolerance=max(0.0, float(merged["REBALANCE_TOLERANCE"])),
        rebalance_min_excess=max(1, int(merged["REBALANCE_MIN_EXCESS"])),
        rebalance_max_moves=max(0, int(merged["REBALANCE_MAX_MOVES"])),
        rebalance_min_age=max(0.0, float(merged["REBALANCE_MIN_AGE"])),
        rebalance_settle=max(0.0, float(merged["REBALANCE_SETTLE"])),
        handover_ms=max(1, int(merged["HANDOVER_MS"])),
        rate_limit_bytes_per_token=max(1, int(merged["RATE_LIMIT_BYTES_PER_TOKEN"])),
        max_connections_per_address=int(merged["MAX_CONNECTIONS_PER_ADDRESS"]),
        max_connections=int(merged["MAX_CONNECTIONS"]),
        handshake_timeout=float(merged["HANDSHAKE_TIMEOUT"]),
        ops_token=str(merged["OPS_TOKEN"]),
        ops_public=not bool(getattr(settings, "PRODUCTION", False)),
        loopback_any_port=not bool(getattr(settings, "PRODUCTION", False)),
    )
