"""The WebSocket gateway: protocol v1, router, hub, history, and the publish API.

Layers (STYLE.md): pure protocol/heartbeat/history/ratelimit/conflation modules that
import neither Django nor Channels; the router and middleware, which know nothing of
sockets; the consumer and hub, which do the I/O. Apps use `gateway.api` to publish and
`gateway.router` / `gateway.namespaces` to plug in their handlers and channels.
"""
