"""Channel namespaces: who may subscribe, how a channel recovers (a registry apps fill).

Apps register their namespaces from their own `handlers.py`; the gateway knows none of
their models. Authorisation is per namespace: `public` namespaces are open to anyone,
the others need a user and may add an `authorise(principal, channel)` check (for
example "this wallet address is linked to this user").
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, Forbidden, NotFound, Unauthenticated
from .protocol import ChannelName


class Recovery(enum.StrEnum):
    """How a resubscribing client catches up (docs/protocol.md, `subscribe` with `since`)."""

    #: Only the newest value matters: replay from history, else send the latest value.
    SNAPSHOT = "snapshot"
    #: A bounded log: replay from history, else `recovered: false` with nothing more.
    STREAM = "stream"
    #: Rebuilt from the database by the app's `replay` hook when history is not enough.
    DURABLE = "durable"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a connection acts for."""

    user_id: int | None
    is_staff: bool = False

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Principal(None)

#: True/False, or the internal channel this principal gets for the channel (e.g. a
#: narrower one for a weaker right): the subscription keeps the client's channel name.
Authoriser = Callable[[Principal, ChannelName], "bool | ChannelName | Awaitable[bool | ChannelName]"]
#: Snapshot: (principal, internal channel) -> the data a (re)subscriber starts from
#: (JSON-serialisable) or None. Durable namespaces rebuild it from the database.
Snapshotter = Callable[[Principal, ChannelName], "Awaitable[Any]"]


@dataclass(slots=True)
class Namespace:
    name: str
    public: bool = False
    recovery: Recovery = Recovery.SNAPSHOT
    #: None: the namespace takes no key (`notifications`); otherwise the key's pattern.
    key_pattern: re.Pattern[str] | None = None
    key_required: bool = True
    authorise: Authoriser | None = None
    #: Map the client-visible channel to the internal one (e.g. per-user channels).
    resolve: Callable[[Principal, ChannelName], ChannelName] | None = None
    #: Normalise a key (e.g. upper-case symbols, checksummed addresses); ValueError
    #: means the key is invalid.
    normalise_key: Callable[[str], str] | None = None
    history_size: int = 100
    history_ttl: float = 3600.0
    snapshot: Snapshotter | None = None
    #: For snapshot namespaces: channels whose (re)subscribers should get the app's
    #: `snapshot` rather than the last publication (e.g. a batch channel whose last
    #: message holds only what changed in the last tick).
    snapshot_hook_first: Callable[[ChannelName], bool] | None = None


class NamespaceRegistry:
    def __init__(self) -> None:
        self._namespaces: dict[str, Namespace] = {}

    def register(self, namespace: Namespace) -> Namespace:
        """Register (or replace, e.g. on autoreload) a namespace."""
        self._namespaces[namespace.name] = namespace
        return namespace

    def get(self, name: str) -> Namespace | None:
        return self._namespaces.get(name)

    def names(self) -> list[str]:
        return sorted(self._namespaces)

    def lookup(self, channel: ChannelName) -> Namespace:
        ns = self._namespaces.get(channel.namespace)
        if ns is None:
            raise NotFound("unknown channel namespace", details={"namespace": channel.namespace})
        if channel.key is None:
            if ns.key_pattern is not None and ns.key_required:
                raise BadRequest(f"channel needs a key: {ns.name}:<key>")
        else:
            if ns.key_pattern is None:
                raise BadRequest(f"channel {ns.name} takes no key")
            if not ns.key_pattern.match(channel.key):
                raise BadRequest("malformed channel key", details={"channel": channel.name})
        return ns

    def normalise(self, channel: ChannelName) -> ChannelName:
        ns = self.lookup(channel)
        if channel.key is not None and ns.normalise_key is not None:
            try:
                return ChannelName(channel.namespace, ns.normalise_key(channel.key))
            except ValueError as exc:
                raise BadRequest(str(exc) or "malformed channel key") from None
        return channel

    async def authorise(self, principal: Principal, channel: ChannelName) -> tuple[Namespace, ChannelName]:
        """Check that `principal` may subscribe; return the namespace and internal channel.

        Raises `NotFound`, `BadRequest`, `Unauthenticated` or `Forbidden`.
        """
        ns = self.lookup(channel)
        channel = self.normalise(channel)
        if not ns.public and not principal.authenticated:
            raise Unauthenticated(f"sign in to subscribe to {ns.name} channels")
        internal = ns.resolve(principal, channel) if ns.resolve is not None else channel
        if ns.authorise is not None:
            allowed = ns.authorise(principal, channel)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                raise Forbidden("you may not subscribe to this channel", details={"channel": channel.name})
            if isinstance(allowed, ChannelName):
                internal = allowed
        return ns, internal

    def for_internal(self, internal: str) -> Namespace | None:
        return self._namespaces.get(internal.split(":", 1)[0])


#: The process-wide registry the apps fill from their handlers modules.
namespaces = NamespaceRegistry()
