"""Leases: one active instance of a singleton process (feeds, beat), the others on standby.

A lease is a Redis key whose value is the holder's **fencing token** and the `CLIENT ID`
of the holder's Redis connection (`<token>|<client id>`), and whose TTL is the lease's
`duration`. The holder renews it every `renew_every` seconds (1 s) through one dedicated
connection, re-storing that connection's id (a reconnect changes it); a standby tries to
take it every `retry_every` seconds and gets it once the key expired, or at once when the
holder is **provably dead**: its connection is gone from Redis (`CLIENT LIST ID`, Redis ≥
6.2), which is what a kill -9 leaves (the kernel closes the dead process's sockets). The
standby then deletes the lease only if its value is still exactly the one it read, and
takes it as usual, with the next token. So a killed holder is replaced within
`retry_every`; a paused one (SIGSTOP, a frozen VM) keeps its connection and is replaced
within `duration + retry_every` (less than twice `duration`), as is every holder when
Redis refuses `CLIENT LIST ID` (then expiry only, logged once). A holder that resigns
(SIGTERM) deletes the key and a standby takes over at its next try. The liveness check
only makes a takeover earlier: safety rests on the fencing token, never on it (a holder
whose connection merely dropped loses the lease as though it died, and is fenced out).

The token (`<counter>.<owner>`) is new at every acquisition, and the counter only grows
while Redis keeps it; the owner part (`host:pid:random`) keeps tokens unique even after a
Redis restart resets the counter. Publications made on behalf of the lease carry it
(`gateway.api` `fence=`, or `fenced()` below): the publication script compares it with the
key's current value and refuses the whole batch otherwise, so a paused old leader that
wakes up after losing the lease cannot publish, even before it notices.

A holder also keeps its own deadline, `valid_until`, counted on its monotonic clock from
*before* the renewal was sent: it stops acting (`valid()` is false) at the latest when the
key may have expired in Redis, whether or not Redis can be reached to tell it so.

`Lease` is the pure state machine (its store and clock are injected: unit tests drive it
with a fake clock); `RedisLeaseStore` is the store; `lead()` is the asyncio loop that calls
`on_elected(token)` and `on_deposed()` as the lease is won and lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from .clock import SYSTEM_CLOCK, Clock

logger = logging.getLogger("realtime.lease")

#: Lease TTL in Redis (seconds). A paused holder is replaced within DURATION + RETRY_EVERY
#: (a killed one within RETRY_EVERY, see the module doc).
DURATION = 3.0
#: The holder renews this often.
RENEW_EVERY = 1.0
#: A standby tries to take the lease this often.
RETRY_EVERY = 0.5


def owner_id() -> str:
    """This process, uniquely: `host:pid:random` (a restarted pid gets a new one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseStore(Protocol):
    """Where leases live. Every method is atomic; TTLs are in milliseconds."""

    def acquire(self, key: str, owner: str, ttl_ms: int) -> str | None:
        """Take `key` if nobody (alive) holds it: returns the new fencing token, or None."""

    def renew(self, key: str, token: str, ttl_ms: int) -> bool:
        """Extend `key` if it still holds `token`."""

    def release(self, key: str, token: str) -> bool:
        """Delete `key` if it still holds `token`."""

    def holder(self, key: str) -> str | None:
        """The current token, if any."""


#: The token part of a lease's value (`<token>|<client id>`, or a bare token).
_TOKEN_OF = """
local function token_of(value)
  return string.match(value, '^(.*)|%d+$') or value
end
"""

# KEYS: lease, counter. ARGV: owner, ttl ms, suffix ('|<client id>' or '').
# Returns {1, token} when taken, {0, current value} when held.
_ACQUIRE = """
local value = redis.call('GET', KEYS[1])
if value then
  return {0, value}
end
local n = redis.call('INCR', KEYS[2])
local token = n .. '.' .. ARGV[1]
redis.call('SET', KEYS[1], token .. ARGV[3], 'PX', tonumber(ARGV[2]))
return {1, token}
"""

# ARGV: token, ttl ms, suffix: extends the lease and re-stores the holder's client id.
_RENEW = (
    _TOKEN_OF
    + """
local value = redis.call('GET', KEYS[1])
if value and token_of(value) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[3], 'PX', tonumber(ARGV[2]))
  return 1
end
return 0
"""
)

_RELEASE = (
    _TOKEN_OF
    + """
local value = redis.call('GET', KEYS[1])
if value and token_of(value) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
)

#: Compare-and-delete: the lease goes only if its value is still exactly the one read.
_REMOVE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def split_value(value: str) -> tuple[str, int | None]:
    """A lease value's (token, holder's client id or None)."""
    token, sep, client = value.rpartition("|")
    return (token, int(client)) if sep and client.isdigit() else (value, None)


class RedisLeaseStore:
    """Leases in Redis (sync client: the beat scheduler is sync, the feed process calls it
    on a thread of its own). One dedicated connection, whose `CLIENT ID` the lease's
    value carries, and no silent retry on another one (a retried call could store the id
    of a connection other than the one it ran on). Short socket timeouts: a renewal that
    cannot reach Redis fails fast, and the holder's own deadline decides."""

    def __init__(self, url: str, *, client: Any | None = None, timeout: float = 0.5) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.client: Any = client or redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            single_connection_client=True,
            retry=Retry(NoBackoff(), 0),
        )
        self._acquire = self.client.register_script(_ACQUIRE)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)
        self._remove_if = self.client.register_script(_REMOVE_IF)
        #: Whether this Redis answers `CLIENT ID` / `CLIENT LIST ID` (else expiry only).
        self.liveness = True

    def _no_liveness(self, exc: Exception) -> None:
        if self.liveness:
            logger.warning(
                "lease: Redis refuses CLIENT ID / CLIENT LIST ID (%s): "
                "a dead holder is replaced only when its lease expires",
                exc,
            )
        self.liveness = False

    def _suffix(self) -> str:
        """`|<client id>` of this store's connection (asked each time: a reconnect changes it)."""
        import redis

        if not self.liveness:
            return ""
        try:
            return f"|{int(self.client.client_id())}"
        except redis.ResponseError as exc:  # renamed or forbidden command
            self._no_liveness(exc)
            return ""

    def connected(self, client_id: int) -> bool:
        """Whether a connection with this `CLIENT ID` is open (True when Redis cannot tell)."""
        import redis

        if not self.liveness:
            return True
        try:
            return bool(self.client.client_list(client_id=[client_id]))
        except redis.ResponseError as exc:  # before Redis 6.2, renamed or forbidden
            self._no_liveness(exc)
            return True

    def acquire(self, key: str, owner: str, ttl_ms: int) -> str | None:
        suffix = self._suffix()
        taken, value = self._acquire(keys=[key, f"{key}:counter"], args=[owner, ttl_ms, suffix])
        if taken:
            return str(value)
        _, holder = split_value(str(value))
        if holder is None or self.connected(holder) or not self.remove_if(key, str(value)):
            return None
        logger.warning("lease %s: holder %s is gone (its Redis connection closed); taking over", key, value)
        taken, value = self._acquire(keys=[key, f"{key}:counter"], args=[owner, ttl_ms, suffix])
        return str(value) if taken else None

    def remove_if(self, key: str, value: str) -> bool:
        """Delete `key` if it still holds exactly `value` (a dead holder's lease)."""
        return bool(self._remove_if(keys=[key], args=[value]))

    def renew(self, key: str, token: str, ttl_ms: int) -> bool:
        return bool(self._renew(keys=[key], args=[token, ttl_ms, self._suffix()]))

    def release(self, key: str, token: str) -> bool:
        return bool(self._release(keys=[key], args=[token]))

    def holder(self, key: str) -> str | None:
        value = self.client.get(key)
        return split_value(str(value))[0] if value is not None else None

    def close(self) -> None:
        self.client.close()


