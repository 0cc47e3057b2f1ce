"""Prometheus metrics of the gateway (served at /metrics, one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("realtime_connections", "Open WebSocket connections on this process")
CONNECTIONS_OPENED = Counter("realtime_connections_opened_total", "WebSocket connections accepted")
CONNECTIONS_CLOSED = Counter(
    "realtime_connections_closed_total", "WebSocket connections closed by the server", ["code"]
)
CONNECTIONS_REFUSED = Counter(
    "realtime_connections_refused_total", "WebSocket handshakes refused by a connection limit", ["reason"]
)
SUBSCRIPTIONS = Gauge("realtime_subscriptions", "Active channel subscriptions on this process")
CHANNELS = Gauge("realtime_channels", "Channels this process has joined (one group each)")
FRAMES_IN = Counter("realtime_frames_in_total", "Client frames received", ["type"])
FRAMES_OUT = Counter("realtime_frames_out_total", "Frames sent or queued to clients, by type", ["type"])
#: Bound once (a label lookup per frame would cost more than the increment).
OUT_WELCOME, OUT_REPLY, OUT_ERROR, OUT_MESSAGE, OUT_PING, OUT_PONG = (
    FRAMES_OUT.labels(kind) for kind in ("welcome", "reply", "error", "message", "ping", "pong")
)
OUT_SUBSCRIBED, OUT_UNSUBSCRIBED, OUT_AUTHENTICATED, OUT_RECONNECT = (
    FRAMES_OUT.labels(kind) for kind in ("subscribed", "unsubscribed", "authenticated", "reconnect")
)
REBALANCE_MOVES = Counter("realtime_rebalance_moves_total", "Clients asked to move to another gateway (handover)")
ERRORS = Counter("realtime_errors_total", "Error frames sent, by code", ["code"])
PUBLICATIONS = Counter("realtime_publications_total", "Publications fanned out by this process")
SHARED_FRAMES = Counter(
    "realtime_shared_frames_total",
    "Publications framed once and written straight to the sockets of idle subscribers (uvicorn)",
)
PUBLISH_LATENCY = Histogram(
    "realtime_publish_to_send_seconds",
    "Time from publish() to the frame being queued to local subscribers",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
HANDLER_LATENCY = Histogram(
    "realtime_handler_seconds",
    "Time spent in router handlers, by message type",
    ["type"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
)
GAPS_REPAIRED = Counter("realtime_gaps_repaired_total", "Publications fetched from history to fill a gap")
GAPS_UNRECOVERED = Counter(
    "realtime_gaps_unrecovered_total", "Publications lost from both the layer and history (clients resync)"
)
SLOW_CONSUMERS = Counter("realtime_slow_consumers_total", "Connections closed for a full send queue (4409)")
DROPPED_DELIVERIES = Counter(
    "realtime_dropped_deliveries_total",
    "Frames a slow consumer never got: its queue when it was closed, and frames for it after",
)
LAYER_ERRORS = Counter("realtime_layer_errors_total", "Channel layer incidents (e.g. Redis unreachable)")
RTT = Histogram(
    "realtime_rtt_seconds",
    "Round-trip time of server pings (application heartbeat)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
QUALITY = Gauge("realtime_connection_quality", "Connections by heartbeat quality grade", ["grade"])
