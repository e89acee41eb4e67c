"""Windows: boundaries, per-person counting, expression summary, k-threshold, flush."""

from __future__ import annotations

import numpy as np
import pytest

from sensekit.aggregate import Observation, WindowAggregator, window_start
from sensekit.types import EXPRESSION_LABELS

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a multiple of 60
HAPPY = np.eye(7, dtype=np.float32)[EXPRESSION_LABELS.index("happy")]
SAD = np.eye(7, dtype=np.float32)[EXPRESSION_LABELS.index("sad")]


def aggregator(k: int = 3, window_s: int = 60) -> WindowAggregator:
    return WindowAggregator("shop", "dev1", "cam", ["a", "b"], window_s, k)


def seen(track: int, zone: str = "a", probs=HAPPY, confirmed: bool = True) -> Observation:
    return Observation(track, confirmed, zone, probs)


def test_windows_are_aligned_to_the_epoch() -> None:
    assert window_start(T0 + 59.999, 60) == T0
    assert window_start(T0 + 60.0, 60) == T0 + 60
    assert window_start(T0 + 5, 20) == T0


def test_a_frame_at_the_boundary_closes_the_window_before_it() -> None:
    agg = aggregator()
    assert agg.add_frame(T0 + 59.9, [seen(1)]) == []
    closed = agg.add_frame(T0 + 60.0, [seen(2)])
    assert [w.zone for w in closed] == ["a", "b"]
    a = closed[0]
    assert (a.window_start, a.window_end, a.complete) == (T0, T0 + 60, True)
    assert a.people == 1 and a.frames == 1


def test_a_person_counts_once_per_window_however_long_they_stay() -> None:
    agg = aggregator(k=1)
    for i in range(600):
        agg.add_frame(T0 + i * 0.1, [seen(7)])
    (a, b) = agg.flush(T0 + 60)
    assert a.people == 1 and a.frames == 600 and b.people == 0
    assert a.expressions == {**dict.fromkeys(EXPRESSION_LABELS, 0), "happy": 1}


def test_unconfirmed_tracks_are_not_people() -> None:
    agg = aggregator(k=1)
    agg.add_frame(T0, [seen(1, confirmed=False), seen(2)])
    agg.add_frame(T0 + 0.1, [seen(1, confirmed=False), seen(2)])
    (a, _) = agg.flush(T0 + 60)
    assert a.people == 1


def test_a_track_confirmed_later_in_the_window_counts() -> None:
    agg = aggregator(k=1)
    agg.add_frame(T0, [seen(1, confirmed=False)])
    agg.add_frame(T0 + 0.1, [seen(1, confirmed=True)])
    assert agg.flush(T0 + 60)[0].people == 1


def test_below_k_the_breakdown_is_withheld() -> None:
    agg = aggregator(k=3)
    agg.add_frame(T0, [seen(1), seen(2), seen(3, zone="b"), seen(4, zone="b"), seen(5, zone="b")])
    a, b = agg.flush(T0 + 60)
    assert a.people == 2 and a.suppressed
    assert a.expressions is None and a.mean_probabilities is None and a.unclassified is None
    assert b.people == 3 and not b.suppressed and b.expressions["happy"] == 3


def test_a_persons_expression_is_the_argmax_of_their_mean() -> None:
    agg = aggregator(k=3)
    mostly_sad = [SAD, SAD, HAPPY]
    for i, probs in enumerate(mostly_sad):
        agg.add_frame(T0 + i, [seen(1, probs=probs), seen(2), seen(3, probs=None)])
    (a, _) = agg.flush(T0 + 60)
    assert a.people == 3
    assert a.expressions["sad"] == 1 and a.expressions["happy"] == 1
    assert a.unclassified == 1  # track 3 was never large enough to classify
    assert a.mean_probabilities["sad"] == pytest.approx((2 / 3) / 2, abs=1e-4)
    assert a.mean_probabilities["happy"] == pytest.approx((1 / 3 + 1) / 2, abs=1e-4)
    assert sum(a.mean_probabilities.values()) == pytest.approx(1.0, abs=1e-3)


def test_a_person_walking_between_zones_counts_in_both() -> None:
    agg = aggregator(k=1)
    agg.add_frame(T0, [seen(1, zone="a")])
    agg.add_frame(T0 + 1, [seen(1, zone="b")])
    a, b = agg.flush(T0 + 60)
    assert a.people == b.people == 1


def test_faces_outside_every_zone_are_not_counted() -> None:
    agg = aggregator(k=1)
    agg.add_frame(T0, [seen(1, zone=None)])
    assert [w.people for w in agg.flush(T0 + 60)] == [0, 0]


def test_flush_before_the_end_gives_a_partial_window() -> None:
    agg = aggregator(k=1)
    agg.add_frame(T0 + 61, [seen(1)])
    a, _ = agg.flush(T0 + 75.5)
    assert (a.window_start, a.window_end, a.complete) == (T0 + 60, T0 + 75.5, False)
    assert agg.flush(T0 + 80) == []  # nothing left open


def test_an_empty_stretch_produces_no_windows() -> None:
    agg = aggregator(k=1)
    agg.add_frame(T0 + 1, [seen(1)])
    closed = agg.add_frame(T0 + 250, [seen(2)])  # three windows with no frames at all
    assert len(closed) == 2 and closed[0].window_start == T0
    assert agg.current_window_start == T0 + 240


def test_time_going_backwards_never_reopens_a_published_window() -> None:
    agg = aggregator(k=1)
    agg.add_frame(T0 + 61, [seen(1)])
    assert agg.add_frame(T0 + 10, [seen(2)]) == []
    a, _ = agg.flush(T0 + 120)
    assert a.window_start == T0 + 60 and a.people == 2
