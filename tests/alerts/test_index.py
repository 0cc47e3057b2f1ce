"""The pure index: ranges taken by bisection, hand-computed boundaries."""

from __future__ import annotations

from alerts.index import AlertIndex, Bucket


def bucket(*entries: tuple[float, int]) -> Bucket:
    b = Bucket()
    for threshold, rule_id in entries:
        b.insert(threshold, rule_id)
    return b


def test_bucket_keeps_thresholds_sorted_and_takes_ranges() -> None:
    b = bucket((105.0, 1), (100.0, 2), (110.0, 3), (100.0, 4))
    assert list(b.thresholds) == [100.0, 100.0, 105.0, 110.0]
    # price 105: rules with threshold <= 105 (an "above" prefix), boundary included.
    assert sorted(b.take_at_most(105.0)) == [1, 2, 4]
    assert list(b.ids) == [3]
    assert b.take_at_most(109.99) == []


def test_take_at_least_and_between_boundaries() -> None:
    b = bucket((90.0, 1), (95.0, 2), (100.0, 3))
    assert b.take_at_least(95.0) == [2, 3]
    assert list(b.ids) == [1]
    c = bucket((100.0, 1), (101.0, 2), (102.0, 3))
    # (100, 101.5]: 100 itself is not crossed when starting at exactly 100.
    assert c.take_between(100.0, 101.5) == [2]


def test_remove_finds_the_id_among_equal_thresholds() -> None:
    b = bucket((1.0, 1), (1.0, 2), (1.0, 3))
    assert b.remove(1.0, 2)
    assert not b.remove(1.0, 2)
    assert list(b.ids) == [1, 3]


def test_crossing_fires_each_line_once_per_move() -> None:
    index = AlertIndex()
    index.add(("cross_any", "BTC"), 100.0, 1)
    index.add(("cross_up", "BTC"), 100.0, 2)
    index.add(("cross_down", "BTC"), 100.0, 3)
    assert index.match_price("BTC", None, 101.0) == []  # no previous price: no crossing
    taken = index.match_price("BTC", 99.0, 101.0)
    assert sorted(i for t in taken for i in t.ids) == [1, 2]
    assert [t.ids for t in index.match_price("BTC", 101.0, 99.0)] == [[3]]


def test_percent_buckets_by_window_and_direction() -> None:
    index = AlertIndex()
    index.add(("pct_up", "ETH", 3600), 5.0, 1)
    index.add(("pct_down", "ETH", 3600), 5.0, 2)
    index.add(("pct_any", "ETH", 3600), 6.0, 3)
    asked: list[int] = []

    def an_hour_ago(window: int) -> float:
        asked.append(window)
        return 100.0

    taken = index.match_percents("ETH", 93.5, an_hour_ago)  # -6.5 %
    assert sorted(i for t in taken for i in t.ids) == [2, 3]
    assert index.match_percents("ETH", 105.5, an_hour_ago)[0].ids == [1]  # +5.5 %
    assert asked == [3600, 3600]
    assert index.match_percents("ETH", 50.0, an_hour_ago) == [] and asked == [3600, 3600]  # none armed: not asked


def test_bulk_load_equals_inserts() -> None:
    a, b = AlertIndex(), AlertIndex()
    entries = [(("above", "BTC"), float(t), i) for i, t in enumerate([5, 3, 9, 1, 3])]
    for key, t, i in entries:
        a.add(key, t, i)
    b.bulk_load(entries)
    assert list(a.buckets[("above", "BTC")].ids) == list(b.buckets[("above", "BTC")].ids)
    assert len(b) == 5