@dataclass
class Lease:
    """One process's view of one lease (see the module doc). Not thread-safe: one caller."""

    store: LeaseStore
    key: str
    owner: str = ""
    duration: float = DURATION
    clock: Clock = SYSTEM_CLOCK
    token: str | None = None
    #: Local deadline (on `clock.monotonic()`): past it this process must not act as the holder.
    valid_until: float = 0.0

    def __post_init__(self) -> None:
        if self.duration <= 0:
            raise ValueError("lease duration must be positive")
        self.owner = self.owner or owner_id()
        if "|" in self.owner:
            raise ValueError("a lease owner cannot contain '|' (it separates the token from the client id)")

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.duration * 1000))

    def valid(self) -> bool:
        """Whether this process holds the lease now, by its own clock."""
        return self.token is not None and self.clock.monotonic() < self.valid_until

    def hold(self) -> bool:
        """Renew the lease if held, else try to take it; returns `valid()` afterwards.

        A store error (Redis down) keeps a held lease until its local deadline, never
        longer, and is raised only when it decided nothing (the caller logs it).
        """
        sent = self.clock.monotonic()
        if self.token is not None:
            try:
                renewed = self.store.renew(self.key, self.token, self.ttl_ms)
            except Exception:
                if not self.valid():
                    self.token = None
                raise
            if renewed:
                self.valid_until = sent + self.duration
                return self.valid()
            logger.warning("lease %s: lost (token %s is no longer the holder's)", self.key, self.token)
            self.token = None
        token = self.store.acquire(self.key, self.owner, self.ttl_ms)
        if token is not None:
            self.token, self.valid_until = token, sent + self.duration
            logger.info("lease %s: acquired with token %s", self.key, token)
        return self.valid()

    def release(self) -> None:
        """Resign (a clean stop): a standby takes over at its next try."""
        token, self.token, self.valid_until = self.token, None, 0.0
        if token is not None:
            try:
                self.store.release(self.key, token)
            except Exception as exc:
                logger.warning("lease %s: could not release (it expires by itself): %s", self.key, exc)

    @property
    def fence(self) -> tuple[str, str] | None:
        """`(key, token)` for `gateway.api`'s `fence=` while held."""
        return (self.key, self.token) if self.token is not None else None


