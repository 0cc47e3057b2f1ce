"""Token bucket: `rate` tokens per second up to `burst` (pure, clock passed in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        return cls(rate=rate, burst=burst, tokens=burst, updated_at=now)

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens if available; refill first from the elapsed time."""
        elapsed = now - self.updated_at
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated_at = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are available."""
        missing = cost - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate
