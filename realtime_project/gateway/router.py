"""Message router: frame `type` -> handler, with per-type validation and middleware.

Apps register handlers from their own `handlers.py`:

    from realtime_project.gateway.router import router

    @router.register("alerts.create", schema=validate_alert, auth=True)
    def create_alert(request):       # sync handlers run in a thread with DB access
        ...
        return {"id": rule.id}       # becomes {"type":"reply","id":..,"request":..,"data":..}

Middleware wraps every dispatch (`router.use(mw)`), Starlette-style:
`async def mw(request, call_next) -> Any`. The router knows nothing of sockets.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async

from .errors import UnknownType

if TYPE_CHECKING:
    from .connections import Connection
    from .namespaces import Principal

#: A handler returns reply data, or NO_REPLY when it has queued its own frames.
NO_REPLY: Any = object()

Schema = Callable[[dict[str, Any]], Any]
Handler = Callable[["Request"], Any]
CallNext = Callable[["Request"], Awaitable[Any]]
Middleware = Callable[["Request", CallNext], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    type: str
    handler: Handler
    schema: Schema | None = None
    auth: bool = False
    #: Tokens a frame of this type costs: every frame pays 1 (plus its size) at intake,
    #: before it is decoded; a cost above 1 is charged the difference once routed.
    cost: float = 1.0
    is_async: bool = True
    #: Dispatched without middleware (no auth check, rate limit or metrics): for the
    #: protocol's own cheapest frames, such as heartbeat answers.
    bare: bool = False


@dataclass(slots=True)
class Request:
    """One client frame being handled."""

    connection: Connection
    frame: dict[str, Any]
    route: Route | None = None
    #: What the route's schema returned (the validated payload).
    data: Any = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return str(self.frame["type"])

    @property
    def id(self) -> str | int | None:
        value = self.frame.get("id")
        return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None

    @property
    def principal(self) -> Principal:
        return self.connection.principal

    @property
    def user_id(self) -> int | None:
        return self.connection.principal.user_id


class Router:
    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._middleware: list[Middleware] = []
        #: The middleware chain around the endpoint, built once (reset by `use`).
        self._chain: CallNext | None = None

    def register(
        self, type: str, *, schema: Schema | None = None, auth: bool = False, cost: float = 1.0, bare: bool = False
    ) -> Callable[[Handler], Handler]:
        """Decorator registering `handler` for frames of `type` (re-registration replaces)."""

        def decorator(handler: Handler) -> Handler:
            # Async functions, and objects whose __call__ is async.
            call = handler if inspect.isfunction(handler) or inspect.ismethod(handler) else handler.__class__.__call__
            is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)
            if bare and (auth or cost):
                raise ValueError("a bare route has no middleware: it cannot require auth or cost tokens")
            self._routes[type] = Route(type, handler, schema, auth, cost, is_async, bare)
            return handler

        return decorator

    def use(self, middleware: Middleware) -> Middleware:
        """Add middleware; the first added is the outermost."""
        self._middleware.append(middleware)
        self._chain = None
        return middleware

    @property
    def middleware(self) -> tuple[Middleware, ...]:
        return tuple(self._middleware)

    def route_for(self, type: str) -> Route | None:
        return self._routes.get(type)

    def types(self) -> list[str]:
        return sorted(self._routes)

    async def dispatch(self, request: Request) -> Any:
        route = request.route = self._routes.get(request.type)
        if route is not None and route.bare:
            return await self._endpoint(request)
        call = self._chain
        if call is None:
            call = self._endpoint
            for mw in reversed(self._middleware):
                call = _bind(mw, call)
            self._chain = call
        return await call(request)

    async def _endpoint(self, request: Request) -> Any:
        route = request.route
        if route is None:
            raise UnknownType(f"unknown message type {request.type!r}")
        if route.schema is not None:
            request.data = route.schema(request.frame)
        if route.is_async:
            return await route.handler(request)
        result = await database_sync_to_async(route.handler)(request)
        if asyncio.iscoroutine(result):  # a sync wrapper returning a coroutine
            return await result
        return result


def _bind(mw: Middleware, call_next: CallNext) -> CallNext:
    async def call(request: Request) -> Any:
        return await mw(request, call_next)

    return call


#: The process-wide router the apps register on.
router = Router()
