"""Full-jitter exponential backoff: how long to wait before the next attempt."""

from __future__ import annotations

import random

#: Past this many doublings the delay is the cap anyway; stops 2**n from overflowing.
MAX_DOUBLINGS = 32


def full_jitter(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**attempt)].

    "Full jitter" (AWS Architecture Blog, *Exponential Backoff And Jitter*): when many
    clients lose the same server at once (an exchange restarts, a feed process fails
    over), random delays over the whole interval spread their reconnects instead of
    synchronising them into waves. `attempt` counts from 0 (the first retry).
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    ceiling = min(cap, base * 2.0 ** min(attempt, MAX_DOUBLINGS))
    return (rng or random).uniform(0.0, ceiling)
