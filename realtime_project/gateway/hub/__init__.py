"""The hub package: per-process fan-out of channel publications (see `core.Hub`).

Parts, one concept each: `sequencer` (pure ordering and gap repair decisions),
`membership` (one group membership per process), `catchup` (subscribe: reply, replay or
snapshot), `fanout` (the hot path), `loops` (layer intake, heartbeats, group refresh),
`state` (per channel and per subscription).
"""

from __future__ import annotations

from .core import Hub
from .fanout import USER_CHANNEL
from .sequencer import GAP_GIVE_UP, PENDING_LIMIT, REORDER_WAIT, Sequencer
from .state import LOCAL_HISTORY, ChannelState, Subscription

__all__ = [
    "GAP_GIVE_UP",
    "LOCAL_HISTORY",
    "PENDING_LIMIT",
    "REORDER_WAIT",
    "USER_CHANNEL",
    "ChannelState",
    "Hub",
    "Sequencer",
    "Subscription",
]
