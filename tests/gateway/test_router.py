"""Router: registration, schema validation, sync/async handlers, middleware order, unknown types.

Each test uses its own `Router`, so the process-wide router the apps fill is never touched.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from realtime_project.gateway.connections import Connection
from realtime_project.gateway.errors import BadRequest, ErrorCode, NotFound, UnknownType
from realtime_project.gateway.heartbeat import Heartbeat
from realtime_project.gateway.namespaces import ANONYMOUS, Principal
from realtime_project.gateway.ratelimit import TokenBucket
from realtime_project.gateway.router import NO_REPLY, CallNext, Request, Route, Router, router


async def _discard(_: Any) -> None:
    return None


def make_connection(principal: Principal = ANONYMOUS) -> Connection:
    return Connection(
        send_text=_discard,
        close_transport=_discard,
        heartbeat=Heartbeat(25, 10, started_at=0.0),
        bucket=TokenBucket.full(20, 40, 0.0),
        queue_limit=100,
        connected_at=0.0,
        principal=principal,
    )


def make_request(frame: dict[str, Any], principal: Principal = ANONYMOUS) -> Request:
    return Request(make_connection(principal), frame)


class TestRegistration:
    def test_register_returns_the_handler_and_records_the_route(self) -> None:
        r = Router()

        async def handler(request: Request) -> int:
            return 1

        def schema(frame: dict[str, Any]) -> Any:
            return frame

        assert r.register("app.do", schema=schema, auth=True, cost=2.5)(handler) is handler
        assert r.route_for("app.do") == Route("app.do", handler, schema, True, 2.5, True)
        assert r.types() == ["app.do"]

    def test_defaults_and_sync_detection(self) -> None:
        r = Router()

        @r.register("a.sync")
        def sync_handler(request: Request) -> None:
            return None

        route = r.route_for("a.sync")
        assert route is not None
        assert (route.schema, route.auth, route.cost, route.is_async) == (None, False, 1.0, False)

    def test_re_registration_replaces(self) -> None:
        r = Router()
        r.register("a.b")(lambda request: 1)

        @r.register("a.b", auth=True)
        async def newer(request: Request) -> int:
            return 2

        route = r.route_for("a.b")
        assert route is not None and route.handler is newer and route.auth and route.is_async
        assert r.types() == ["a.b"]

    def test_types_sorted_and_unknown_route(self) -> None:
        r = Router()
        for name in ("z.z", "a.a", "m"):
            r.register(name)(lambda request: None)
        assert r.types() == ["a.a", "m", "z.z"]
        assert r.route_for("nope") is None

    def test_use_returns_middleware_and_keeps_order(self) -> None:
        r = Router()

        async def one(request: Request, call_next: CallNext) -> Any:
            return await call_next(request)

        async def two(request: Request, call_next: CallNext) -> Any:
            return await call_next(request)

        assert r.use(one) is one
        r.use(two)
        assert r.middleware == (one, two)

    def test_process_router_exists(self) -> None:
        assert isinstance(router, Router)


class TestRequest:
    def test_properties(self) -> None:
        req = make_request({"type": "a.b", "id": "x"}, Principal(5))
        assert (req.type, req.id, req.user_id, req.principal) == ("a.b", "x", 5, Principal(5))

    @pytest.mark.parametrize("value", [True, None, 1.5, ["x"]])
    def test_invalid_id_is_none(self, value: object) -> None:
        assert make_request({"type": "a", "id": value}).id is None

    def test_missing_id(self) -> None:
        assert make_request({"type": "a"}).id is None
        assert make_request({"type": "a", "id": 0}).id == 0


class TestDispatch:
    async def test_async_handler_runs_on_the_loop(self) -> None:
        r = Router()
        loop_thread = threading.get_ident()

        @r.register("a.echo")
        async def echo(request: Request) -> Any:
            assert threading.get_ident() == loop_thread
            return {"got": request.frame["v"]}

        assert await r.dispatch(make_request({"type": "a.echo", "v": 3})) == {"got": 3}

    async def test_schema_result_is_request_data(self) -> None:
        r = Router()

        def schema(frame: dict[str, Any]) -> int:
            value = frame.get("n")
            if not isinstance(value, int):
                raise BadRequest("n must be an integer", details={"field": "n"})
            return value * 2

        @r.register("a.double", schema=schema)
        async def handler(request: Request) -> Any:
            return request.data

        assert await r.dispatch(make_request({"type": "a.double", "n": 21})) == 42

    @pytest.mark.parametrize("asynchronous", [True, False])
    async def test_schema_error_stops_before_the_handler(self, asynchronous: bool) -> None:
        r = Router()
        called: list[int] = []

        def schema(frame: dict[str, Any]) -> Any:
            raise BadRequest("nope", details={"field": "x"})

        async def async_handler(request: Request) -> None:
            called.append(1)

        def sync_handler(request: Request) -> None:
            called.append(1)

        r.register("a.v", schema=schema)(async_handler if asynchronous else sync_handler)
        with pytest.raises(BadRequest) as exc:
            await r.dispatch(make_request({"type": "a.v"}))
        assert exc.value.code is ErrorCode.BAD_REQUEST and exc.value.details == {"field": "x"}
        assert called == []

    async def test_no_schema_leaves_data_none(self) -> None:
        r = Router()

        @r.register("a.raw")
        async def handler(request: Request) -> Any:
            return request.data

        assert await r.dispatch(make_request({"type": "a.raw"})) is None

    async def test_unknown_type(self) -> None:
        r = Router()
        req = make_request({"type": "nobody.home"})
        with pytest.raises(UnknownType) as exc:
            await r.dispatch(req)
        assert exc.value.code is ErrorCode.UNKNOWN_TYPE
        assert "nobody.home" in exc.value.message
        assert req.route is None

    async def test_handler_errors_propagate(self) -> None:
        r = Router()

        @r.register("a.missing")
        async def handler(request: Request) -> None:
            raise NotFound("no such rule", details={"rule_id": 9})

        with pytest.raises(NotFound):
            await r.dispatch(make_request({"type": "a.missing"}))

    async def test_no_reply_is_returned_as_is(self) -> None:
        r = Router()
        r.register("a.quiet")(_quiet)
        assert await r.dispatch(make_request({"type": "a.quiet"})) is NO_REPLY


async def _quiet(request: Request) -> Any:
    return NO_REPLY


class TestSyncHandlers:
    async def test_sync_handler_runs_off_the_loop(self) -> None:
        r = Router()
        seen: dict[str, Any] = {}

        @r.register("a.sync")
        def handler(request: Request) -> str:
            seen["thread"] = threading.get_ident()
            try:
                asyncio.get_running_loop()
                seen["loop"] = True
            except RuntimeError:
                seen["loop"] = False
            return "done"

        assert await r.dispatch(make_request({"type": "a.sync"})) == "done"
        assert seen["thread"] != threading.get_ident()
        assert seen["loop"] is False

    async def test_blocking_sync_handler_does_not_block_the_loop(self) -> None:
        r = Router()
        release = threading.Event()

        @r.register("a.block")
        def handler(request: Request) -> str:
            # Waits for a loop task: if the handler ran on the loop, this would time out.
            return "released" if release.wait(timeout=5) else "timed out"

        async def unblock() -> None:
            await asyncio.sleep(0.01)
            release.set()

        result, _ = await asyncio.gather(r.dispatch(make_request({"type": "a.block"})), unblock())
        assert result == "released"

    async def test_sync_handlers_share_one_thread(self) -> None:
        # database_sync_to_async is thread-sensitive: DB work stays on one thread.
        r = Router()
        threads: list[int] = []

        @r.register("a.t")
        def handler(request: Request) -> None:
            threads.append(threading.get_ident())

        for _ in range(3):
            await r.dispatch(make_request({"type": "a.t"}))
        assert len(set(threads)) == 1

    async def test_sync_handler_can_call_back_into_the_serving_loop(self) -> None:
        # asgiref's sync_to_async (which database_sync_to_async extends) remembers the calling
        # loop, so async_to_sync inside a sync handler runs on the server's loop, not a new one.
        r = Router()
        loops: list[asyncio.AbstractEventLoop] = []

        async def on_loop() -> None:
            loops.append(asyncio.get_running_loop())

        @r.register("a.back")
        def handler(request: Request) -> str:
            async_to_sync(on_loop)()
            return "ok"

        assert await r.dispatch(make_request({"type": "a.back"})) == "ok"
        assert loops == [asyncio.get_running_loop()]

    async def test_sync_wrapper_returning_a_coroutine_is_awaited(self) -> None:
        r = Router()

        async def inner(request: Request) -> str:
            return "inner"

        r.register("a.wrapper")(functools.partial(_call_async, inner))
        route = r.route_for("a.wrapper")
        assert route is not None and route.is_async is False
        assert await r.dispatch(make_request({"type": "a.wrapper"})) == "inner"

    async def test_partial_of_an_async_function_is_async(self) -> None:
        r = Router()

        async def handler(suffix: str, request: Request) -> str:
            return request.type + suffix

        r.register("a.p")(functools.partial(handler, "!"))
        route = r.route_for("a.p")
        assert route is not None and route.is_async is True
        assert await r.dispatch(make_request({"type": "a.p"})) == "a.p!"

    async def test_object_with_async_call_is_an_async_handler(self) -> None:
        class AsyncCallable:
            async def __call__(self, request: Request) -> str:
                return "object"

        r = Router()
        r.register("a.object")(AsyncCallable())
        assert await r.dispatch(make_request({"type": "a.object"})) == "object"


def _call_async(fn: Any, request: Request) -> Any:
    return fn(request)


class TestMiddleware:
    async def test_first_added_is_outermost(self) -> None:
        r = Router()
        trace: list[str] = []

        def make(name: str) -> Any:
            async def mw(request: Request, call_next: CallNext) -> Any:
                trace.append(f"{name}>")
                result = await call_next(request)
                trace.append(f"<{name}")
                return f"{name}({result})"

            return mw

        for name in ("outer", "middle", "inner"):
            r.use(make(name))

        @r.register("a.h")
        async def handler(request: Request) -> str:
            trace.append("handler")
            return "h"

        assert await r.dispatch(make_request({"type": "a.h"})) == "outer(middle(inner(h)))"
        assert trace == ["outer>", "middle>", "inner>", "handler", "<inner", "<middle", "<outer"]

    async def test_middleware_sees_the_route_before_the_schema_runs(self) -> None:
        r = Router()
        trace: list[str] = []

        def schema(frame: dict[str, Any]) -> Any:
            trace.append("schema")
            return 1

        async def mw(request: Request, call_next: CallNext) -> Any:
            assert request.route is not None and request.route.type == "a.s"
            trace.append("mw")
            return await call_next(request)

        r.use(mw)
        r.register("a.s", schema=schema)(_quiet)
        await r.dispatch(make_request({"type": "a.s"}))
        assert trace == ["mw", "schema"]

    async def test_middleware_runs_for_unknown_types_and_can_short_circuit(self) -> None:
        r = Router()
        seen: list[Route | None] = []

        async def catch_all(request: Request, call_next: CallNext) -> Any:
            seen.append(request.route)
            if request.route is None:
                return "handled by middleware"
            return await call_next(request)

        r.use(catch_all)
        assert await r.dispatch(make_request({"type": "x.unknown"})) == "handled by middleware"
        assert seen == [None]

    async def test_middleware_can_reject(self) -> None:
        r = Router()
        called: list[int] = []

        async def deny(request: Request, call_next: CallNext) -> Any:
            raise BadRequest("denied")

        r.use(deny)

        @r.register("a.h")
        async def handler(request: Request) -> None:
            called.append(1)

        with pytest.raises(BadRequest):
            await r.dispatch(make_request({"type": "a.h"}))
        assert called == []

    async def test_middleware_added_later_applies_to_next_dispatch(self) -> None:
        r = Router()
        r.register("a.h")(_quiet)
        assert await r.dispatch(make_request({"type": "a.h"})) is NO_REPLY

        async def replace(request: Request, call_next: CallNext) -> Any:
            await call_next(request)
            return "replaced"

        r.use(replace)
        assert await r.dispatch(make_request({"type": "a.h"})) == "replaced"

    async def test_a_bare_route_skips_the_middleware_others_keep_it(self) -> None:
        r = Router()
        seen: list[str] = []

        async def mw(request: Request, call_next: CallNext) -> Any:
            seen.append(request.type)
            return await call_next(request)

        r.use(mw)
        r.register("a.bare", cost=0, bare=True)(_quiet)
        r.register("a.full")(_quiet)
        assert await r.dispatch(make_request({"type": "a.bare"})) is NO_REPLY
        assert await r.dispatch(make_request({"type": "a.full"})) is NO_REPLY
        assert await r.dispatch(make_request({"type": "a.full"})) is NO_REPLY  # the chain, built once
        assert seen == ["a.full", "a.full"]

    @pytest.mark.parametrize("options", [{"auth": True, "cost": 0}, {"cost": 1.0}])
    def test_a_bare_route_cannot_require_what_only_middleware_enforces(self, options: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="bare route"):
            Router().register("a.bare", bare=True, **options)(_quiet)

    def test_pong_is_bare(self) -> None:
        route = router.route_for("pong")
        assert route is not None and route.bare and route.cost == 0 and not route.auth
