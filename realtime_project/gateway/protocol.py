"""Protocol v1: frame decoding, validation and encoding (pure; see docs/protocol.md).

Nothing here does I/O or imports Django or Channels, so every rule is tested without
an event loop. Frames are JSON objects with a string `type`; the client may attach an
`id` (string or integer) that the server echoes on the reply or error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

from .errors import BadRequest, ErrorCode, GatewayError, TooLarge

PROTOCOL_VERSION: Final = 1

#: Largest client frame accepted, in bytes of UTF-8 (issue #2: 64 KiB).
MAX_FRAME_BYTES: Final = 64 * 1024
#: Client ids are echoed back; keep them short so they cannot be used to amplify.
MAX_ID_LENGTH: Final = 64
#: `type` names are `word` or `app.action`.
TYPE_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31})?\Z")
#: Channel names: `namespace` or `namespace:key`. The limits keep the derived Channels
#: group name (`rt.<namespace>.<key>`) under Channels' 100-character limit.
CHANNEL_RE: Final = re.compile(r"^(?P<ns>[a-z][a-z0-9_]{0,23})(?::(?P<key>[A-Za-z0-9_.\-]{1,64}))?\Z")

JsonObj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChannelName:
    """A parsed channel name (its Channels group: `layer_messages.channel_group`)."""

    namespace: str
    key: str | None

    @property
    def name(self) -> str:
        return self.namespace if self.key is None else f"{self.namespace}:{self.key}"

    def __str__(self) -> str:
        return self.name


def parse_channel(value: object) -> ChannelName:
    """Validate a channel name from a client or a publisher."""
    if not isinstance(value, str):
        raise BadRequest("channel must be a string")
    match = CHANNEL_RE.match(value)
    if match is None:
        raise BadRequest("malformed channel name", details={"channel": value[:100]})
    return ChannelName(match.group("ns"), match.group("key"))


def decode_frame(text: str | None, data: bytes | None = None) -> JsonObj:
    """Decode one client frame into a dict with a valid `type` and `id`.

    Raises a `GatewayError` with the code to report; the connection stays open.
    """
    if text is None:
        if data is not None:
            raise BadRequest("binary frames are not supported; send JSON text", code=ErrorCode.UNSUPPORTED)
        raise BadRequest("empty frame")
    # len(text) is a lower bound of the UTF-8 size; only encode when it could matter.
    if len(text) > MAX_FRAME_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise TooLarge(f"frame exceeds {MAX_FRAME_BYTES} bytes")
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadRequest("frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise BadRequest("frame must be a JSON object")
    frame_id = frame.get("id")
    if frame_id is not None:
        if isinstance(frame_id, bool) or not isinstance(frame_id, (str, int)):
            frame.pop("id")
            raise BadRequest("id must be a string or an integer")
        if isinstance(frame_id, str) and len(frame_id) > MAX_ID_LENGTH:
            frame.pop("id")
            raise BadRequest(f"id longer than {MAX_ID_LENGTH} characters")
    frame_type = frame.get("type")
    error = None
    if frame_type is None:
        error = BadRequest("missing type")
    elif not isinstance(frame_type, str) or not TYPE_RE.match(frame_type):
        error = BadRequest("type must be a name like 'subscribe' or 'app.action'")
    if error is not None:
        error.frame_id = frame_id  # valid by now: the error echoes it
        raise error
    return frame


def frame_size(text: str | None, data: bytes | None) -> int:
    """Size of a client frame in bytes (UTF-8), as the rate limiter charges it."""
    if text is None:
        return 0 if data is None else len(data)
    n = len(text)  # a lower bound of the UTF-8 size: exact for ASCII, encode only when it matters
    return n if n <= 1024 else len(text.encode("utf-8", "surrogatepass"))


#: A refused frame's `id` is echoed (so the client fails that request at once) only for
#: frames this small: decoding a large refused frame would be the work refusing it saves.
PEEK_ID_MAX_BYTES: Final = 1024


def peek_id(text: str | None) -> str | int | None:
    """The `id` of a small frame that was refused before decoding, if it has a valid one."""
    if text is None or len(text) > PEEK_ID_MAX_BYTES:
        return None
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(frame, dict):
        return None
    value = frame.get("id")
    if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
        return None
    return safe_id(frame)


def safe_id(frame: JsonObj | None) -> str | int | None:
    """The client's id, if it was valid (decode_frame removes invalid ones)."""
    if frame is None:
        return None
    value = frame.get("id")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    return None


# --- encoding -------------------------------------------------------------------------


