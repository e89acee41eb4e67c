"""Windows: boundaries, visits, a visit's expression, flush (the thresholds: test_release.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sensekit.aggregate import Observation, WindowAggregator, window_start
from sensekit.types import EXPRESSION_LABELS, FaceTally

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a multiple of 60
HAPPY = np.eye(7, dtype=np.float32)[EXPRESSION_LABELS.index("happy")]
SAD = np.eye(7, dtype=np.float32)[EXPRESSION_LABELS.index("sad")]


def aggregator(window_s: int = 60, gap: float = 1.0) -> WindowAggregator:
    return WindowAggregator("cam", ["a", "b"], window_s, visit_gap_s=gap)


def seen(track: int, zone: str = "a", probs=HAPPY, confirmed: bool = True) -> Observation:
    return Observation(track, confirmed, zone, probs)


def people(window: FaceTally) -> int:
    return len(window.visits)


def test_windows_are_aligned_to_the_epoch() -> None:
    assert window_start(T0 + 59.999, 60) == T0
    assert window_start(T0 + 60.0, 60) == T0 + 60
    assert window_start(T0 + 5, 20) == T0


def test_a_frame_at_the_boundary_closes_the_window_before_it() -> None:
    agg = aggregator()
    assert agg.add_frame(T0 + 10.0, [seen(1)]) == []
    closed = agg.add_frame(T0 + 60.0, [seen(2)])
    assert [w.zone for w in closed] == ["a", "b"]
    a = closed[0]
    assert (a.window_start, a.window_end, a.complete) == (T0, T0 + 60, True)
    assert people(a) == 1 and a.frames == 1  # track 1 left 50 s before: its visit ended


def test_a_visit_counts_once_in_the_window_it_ends_however_long_it_lasts() -> None:
    agg = aggregator()
    closed = []
    for i in range(1800):  # three minutes in view, 10 fps
        closed += agg.add_frame(T0 + i * 0.1, [seen(7)])
    assert [people(w) for w in closed] == [0, 0, 0, 0]  # two windows passed: still there
    closed = agg.add_frame(T0 + 181.5, [])  # gone for more than the gap, seen last at 179.9
    a, b = closed
    assert a.window_start == T0 + 120 and people(a) == 1 and people(b) == 0
    assert all(people(w) == 0 for w in agg.flush(T0 + 240))
    (visit,) = a.visits
    assert visit.probabilities is not None
    assert EXPRESSION_LABELS[int(np.argmax(visit.probabilities))] == "happy"


def test_a_visit_ends_after_the_gap_not_before() -> None:
    agg = aggregator(gap=1.0)
    agg.add_frame(T0, [seen(1)])
    agg.add_frame(T0 + 0.9, [])
    assert agg.open_visits == 1
    agg.add_frame(T0 + 1.1, [])
    assert agg.open_visits == 0


def test_unconfirmed_tracks_are_not_people() -> None:
    agg = aggregator()
    agg.add_frame(T0, [seen(1, confirmed=False), seen(2)])
    agg.add_frame(T0 + 0.1, [seen(1, confirmed=False), seen(2)])
    (a, _) = agg.flush(T0 + 60)
    assert [v.person for v in a.visits] == [2]


def test_a_track_confirmed_later_in_the_visit_counts() -> None:
    agg = aggregator()
    agg.add_frame(T0, [seen(1, confirmed=False)])
    agg.add_frame(T0 + 0.1, [seen(1, confirmed=True)])
    assert people(agg.flush(T0 + 60)[0]) == 1


def test_a_visits_expression_is_the_mean_of_its_classified_frames() -> None:
    agg = aggregator()
    mostly_sad = [SAD, SAD, HAPPY]
    for i, probs in enumerate(mostly_sad):
        agg.add_frame(T0 + i * 0.5, [seen(1, probs=probs), seen(2), seen(3, probs=None)])
    (a, _) = agg.flush(T0 + 60)
    by_person = {v.person: v.probabilities for v in a.visits}
    assert set(by_person) == {1, 2, 3}
    assert by_person[1] is not None
    assert by_person[1][EXPRESSION_LABELS.index("sad")] == pytest.approx(2 / 3)
    assert by_person[3] is None  # never large enough to classify


def test_a_person_walking_between_zones_makes_a_visit_in_each() -> None:
    agg = aggregator()
    agg.add_frame(T0, [seen(1, zone="a")])
    agg.add_frame(T0 + 1, [seen(1, zone="b")])
    a, b = agg.flush(T0 + 60)
    assert people(a) == people(b) == 1


def test_faces_outside_every_zone_are_not_counted() -> None:
    agg = aggregator()
    agg.add_frame(T0, [seen(1, zone=None)])
    assert [people(w) for w in agg.flush(T0 + 60)] == [0, 0]


def test_flush_before_the_end_gives_a_partial_window_and_ends_every_visit() -> None:
    agg = aggregator()
    agg.add_frame(T0 + 61, [seen(1)])
    a, _ = agg.flush(T0 + 75.5)
    assert (a.window_start, a.window_end, a.complete) == (T0 + 60, T0 + 75.5, False)
    assert people(a) == 1
    assert agg.flush(T0 + 80) == []  # nothing left open


def test_an_empty_stretch_produces_no_windows() -> None:
    agg = aggregator()
    agg.add_frame(T0 + 1, [seen(1)])
    closed = agg.add_frame(T0 + 250, [seen(2)])  # three windows with no frames at all
    assert len(closed) == 2 and closed[0].window_start == T0
    assert people(closed[0]) == 1
    assert agg.current_window_start == T0 + 240


def test_time_going_backwards_never_reopens_a_published_window() -> None:
    agg = aggregator()
    agg.add_frame(T0 + 61, [seen(1)])
    assert agg.add_frame(T0 + 10, [seen(2)]) == []
    a, _ = agg.flush(T0 + 120)
    assert a.window_start == T0 + 60 and people(a) == 2
