"""Group membership: this process joins each Channels group once, however many local users."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..layer_messages import PROBE_GROUP, pubsub_channel
from ..metrics import CHANNELS

logger = logging.getLogger("realtime.hub")


class LayerGroups:
    """Groups through the channel layer (embedded mode: the in-memory layer)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel_name = ""

    async def add(self, group: str) -> None:
        await self.layer.group_add(group, self.channel_name)

    async def discard(self, group: str) -> None:
        await self.layer.group_discard(group, self.channel_name)

    async def refresh(self, groups: list[str]) -> bool:
        """Re-add every group (memberships expire in channels-redis); False if down."""
        try:
            # An empty-handed probe still needs one round trip to prove the layer is up.
            for group in groups or [PROBE_GROUP]:
                await self.layer.group_add(group, self.channel_name)
            if not groups:
                await self.layer.group_discard(PROBE_GROUP, self.channel_name)
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        return True


class PubSubGroups:
    """Groups as Redis pub/sub channels of the hub's intake (production)."""

    def __init__(self, intake: Any, layer_prefix: str) -> None:
        self.intake = intake
        self.prefix = layer_prefix
        self.channel_name = ""

    async def add(self, group: str) -> None:
        await self.intake.subscribe(pubsub_channel(self.prefix, group))

    async def discard(self, group: str) -> None:
        await self.intake.unsubscribe(pubsub_channel(self.prefix, group))

    async def refresh(self, groups: list[str]) -> bool:
        return bool(self.intake.up)  # subscriptions never expire; the intake re-subscribes


class Membership:
    """Reference-counted group memberships of this process."""

    def __init__(self, backend: LayerGroups | PubSubGroups) -> None:
        self.backend = backend
        self.groups: dict[str, int] = {}  # group -> local reference count

    @property
    def channel_name(self) -> str:
        return self.backend.channel_name

    def __contains__(self, group: str) -> bool:
        return group in self.groups

    async def join(self, group: str) -> None:
        count = self.groups.get(group, 0)
        self.groups[group] = count + 1
        if count == 0:
            try:
                await self.backend.add(group)
            except BaseException:
                self.groups.pop(group, None)
                raise
            CHANNELS.set(len(self.groups))

    def forget(self, group: str) -> None:
        """Drop a group whose join failed (no layer call)."""
        self.groups.pop(group, None)

    async def leave(self, group: str) -> None:
        count = self.groups.get(group, 0) - 1
        if count > 0:
            self.groups[group] = count
            return
        self.groups.pop(group, None)
        CHANNELS.set(len(self.groups))
        try:
            await self.backend.discard(group)
        except Exception:  # the membership expires by itself; never fail a disconnect
            logger.debug("group_discard %s failed", group, exc_info=True)
        if group in self.groups:
            # Re-joined while the discard was in flight (unsubscribe then subscribe at
            # once): the discard may have landed after the new add, so add again.
            await self.backend.add(group)

    async def refresh(self) -> bool:
        """Re-add this process to every group it holds; False if the layer is down."""
        return await self.backend.refresh(list(self.groups))