Sleep = Callable[[float], Awaitable[None]]


async def lead(
    lease: Lease,
    *,
    stop: asyncio.Event,
    on_elected: Callable[[str], Awaitable[None]],
    on_deposed: Callable[[], Awaitable[None]],
    renew_every: float = RENEW_EVERY,
    retry_every: float = RETRY_EVERY,
    call: Callable[[Callable[[], bool]], Awaitable[bool]] | None = None,
    pause: Sleep | None = None,
) -> None:
    """Hold `lease` until `stop` is set: `on_elected(token)` when won, `on_deposed()` when
    lost (and at the end, then resign). `call` runs the blocking store call (default: a
    thread of its own, so a slow Redis never blocks the loop); `pause(seconds)` waits
    between rounds (default: until `stop` or the timeout; tests drive a fake clock)."""
    executor: ThreadPoolExecutor | None = None
    if call is None:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")
        loop = asyncio.get_running_loop()

        async def call(fn: Callable[[], bool]) -> bool:
            return await loop.run_in_executor(executor, fn)

    leading: str | None = None  # the token we lead with
    failing = False
    try:
        while not stop.is_set():
            try:
                held = await call(lease.hold)
                if failing:
                    logger.info("lease %s: store reachable again", lease.key)
                failing = False
            except Exception as exc:
                held = lease.valid()
                if not failing:
                    logger.error("lease %s: store unreachable (%s: %s)", lease.key, type(exc).__name__, exc)
                failing = True
            if leading is not None and (not held or lease.token != leading):
                # Lost, or lost and taken again at once (Redis restarted empty): the work
                # done under the old token stops; its publications would be refused.
                leading = None
                await on_deposed()
            if held and leading is None and lease.token is not None:
                leading = lease.token
                await on_elected(leading)
            # A holder wakes in time to renew, and at the latest when the lease would lapse.
            wait = (
                max(0.0, min(renew_every, lease.valid_until - lease.clock.monotonic()))
                if leading is not None
                else retry_every
            )
            if pause is not None:
                await pause(wait)
                continue
            try:
                async with asyncio.timeout(wait):
                    await stop.wait()
            except TimeoutError:
                pass
    finally:
        if leading is not None:
            await on_deposed()
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, lease.release)
            executor.shutdown(wait=False)
        else:
            lease.release()
