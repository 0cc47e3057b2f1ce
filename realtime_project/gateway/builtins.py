"""Protocol v1's own frame types, registered on the router like any app's handlers.

`subscribe`, `unsubscribe`, `ping` and `auth` pass through the same middleware (rate
limit, metrics) as app messages. `pong`, the answer to the server's heartbeat (one per
connection per interval: most of the frames a gateway receives), is a bare route: it
pays only the intake charge every frame pays in the consumer (so a flood of pongs is
refused and closed like any other), needs no sign-in, and its metric is the RTT it records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from .auth import authenticate_ticket
from .conf import gateway_settings
from .errors import ErrorCode, GatewayError, TooManyConnections
from .metrics import OUT_AUTHENTICATED, OUT_PONG, OUT_UNSUBSCRIBED, RTT
from .namespaces import Principal, Snapshotter, namespaces
from .protocol import (
    ChannelName,
    authenticated_frame,
    dumps,
    parse_channel,
    parse_max_rate,
    parse_since,
    pong_frame,
    require_str,
    unsubscribed_frame,
)
from .router import NO_REPLY, Request, router

if TYPE_CHECKING:  # imported by every process at start-up (apps.ready): no hub there
    from .connections import Connection
    from .hub import Hub


def _hub(request: Request) -> Hub:
    hub: Hub = request.context["hub"]
    return hub


def subscribe_schema(frame: dict[str, Any]) -> dict[str, Any]:
    return {
        "channel": parse_channel(frame.get("channel")),
        "since": parse_since(frame.get("since")),
        "max_rate": parse_max_rate(frame),
    }


def channel_schema(frame: dict[str, Any]) -> ChannelName:
    return parse_channel(frame.get("channel"))


@router.register("subscribe", schema=subscribe_schema)
async def subscribe(request: Request) -> Any:
    conn = request.connection
    channel: ChannelName = request.data["channel"]
    ns, internal = await namespaces.authorise(conn.principal, channel)
    public = namespaces.normalise(channel).name
    if public in conn.subscriptions:
        raise GatewayError("already subscribed to this channel", code=ErrorCode.ALREADY_SUBSCRIBED)
    limit = gateway_settings().max_subscriptions
    if len(conn.subscriptions) >= limit:
        raise GatewayError(f"at most {limit} subscriptions per connection", code=ErrorCode.SUBSCRIPTION_LIMIT)
    snapshot = _snapshot_fn(ns.snapshot, conn.principal, internal) if ns.snapshot is not None else None
    hook_first = bool(snapshot is not None and ns.snapshot_hook_first is not None and ns.snapshot_hook_first(internal))
    await _hub(request).subscribe(
        conn,
        public=public,
        internal=internal.name,
        namespace=ns,
        since=request.data["since"],
        max_rate=request.data["max_rate"],
        reply_id=request.id,
        snapshot=snapshot,
        snapshot_hook_first=hook_first,
    )
    return NO_REPLY


@router.register("unsubscribe", schema=channel_schema)
async def unsubscribe(request: Request) -> Any:
    channel: ChannelName = request.data
    try:
        public = namespaces.normalise(channel).name
    except GatewayError:
        public = channel.name
    if not await _hub(request).unsubscribe(request.connection, public):
        raise GatewayError("not subscribed to this channel", code=ErrorCode.NOT_SUBSCRIBED)
    if request.connection.enqueue(unsubscribed_frame(request.id, public)):
        OUT_UNSUBSCRIBED.inc()
    return NO_REPLY


@router.register("ping")
async def ping(request: Request) -> Any:
    if request.connection.enqueue(pong_frame(request.id, now_ms())):
        OUT_PONG.inc()
    return NO_REPLY


@router.register("pong", cost=0, bare=True)
async def pong(request: Request) -> Any:
    record_pong(request.connection, request.frame, _hub(request).clock.monotonic())
    return NO_REPLY


def record_pong(conn: Connection, frame: dict[str, Any], now: float) -> None:
    """A heartbeat answer: settles the ping, samples the RTT (also called by the consumer
    straight from the socket read under uvicorn, `GatewayConsumer._read_pong`)."""
    heartbeat = conn.heartbeat
    if heartbeat.pong(frame.get("id"), now) and heartbeat.last_sample is not None:
        RTT.observe(heartbeat.last_sample)


@router.register("auth", schema=lambda frame: require_str(frame, "ticket", max_length=512))
async def auth(request: Request) -> Any:
    conn = request.connection
    principal, credential = await authenticate_ticket(request.data)
    hub = _hub(request)
    if principal.user_id != conn.user_id:
        # The per-user limit applies to an upgrade as to a handshake with credentials.
        limit = gateway_settings().max_connections_per_user
        if principal.user_id is not None and len(hub.connections.connections_of(principal.user_id)) >= limit:
            raise TooManyConnections()
        # A different identity: private channels of the previous one are dropped.
        for public, sub in list(conn.subscriptions.items()):
            if not sub.namespace.public:
                await hub.unsubscribe(conn, public)
                if conn.enqueue(unsubscribed_frame(None, public, reason="auth_changed")):
                    OUT_UNSUBSCRIBED.inc()
    await hub.set_principal(conn, principal)
    conn.credential, conn.validated_at = credential, hub.clock.monotonic()
    if conn.enqueue(authenticated_frame(request.id, principal.user_id)):
        OUT_AUTHENTICATED.inc()
    return NO_REPLY


def _snapshot_fn(hook: Snapshotter, principal: Principal, internal: ChannelName) -> Callable[[], Awaitable[str | None]]:
    async def snapshot() -> str | None:
        data = await hook(principal, internal)
        return None if data is None else dumps(data)

    return snapshot
