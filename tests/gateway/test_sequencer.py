"""The hub's per-channel sequencer, pure: plain numbers for time, no event loop, no sleeps."""

from __future__ import annotations

from realtime_project.gateway.history import Publication
from realtime_project.gateway.hub.sequencer import GAP_GIVE_UP, PENDING_LIMIT, REORDER_WAIT, Sequencer


def pub(seq: int, epoch: str = "e1") -> Publication:
    return Publication(seq, epoch, f'{{"n":{seq}}}')


def seqs(items: list[Publication]) -> list[int]:
    return [p.seq for p in items]


def test_in_order_publications_are_delivered_at_once_without_repair() -> None:
    s = Sequencer("e1", 3)
    for n in (4, 5, 6):
        step = s.offer(pub(n), now=10.0)
        assert seqs(step.deliver) == [n] and not step.new_epoch
    assert s.last_seq == 6 and s.repair_at is None and s.missing() is None


def test_duplicates_and_old_publications_are_dropped() -> None:
    s = Sequencer("e1", 5)
    assert s.offer(pub(5), 0.0).deliver == []
    assert s.offer(pub(2), 0.0).deliver == []
    assert seqs(s.offer(pub(6), 0.0).deliver) == [6]
    assert s.offer(pub(6), 0.0).deliver == []


def test_out_of_order_is_held_then_released_when_the_missing_one_arrives() -> None:
    s = Sequencer("e1", 0)
    step = s.offer(pub(2), now=100.0)
    assert step.deliver == [] and s.repair_at == 100.0 + REORDER_WAIT
    assert s.offer(pub(3), now=100.01).deliver == []
    assert s.repair_at == 100.0 + REORDER_WAIT  # one timer per gap, not per arrival
    step = s.offer(pub(1), now=100.02)
    assert seqs(step.deliver) == [1, 2, 3]
    assert s.repair_at is None and s.pending == {}


def test_a_gap_is_repaired_from_history_in_order() -> None:
    s = Sequencer("e1", 0)
    s.offer(pub(3), now=0.0)
    assert s.missing() == (0, 2)
    step = s.repaired([pub(1), pub(2)], now=REORDER_WAIT)
    assert seqs(step.deliver) == [1, 2, 3] and step.repaired == 2 and step.skipped == 0
    assert s.repair_at is None


def test_history_of_another_epoch_does_not_fill_a_gap() -> None:
    s = Sequencer("e1", 0)
    s.offer(pub(2), now=0.0)
    step = s.repaired([pub(1, "other")], now=0.05)
    assert step.deliver == [] and step.repaired == 0
    assert s.repair_at == 0.05 + REORDER_WAIT  # tries again


def test_a_gap_history_cannot_fill_is_held_for_the_give_up_window_then_skipped() -> None:
    s = Sequencer("e1", 0)
    s.offer(pub(2), now=0.0)
    now = REORDER_WAIT
    step = s.repaired([], now)
    assert step.deliver == [] and s.gap_since == now
    # Still within the window: its publisher may still be sending it.
    step = s.repaired([], now + GAP_GIVE_UP / 2)
    assert step.deliver == [] and step.skipped == 0 and s.repair_at is not None
    # It arrives late: delivered in order, nothing skipped.
    step = s.offer(pub(1), now + GAP_GIVE_UP / 2 + 0.01)
    assert seqs(step.deliver) == [1, 2] and s.gap_since is None
    # Another gap that never fills: skipped once the window has passed.
    s.offer(pub(5), now=10.0)
    s.repaired([], 10.05)
    step = s.repaired([], 10.05 + GAP_GIVE_UP)
    assert step.skipped == 2 and seqs(step.deliver) == [5] and s.last_seq == 5


def test_a_long_pile_up_gives_up_before_the_window() -> None:
    s = Sequencer("e1", 0)
    for n in range(2, PENDING_LIMIT + 3):
        s.offer(pub(n), now=0.0)
    step = s.repaired([], now=0.05)
    assert step.skipped == 1 and len(step.deliver) == PENDING_LIMIT + 1


def test_a_new_epoch_resets_the_position() -> None:
    s = Sequencer("e1", 40)
    s.offer(pub(42), now=0.0)  # held for a gap in the old epoch
    step = s.offer(pub(1, "e2"), now=1.0)
    assert step.new_epoch and seqs(step.deliver) == [1]
    assert s.epoch == "e2" and s.last_seq == 1 and s.pending == {}


def test_a_new_epoch_first_seen_at_seq_n_repairs_1_to_n_minus_1_before_delivering_n() -> None:
    """Fault A: a gateway that missed the start of a new epoch never jumps to seq N."""
    s = Sequencer("e1", 40)
    step = s.offer(pub(8, "e2"), now=5.0)
    assert step.new_epoch and step.deliver == []
    assert s.last_seq == 0 and s.repair_at == 5.0  # at once: no reorder wait
    assert s.missing() == (0, 7)
    step = s.repaired([pub(n, "e2") for n in range(1, 8)], now=5.01)
    assert seqs(step.deliver) == list(range(1, 9)) and step.repaired == 7
    assert s.repair_at is None


def test_a_new_epoch_whose_start_history_lost_is_a_visible_gap_after_the_window() -> None:
    s = Sequencer("e1", 40)
    s.offer(pub(3, "e2"), now=0.0)
    assert s.repaired([], now=0.0).deliver == []
    step = s.repaired([], now=GAP_GIVE_UP)
    assert step.skipped == 2 and seqs(step.deliver) == [3]  # seq 3 after 0: the client resyncs


def test_observe_repairs_publications_missed_while_disconnected() -> None:
    s = Sequencer("e1", 10)
    step = s.observe("e1", 13, now=2.0)
    assert step.deliver == [] and not step.new_epoch and s.missing() == (10, 13) and s.repair_at == 2.0
    step = s.repaired([pub(11), pub(12), pub(13)], now=2.01)
    assert seqs(step.deliver) == [11, 12, 13] and s.repair_at is None
    assert s.observe("e1", 13, now=3.0).deliver == [] and s.repair_at is None


def test_observe_a_new_epoch_delivers_it_from_seq_1() -> None:
    s = Sequencer("e1", 10)
    step = s.observe("e2", 2, now=1.0)
    assert step.new_epoch and s.last_seq == 0 and s.missing() == (0, 2)
    step = s.repaired([pub(1, "e2"), pub(2, "e2")], now=1.0)
    assert seqs(step.deliver) == [1, 2]
    # A live publication that arrives during the repair is held, not delivered early.
    s2 = Sequencer("e1", 10)
    s2.observe("e2", 2, now=1.0)
    assert s2.offer(pub(3, "e2"), now=1.0).deliver == []
    assert seqs(s2.repaired([pub(1, "e2"), pub(2, "e2")], now=1.01).deliver) == [1, 2, 3]
