"""Group membership: this process joins each Channels group once, however many local users."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..layer_messages import PROBE_GROUP
from ..metrics import CHANNELS

logger = logging.getLogger("realtime.hub")


class Membership:
    """Reference-counted group memberships of one layer channel (the hub's)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel_name = ""
        self.groups: dict[str, int] = {}  # group -> local reference count

    def __contains__(self, group: str) -> bool:
        return group in self.groups

    async def join(self, group: str) -> None:
        count = self.groups.get(group, 0)
        self.groups[group] = count + 1
        if count == 0:
            await self.layer.group_add(group, self.channel_name)
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
            await self.layer.group_discard(group, self.channel_name)
        except Exception:  # the membership expires by itself; never fail a disconnect
            logger.debug("group_discard %s failed", group, exc_info=True)
        if group in self.groups:
            # Re-joined while the discard was in flight (unsubscribe then subscribe at
            # once): the discard may have landed after the new add, so add again.
            await self.layer.group_add(group, self.channel_name)

    async def refresh(self) -> bool:
        """Re-add this process to every group it holds; False if the layer is down."""
        try:
            # An empty-handed probe still needs one round trip to prove the layer is up.
            for group in list(self.groups) or [PROBE_GROUP]:
                await self.layer.group_add(group, self.channel_name)
            if not self.groups:
                await self.layer.group_discard(PROBE_GROUP, self.channel_name)
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        return True
