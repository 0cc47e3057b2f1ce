"""The channel-layer message format between publishers and hubs, and the group names.

This module is the one place that knows how a publication travels from a publisher to
the hub of every gateway process (pure: no I/O, no Django, no Channels). Channels groups
implement subscriptions: each gateway process joins a channel's group once;
`send_to_user` reaches the per-user group; `publish_many` batches reach every process
through one batch group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .history import Publication

#: Prefix of every group the gateway uses (kept short: Channels limits names to 100).
GROUP_PREFIX: Final = "rt."
#: Every gateway process joins this group: `publish_many` sends one message per batch.
BATCH_GROUP: Final = "rt.batch"
#: Answered by nobody: used to prove the layer is reachable when no group is held.
PROBE_GROUP: Final = "rt.probe"

PUBLICATION: Final = "hub.message"
BATCH: Final = "hub.batch"
USER: Final = "hub.user"
#: Control message on a user's group: end that user's sockets (all, or one credential's).
REVOKE: Final = "hub.revoke"


def channel_group(channel: str) -> str:
    """The group a gateway joins for `channel` (`prices:BTC` -> `rt.prices.BTC`)."""
    return GROUP_PREFIX + channel.replace(":", ".")


def user_group(user_id: int) -> str:
    """The group of every connection of one user (`send_to_user`)."""
    return f"{GROUP_PREFIX}user.{int(user_id)}"


def pubsub_channel(layer_prefix: str, group: str) -> str:
    """The Redis pub/sub channel of a Channels group under channels-redis'
    `RedisPubSubChannelLayer` (its `_get_group_channel_name`): the hubs read these, so a
    `group_send` through that layer and the gateway's own publish script reach them alike."""
    return f"{layer_prefix}__group__{group}"


def layer_prefix(channel_layers: dict[str, Any]) -> str:
    """The key prefix of the default channel layer (channels-redis' default: `asgi`)."""
    config = channel_layers.get("default", {}).get("CONFIG", {}) or {}
    return str(config.get("prefix", "asgi"))


def publication_message(channel: str, pub: Publication, ts: float) -> dict[str, Any]:
    return {
        "type": PUBLICATION,
        "channel": channel,
        "seq": pub.seq,
        "epoch": pub.epoch,
        "payload": pub.payload,
        "ts": ts,
    }


def batch_message(items: list[tuple[str, Publication]], ts: float) -> dict[str, Any]:
    return {"type": BATCH, "items": [[channel, p.seq, p.epoch, p.payload] for channel, p in items], "ts": ts}


def user_message(user_id: int, payload: str, ts: float) -> dict[str, Any]:
    return {"type": USER, "user": int(user_id), "payload": payload, "ts": ts}


def revoke_message(user_id: int, credential: str | None, reason: str, ts: float) -> dict[str, Any]:
    return {"type": REVOKE, "user": int(user_id), "credential": credential, "reason": reason, "ts": ts}


def encode(message: dict[str, Any]) -> bytes:
    """A layer message as channels-redis' pub/sub layer serialises it (msgpack)."""
    import msgpack  # a dependency of channels-redis

    return bytes(msgpack.packb(message, use_bin_type=True))


def decode(data: bytes) -> dict[str, Any]:
    import msgpack

    message = msgpack.unpackb(data, raw=False)
    if not isinstance(message, dict):
        raise ValueError("a layer message is a map")
    return message


@dataclass(frozen=True, slots=True)
class Publications:
    """One or more channel publications (a single publish or a batch)."""

    items: list[tuple[str, Publication]]
    ts: float


@dataclass(frozen=True, slots=True)
class UserMessage:
    user_id: int
    payload: str
    ts: float


@dataclass(frozen=True, slots=True)
class Revocation:
    """End the sockets of `user_id` opened with `credential` (a credential id; None: all)."""

    user_id: int
    credential: str | None
    reason: str


def parse(message: dict[str, Any]) -> Publications | UserMessage | Revocation | None:
    """Decode a layer message; None for a type the hub does not handle.

    Raises KeyError/ValueError/TypeError for a malformed message of a known type.
    """
    kind = message.get("type")
    ts = float(message.get("ts") or 0.0)
    if kind == PUBLICATION:
        pub = Publication(int(message["seq"]), str(message["epoch"]), str(message["payload"]))
        return Publications([(str(message["channel"]), pub)], ts)
    if kind == BATCH:
        items = [
            (str(channel), Publication(int(seq), str(epoch), str(payload)))
            for channel, seq, epoch, payload in message["items"]
        ]
        return Publications(items, ts)
    if kind == USER:
        return UserMessage(int(message["user"]), str(message["payload"]), ts)
    if kind == REVOKE:
        credential = message.get("credential")
        return Revocation(int(message["user"]), None if credential is None else str(credential), str(message["reason"]))
    return None