def dumps(obj: Any) -> str:
    """Encode a frame as compact JSON text (orjson; non-str keys allowed)."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()


def encode_payload(data: Any) -> str:
    """Encode a publisher's payload once, at the call site.

    Raises `TypeError` naming the problem when `data` is not JSON-serialisable, so the
    publisher sees the error and nothing is sent (issue #3, bad input).
    """
    try:
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as exc:  # orjson.JSONEncodeError subclasses TypeError
        raise TypeError(f"payload is not JSON-serialisable: {exc}") from None


def message_frame(
    channel: str, payload_json: str, seq: int | None, epoch: str | None, *, snapshot: bool = False
) -> str:
    """Build a `message` frame around an already-encoded payload without re-encoding it.

    This is the fan-out hot path: one string build per publication, shared by every
    subscriber. `snapshot: true` marks the latest value sent on (re)subscribe.
    """
    if seq is None:
        return f'{{"type":"message","channel":{dumps(channel)},"data":{payload_json}}}'
    flag = ',"snapshot":true' if snapshot else ""
    return (
        f'{{"type":"message","channel":{dumps(channel)},"seq":{seq},'
        f'"epoch":{dumps(epoch)}{flag},"data":{payload_json}}}'
    )


def error_frame(error: GatewayError, frame_id: str | int | None) -> JsonObj:
    out: JsonObj = {"type": "error", "id": frame_id, "code": error.code.value, "message": error.message}
    if error.details:
        out["details"] = error.details
    return out


# --- server frames (every frame the server sends is built here) ---------------------

FrameId = str | int | None


def error_text(error: GatewayError, frame_id: FrameId) -> str:
    """An `error` frame: the code and the message given by the error, never a traceback."""
    return dumps(error_frame(error, frame_id))


def welcome_frame(
    *,
    session: str,
    user_id: int | None,
    is_staff: bool,
    heartbeat_interval: float,
    heartbeat_timeout: float,
    limits: JsonObj,
    server_time: int,
) -> str:
    return dumps(
        {
            "type": "welcome",
            "protocol": PROTOCOL_VERSION,
            "session": session,
            "user": None if user_id is None else {"id": user_id, "staff": is_staff},
            "heartbeat": {"interval": int(heartbeat_interval * 1000), "timeout": int(heartbeat_timeout * 1000)},
            "limits": limits,
            "server_time": server_time,
        }
    )


def ping_frame(ping_id: str, server_time: int) -> str:
    """The server's heartbeat ping (hot: one per connection per interval, no encoder call)."""
    return f'{{"type":"ping","id":{dumps(ping_id)},"server_time":{server_time}}}'


def pong_frame(frame_id: FrameId, server_time: int) -> str:
    return dumps({"type": "pong", "id": frame_id, "server_time": server_time})


def reply_frame(frame_id: FrameId, request: str, data: Any) -> str:
    return dumps({"type": "reply", "id": frame_id, "request": request, "data": data})


def subscribed_frame(
    frame_id: FrameId,
    channel: str,
    *,
    epoch: str,
    seq: int,
    recovered: bool | None = None,
    max_rate: float | None = None,
) -> str:
    out: JsonObj = {"type": "subscribed", "id": frame_id, "channel": channel}
    if max_rate is not None:
        out["max_rate"] = max_rate
    if recovered is not None:
        out["recovered"] = recovered
    out["epoch"] = epoch
    out["seq"] = seq
    return dumps(out)


def unsubscribed_frame(frame_id: FrameId, channel: str, reason: str | None = None) -> str:
    out: JsonObj = {"type": "unsubscribed", "id": frame_id, "channel": channel}
    if reason is not None:
        out["reason"] = reason
    return dumps(out)


def authenticated_frame(frame_id: FrameId, user_id: int | None) -> str:
    return dumps({"type": "authenticated", "id": frame_id, "user": {"id": user_id}})


def reconnect_frame(reason: str, after_ms: int, *, handover_ms: int | None = None) -> str:
    """Go elsewhere: after `after_ms` (drain), or at once keeping this socket open for
    `handover_ms` while the new one subscribes (make-before-break, docs/protocol.md)."""
    frame: dict[str, Any] = {"type": "reconnect", "reason": reason, "after_ms": after_ms}
    if handover_ms is not None:
        frame["handover_ms"] = handover_ms
    return dumps(frame)


# --- field validation -----------------------------------------------------------------


def require_str(frame: JsonObj, field: str, *, max_length: int = 1024) -> str:
    value = frame.get(field)
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string")
    if len(value) > max_length:
        raise BadRequest(f"{field} longer than {max_length} characters")
    return value


def optional_number(frame: JsonObj, field: str) -> float | None:
    value = frame.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"{field} must be a finite number")
    return float(value)


@dataclass(frozen=True, slots=True)
class Since:
    """A client's recovery position: the last `seq` it saw in `epoch`."""

    epoch: str
    seq: int


def parse_since(value: object) -> Since | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("since must be an object {epoch, seq}")
    epoch = value.get("epoch")
    seq = value.get("seq")
    if not isinstance(epoch, str) or not epoch or len(epoch) > 64:
        raise BadRequest("since.epoch must be a non-empty string")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise BadRequest("since.seq must be an integer")
    if seq < 0:
        raise BadRequest("since.seq must not be negative")
    return Since(epoch, seq)


#: Highest `max_rate` (messages/s per channel) a client may ask for; above this,
#: conflation would be pointless and the value is probably a bug.
MAX_RATE_LIMIT: Final = 1000.0


def parse_max_rate(frame: JsonObj) -> float | None:
    rate = optional_number(frame, "max_rate")
    if rate is None:
        return None
    if rate <= 0:
        raise BadRequest("max_rate must be greater than 0")
    if rate > MAX_RATE_LIMIT:
        raise BadRequest(f"max_rate must be at most {MAX_RATE_LIMIT:g}")
    return rate


__all__ = [
    "CHANNEL_RE",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "ChannelName",
    "GatewayError",
    "Since",
    "authenticated_frame",
    "decode_frame",
    "dumps",
    "encode_payload",
    "error_frame",
    "error_text",
    "frame_size",
    "message_frame",
    "parse_channel",
    "parse_max_rate",
    "parse_since",
    "peek_id",
    "ping_frame",
    "pong_frame",
    "reconnect_frame",
    "reply_frame",
    "require_str",
    "safe_id",
    "subscribed_frame",
    "unsubscribed_frame",
    "welcome_frame",
]
