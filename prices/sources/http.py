"""One shared `requests` session per process and JSON fetching with the sources' error rules."""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from realtime_project.runtime import Slot

from .base import BadResponse, Blocked, RateLimited, SourceUnavailable

if TYPE_CHECKING:
    from requests.sessions import _Settings

USER_AGENT = "realtime-platform-prices/1.0"
#: Retry-After values are trusted up to Binance's longest ban (3 days).
MAX_RETRY_AFTER = 3 * 86_400.0
#: Cap on a response body: a source sending more is broken or hostile.
MAX_BODY_BYTES = 8 * 1024 * 1024


class _Session(requests.Session):
    """A Session that reads the environment (proxies, `NO_PROXY`, CA bundle) once per host.

    `requests` scans `os.environ` on every request to find proxies: a quarter of a request's
    CPU (≈ 0.17 ms here), for a tick of ~22 requests sharing the GIL with the rest of it.
    The environment of a running worker does not change, so the answer per scheme and
    host is kept. Calls with explicit settings go through unchanged.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], _Settings] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> _Settings:
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        settings = self._environment.get(key)
        if settings is None:
            settings = self._environment[key] = super().merge_environment_settings(url, {}, None, None, None)
        # A copy: requests may add to the proxies of one request.
        return {**settings, "proxies": dict(settings["proxies"])}


def _new_session() -> requests.Session:
    session = _Session()
    # No automatic retries: a failing source goes into backoff instead.
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return session


#: The process's session (connection pooling/keep-alive), in its runtime object (a forked
#: child makes its own).
SESSION: Slot[requests.Session] = Slot("prices.http_session", _new_session, close=requests.Session.close)


def shared_session() -> requests.Session:
    return SESSION.get()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0
    return min(seconds, MAX_RETRY_AFTER)


def decode_json(content: bytes | str) -> Any:
    """JSON from a response body: orjson (5-10x faster on a 60 kB Binance batch), and the
    standard library for what orjson refuses but sources send: `NaN`/`Infinity` literals
    (a NaN price must reach the aggregator, which rejects it as `invalid_price`), a BOM,
    UTF-16. Raises ValueError (or UnicodeDecodeError) when neither can read it."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)


def get_json(
    url: str,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: tuple[float, float],
    session: requests.Session | None = None,
) -> Reply:
    """GET `url` and decode JSON.

    Raises RateLimited (429, 418), Blocked (451), SourceUnavailable (timeouts,
    connection errors, 5xx) and BadResponse (non-JSON bodies: HTML error pages,
    truncated JSON). Other statuses are returned with their decoded body: what a
    404 or a 400 means is the adapter's business.
    """
    session = session or shared_session()
    try:
        resp = session.get(url, params=params, headers=headers, timeout=timeout)
    except requests.Timeout:
        raise SourceUnavailable("timed out", code="timeout") from None
    except requests.ConnectionError:
        raise SourceUnavailable("connection failed", code="connection") from None
    except requests.RequestException as exc:
        raise SourceUnavailable(type(exc).__name__, code="request_failed") from None
    status = resp.status_code
    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    if status in (429, 418):
        raise RateLimited(f"HTTP {status}", code="banned" if status == 418 else "rate_limited", retry_after=retry_after)
    if status == 451:
        raise Blocked("HTTP 451 restricted location")
    if status >= 500:
        raise SourceUnavailable(f"HTTP {status}", code=f"http_{status}", retry_after=retry_after)
    try:
        content = resp.content
    except requests.RequestException:
        # The body broke off mid-read (connection reset, read timeout).
        raise SourceUnavailable("body read failed", code="truncated") from None
    if len(content) > MAX_BODY_BYTES:
        raise BadResponse(f"body of {len(content)} bytes", code="too_large")
    try:
        body = decode_json(content)
    except (ValueError, UnicodeDecodeError):
        kind = "html" if b"<html" in content[:512].lower() or "html" in resp.headers.get("Content-Type", "") else "json"
        raise BadResponse(f"HTTP {status}: not JSON ({kind})", code=f"malformed_{kind}") from None
    return Reply(status, body, {k.lower(): v for k, v in resp.headers.items()})
