"""Limits and abuse, black-box (issue #12, findings 4, 6 and 7): real uvicorn and daphne
gateways in production mode (Redis, PostgreSQL), real and raw WebSocket clients.

- connections per client address and per gateway: refused before any work, with the
  documented HTTP status (uvicorn) or close code (daphne), and a freed slot is reusable;
- a client sending its request head one byte at a time is dropped after the handshake
  timeout, while a normal handshake and an idle open socket are not;
- every frame spends rate-limit tokens, also frames that fail to decode: a flood of `{`
  is closed with 4429 after the documented number of refusals, and another socket on the
  same gateway is still answered;
- invalid UTF-8 in a text frame closes with 1007 and is logged once per connection as a
  WARNING without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import TEST_REDIS_URL
from tests.security.rawws import RawClient, client_frame, request_head
from tests.support.servers import ServerProcess, server_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

PER_ADDRESS, TOTAL, HEAD_TIMEOUT = 3, 5, 1.0


@pytest.fixture(params=["uvicorn", "daphne"])
def gateway(request: pytest.FixtureRequest, redis_url: str) -> Iterator[ServerProcess]:
    prefix = f"t{secrets.token_hex(4)}"
    env = server_env(
        redis=TEST_REDIS_URL,
        key_prefix=prefix,
        extra={
            "REALTIME_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
            "REALTIME_MAX_CONNECTIONS": str(TOTAL),
            "REALTIME_HANDSHAKE_TIMEOUT": str(HEAD_TIMEOUT),
        },
    )
    kind, _, http = request.param.partition("-")
    if http:
        env["REALTIME_HTTP"] = http  # uvicorn's other HTTP parser
    server = ServerProcess(env=env, server=kind)
    server.start()
    yield server
    server.stop()
    server.assert_clean_log()


async def _open(server: ServerProcess, source: str) -> Any:
    """A connection from `source` (any 127/8 address is this machine) that got its welcome."""
    ws = await websockets.connect(server.ws_url, local_addr=(source, 0), open_timeout=10)
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert welcome["type"] == "welcome"
    return ws


async def _refusal(server: ServerProcess, source: str) -> tuple[int, str | None]:
    """How a connection over a limit is refused: (HTTP status, Retry-After) on uvicorn,
    (close code, None) on daphne, which opens the socket and closes it at once."""
    try:
        ws = await websockets.connect(server.ws_url, local_addr=(source, 0), open_timeout=10)
    except InvalidStatus as exc:
        body = json.loads(exc.response.body or b"{}")
        assert body["retry_after"] == 5 and body["code"]
        return exc.response.status_code, exc.response.headers.get("Retry-After")
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)  # no welcome: the close comes first
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, None


async def test_connections_per_address_and_per_gateway_are_limited(gateway: ServerProcess) -> None:
    uvicorn = gateway.server == "uvicorn"
    first = [await _open(gateway, "127.0.0.1") for _ in range(PER_ADDRESS)]
    # Over the per-address limit: HTTP 429 / close 4429; other addresses are not affected.
    assert await _refusal(gateway, "127.0.0.1") == ((429, "5") if uvicorn else (4429, None))
    second = [await _open(gateway, "127.0.0.2") for _ in range(TOTAL - PER_ADDRESS)]
    # The gateway is full: HTTP 503 / close 1013 (try again later), whatever the address.
    assert await _refusal(gateway, "127.0.0.3") == ((503, "5") if uvicorn else (1013, None))
    # A freed slot is free again (refused handshakes held none).
    await first.pop().close()
    await asyncio.sleep(0.3)
    first.append(await _open(gateway, "127.0.0.3"))
    for ws in first + second:
        await ws.close()
    log = gateway.read_log()
    assert "ERROR" not in log and "Traceback" not in log


@pytest.mark.parametrize("gateway", ["uvicorn", "uvicorn-h11", "daphne"], indirect=True)
async def test_a_slow_request_head_is_dropped(gateway: ServerProcess) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    head = request_head(gateway.port)
    started = loop.time()
    dropped_at = None
    for byte in head:  # one byte every 0.2 s: the whole head would take ~30 s
        try:
            writer.write(bytes([byte]))
            await writer.drain()
            if await asyncio.wait_for(reader.read(1), 0.2) == b"":
                dropped_at = loop.time() - started
                break
        except TimeoutError:
            continue
        except ConnectionError:
            dropped_at = loop.time() - started
            break
    writer.close()
    assert dropped_at is not None, "the slow client was never dropped"
    assert HEAD_TIMEOUT - 0.1 <= dropped_at < HEAD_TIMEOUT + 4

    # A handshake that completes in time keeps its socket well past the timeout.
    client = await RawClient.connect(gateway.port)
    welcome = await client.recv()
    assert welcome.json()["type"] == "welcome"
    await asyncio.sleep(HEAD_TIMEOUT + 1.5)
    await client.send(json.dumps({"type": "ping", "id": "still-here"}))
    assert (await client.recv()).json()["id"] == "still-here"
    client.close()


@pytest.mark.parametrize(
    ("payload", "answered"),
    [(b"{", "bad_request"), (b'{"type":"pong","id":"nope"}', None)],  # not JSON; pongs (no answer)
    ids=["undecodable", "pongs"],
)
async def test_frames_that_fail_to_decode_spend_tokens_and_a_flood_is_closed(
    gateway: ServerProcess, payload: bytes, answered: str | None
) -> None:
    other = await _open(gateway, "127.0.0.2")
    flooder = await RawClient.connect(gateway.port)
    assert (await flooder.recv()).json()["type"] == "welcome"
    for _ in range(20):  # 5,000 frames
        flooder.writer.write(b"".join(client_frame(payload) for _ in range(250)))
        await flooder.writer.drain()
    frames, code = await flooder.until_close(timeout=15)
    assert code == 4429
    errors = [f.json() for f in frames if f.json()["type"] == "error"]
    codes = [e["code"] for e in errors]
    # The burst of 40 tokens (and a few refilled meanwhile) was served, then refusals
    # until 100 in a row (the flood close), then nothing: never 5,000 answers.
    if answered is not None:
        assert 35 <= codes.count(answered) < 200
    assert codes.count("rate_limited") >= 100 and len(codes) < 1000
    assert errors[-1]["message"] == "too many frames; closing"
    flooder.close()
    # The other socket was never affected.
    await other.send(json.dumps({"type": "ping", "id": 1}))
    assert json.loads(await asyncio.wait_for(other.recv(), 5))["type"] == "pong"
    await other.close()


async def test_invalid_utf8_closes_1007_and_is_logged_once_per_connection(gateway: ServerProcess) -> None:
    for _ in range(2):
        client = await RawClient.connect(gateway.port)
        assert (await client.recv()).json()["type"] == "welcome"
        # Three bad text frames in one write: one close, one log line.
        client.writer.write(b"".join(client_frame(b'{"type":"ping","x":"\xff\xfe"}') for _ in range(3)))
        await client.writer.drain()
        _, code = await client.until_close()
        assert code == 1007
        client.close()
    await asyncio.sleep(0.3)
    log = gateway.read_log()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    if gateway.server == "uvicorn":
        lines = [line for line in log.splitlines() if "not valid UTF-8" in line]
        assert len(lines) == 2 and all("WARNING" in line for line in lines), lines


async def test_the_gateway_pools_its_database_connections(live_server_factory: Any, redis_url: str) -> None:
    """Signed-in handshakes each look a session up in PostgreSQL; the gateway takes the
    connection from its pool instead of opening one per lookup (counted by PostgreSQL)."""
    from channels.db import database_sync_to_async
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client as DjangoClient

    @database_sync_to_async
    def session_cookie() -> str:
        user = get_user_model().objects.create_user(username="pooled", password="pw")
        http = DjangoClient()
        http.force_login(user)
        return str(http.cookies[settings.SESSION_COOKIE_NAME].value)

    @database_sync_to_async
    def sessions_started() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return int(cursor.fetchone()[0])

    assert connection.vendor == "postgresql"
    server = live_server_factory(server="uvicorn", redis=redis_url, key_prefix=f"t{secrets.token_hex(4)}")
    cookie = await session_cookie()

    async def signed_in() -> None:
        async with websockets.connect(server.ws_url, additional_headers={"Cookie": f"sessionid={cookie}"}) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["user"] is not None

    await signed_in()  # the pool is open
    await asyncio.sleep(1.2)  # PostgreSQL publishes session counts at most once a second
    before = await sessions_started()
    for _ in range(20):
        await signed_in()
    await asyncio.sleep(1.2)
    assert await sessions_started() - before <= 2  # not one connection per lookup (20)
