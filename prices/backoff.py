"""How long a failing source is left alone: exponential backoff that honours Retry-After."""

from __future__ import annotations


def backoff_seconds(
    failures: int, *, base: float, cap: float, retry_after: float | None = None, permanent: float | None = None
) -> float:
    """Seconds to skip a source after its `failures`-th consecutive failure.

    `base * 2**(failures-1)` capped at `cap`; a source's own Retry-After (429/418) wins
    when it is longer, even beyond the cap: the source said so, and hammering a
    rate-limited host gets the IP banned (Binance 418). `permanent` (HTTP 451) wins
    over everything.
    """
    if permanent is not None:
        return permanent
    if failures <= 0:
        return 0.0
    delay: float = min(cap, base * 2.0 ** min(failures - 1, 32))
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay
