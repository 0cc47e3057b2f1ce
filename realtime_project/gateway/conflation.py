"""Conflation: at most `max_rate` frames per second, always the newest (pure).

A subscription that asked for `max_rate` sends a frame at once if the last one left at
least `1/max_rate` seconds ago; otherwise it keeps only the newest frame and sends it
when the interval is over (the caller arms a timer for `due_at`). Used for snapshot
channels only, where a newer value makes an older one worthless.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Conflator:
    max_rate: float
    last_sent: float = float("-inf")
    pending: str | None = None
    armed: bool = False

    @property
    def interval(self) -> float:
        return 1.0 / self.max_rate

    def offer(self, frame: str, now: float) -> str | None:
        """Return the frame to send now, or None if it is held for `due_at`."""
        if self.pending is None and now - self.last_sent >= self.interval:
            self.last_sent = now
            return frame
        self.pending = frame  # newer value replaces the held one
        return None

    @property
    def due_at(self) -> float:
        return self.last_sent + self.interval

    def flush(self, now: float) -> str | None:
        """Called when the timer fires: the held frame, if its time has come."""
        if self.pending is None or now < self.due_at:
            return None
        frame, self.pending = self.pending, None
        self.last_sent = now
        return frame
