"""The per-channel sequencer: publications in, what to deliver and when to repair out (pure).

Publications reach a gateway through an at-most-once layer, from publishers that may
race one another, so they can arrive late, out of order, twice, or not at all. Every
publication carries its channel's gap-free `seq` and `epoch` (history.py). The
sequencer turns that into a stream that is in order, without duplicates and without
silent gaps: a publication ahead of a missing one is held; after `REORDER_WAIT` the
missing range is read from history (the hub does the I/O and hands the result back);
one that history no longer holds is waited for up to `GAP_GIVE_UP` (its publisher may
still be sending it) before the gap is accepted.

A new epoch (history was lost: Redis flushed or restarted) starts at seq 1: a sequencer
that first sees seq N > 1 of a new epoch delivers nothing of it until 1..N-1 are read
from history (issue #10, fault A: they were published while this gateway's pub/sub
connection was down). After a reconnect the hub reports each channel's position from
history (`observe`), so publications missed meanwhile are repaired even when no newer
one arrives.

No event loop and no clock of its own: every call takes `now` (monotonic seconds), so
the rules are tested with plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..history import Publication

#: How long an out-of-order publication waits for the missing ones to arrive through
#: the layer before they are fetched from history (only concurrent publishers on one
#: channel, or a layer drop, cause this; in-order delivery never waits).
REORDER_WAIT = 0.05
#: A missing publication that history no longer holds may still be in flight (its
#: publisher got the seq, then stalled before sending it while more than a history's
#: worth of newer ones went out): the gap is held this long before it is accepted as lost.
GAP_GIVE_UP = 1.0
#: ... unless this many publications pile up behind it first.
PENDING_LIMIT = 1024


@dataclass(slots=True)
class Step:
    """What the hub must do after an offer or a repair."""

    #: Publications to fan out, in order.
    deliver: list[Publication] = field(default_factory=list)
    #: A new epoch began: the channel's earlier publications mean nothing any more.
    new_epoch: bool = False
    #: Publications accepted as lost (history no longer has them): clients resync.
    skipped: int = 0
    #: Publications fetched from history that closed a gap.
    repaired: int = 0


@dataclass(slots=True)
class Sequencer:
    """The position of one channel on this process and the publications held for a gap."""

    epoch: str = ""
    last_seq: int = 0
    pending: dict[int, Publication] = field(default_factory=dict)
    #: The highest seq known to exist in this epoch (from history), delivered or not.
    horizon: int = 0
    #: When a history read for the missing range is due (None: nothing to repair).
    repair_at: float | None = None
    #: When history was first found not to hold the missing publication.
    gap_since: float | None = None

    def offer(self, pub: Publication, now: float) -> Step:
        """A publication arrived through the layer."""
        step = Step()
        if pub.epoch != self.epoch:
            # History was lost (store flushed or expired): the new epoch counts from 1,
            # and whatever of it came before this one is read from history first.
            self._new_epoch(pub.epoch, step)
            if pub.seq > 1:
                self.repair_at = now
        if pub.seq <= self.last_seq:
            return step  # already delivered (repaired earlier) or a duplicate
        self.horizon = max(self.horizon, pub.seq)
        if pub.seq == self.last_seq + 1:
            self.last_seq = pub.seq
            step.deliver.append(pub)
            self._flush(step)
        else:
            # Out of order: concurrent publishers, or the layer dropped one. Hold it.
            self.pending[pub.seq] = pub
            if self.repair_at is None:
                self.repair_at = now + REORDER_WAIT
        return step

    def observe(self, epoch: str, seq: int, now: float) -> Step:
        """History says the channel is at (epoch, seq): repair whatever is missing now."""
        step = Step()
        if epoch != self.epoch:
            self._new_epoch(epoch, step)
        self.horizon = max(self.horizon, seq)
        if self.horizon > self.last_seq:
            self.repair_at = now
        return step

    def _new_epoch(self, epoch: str, step: Step) -> None:
        self.epoch, self.last_seq, self.horizon = epoch, 0, 0
        self.pending.clear()
        self.gap_since = None
        self.repair_at = None
        step.new_epoch = True

    def _target(self) -> int:
        """The seq up to which publications are missing (0: none)."""
        return min(self.pending) - 1 if self.pending else self.horizon

    def missing(self) -> tuple[int, int] | None:
        """The range (after_seq, upto_seq) to read from history, or None."""
        target = self._target()
        if target <= self.last_seq:
            return None
        return self.last_seq, target

    def repaired(self, found: list[Publication], now: float) -> Step:
        """The history read for `missing()` returned `found` (empty if it failed)."""
        step = Step()
        self.repair_at = None
        for pub in found:
            if pub.epoch == self.epoch and pub.seq > self.last_seq and pub.seq not in self.pending:
                self.pending[pub.seq] = pub
                step.repaired += 1
        self._flush(step)
        target = self._target()
        if self.last_seq < target:
            if self.gap_since is None:
                self.gap_since = now
            if now - self.gap_since < GAP_GIVE_UP and len(self.pending) < PENDING_LIMIT:
                # Not in history (any more): its publisher may still be sending it.
                self.repair_at = now + REORDER_WAIT
                return step
            step.skipped = target - self.last_seq
            self.last_seq = target
            self.gap_since = None
            self._flush(step)
        if self.pending or self.horizon > self.last_seq:
            self.repair_at = now + REORDER_WAIT
        return step

    def _flush(self, step: Step) -> None:
        pending = self.pending
        while pending:
            nxt = pending.pop(self.last_seq + 1, None)
            if nxt is None:
                for seq in [s for s in pending if s <= self.last_seq]:
                    del pending[seq]
                break
            self.last_seq = nxt.seq
            step.deliver.append(nxt)
        self.horizon = max(self.horizon, self.last_seq)
        if not pending and self.horizon <= self.last_seq:
            self.gap_since = None
            self.repair_at = None
