"""Tracking by position only: one person, crossing people, leaving and returning."""

from __future__ import annotations

from sensekit.tracker import Tracker
from sensekit.types import Box

FPS = 10.0


def box_at(cx: float, cy: float, size: float = 0.15) -> Box:
    return Box(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


def test_one_person_standing_for_30_seconds_is_one_track() -> None:
    tracker = Tracker(min_frames=3)
    ids = set()
    for i in range(300):
        jitter = 0.005 * ((i % 3) - 1)
        (assignment,) = tracker.update(i / FPS, [box_at(0.5 + jitter, 0.5)])
        ids.add(assignment.track_id)
    assert len(ids) == 1


def test_a_track_is_confirmed_after_min_frames() -> None:
    tracker = Tracker(min_frames=3)
    confirmed = [tracker.update(i / FPS, [box_at(0.3, 0.3)])[0].confirmed for i in range(4)]
    assert confirmed == [False, False, True, True]


def test_two_people_crossing_keep_their_tracks() -> None:
    """Walking towards each other along nearly the same line, passing at the centre."""
    tracker = Tracker()
    left_ids, right_ids = set(), set()
    for i in range(41):
        t = i / FPS
        a = box_at(0.1 + 0.02 * i, 0.45, 0.12)  # moving right
        b = box_at(0.9 - 0.02 * i, 0.60, 0.12)  # moving left, slightly lower
        first, second = tracker.update(t, [a, b])
        left_ids.add(first.track_id)
        right_ids.add(second.track_id)
    assert len(left_ids) == 1 and len(right_ids) == 1 and left_ids != right_ids


def test_a_fast_walker_keeps_the_track_by_prediction() -> None:
    """Moving 60 % of a face width per frame: box overlap alone would lose it."""
    tracker = Tracker()
    ids = {tracker.update(i / FPS, [box_at(0.1 + 0.09 * i, 0.5)])[0].track_id for i in range(10)}
    assert len(ids) == 1


def test_a_short_gap_keeps_the_track_and_a_long_one_starts_a_new_person() -> None:
    tracker = Tracker(max_gap_s=1.0)
    first = tracker.update(0.0, [box_at(0.5, 0.5)])[0].track_id
    tracker.update(0.1, [box_at(0.5, 0.5)])
    # Missed by the detector for 0.5 s, then back: the same person.
    assert tracker.update(0.6, [box_at(0.5, 0.5)])[0].track_id == first
    # Gone for 3 s (left and came back): counted as someone new.
    assert tracker.update(3.6, [box_at(0.5, 0.5)])[0].track_id != first
    assert tracker.live_tracks == 1


def test_new_faces_appear_while_others_stay() -> None:
    tracker = Tracker()
    a = tracker.update(0.0, [box_at(0.2, 0.5)])[0].track_id
    both = tracker.update(0.1, [box_at(0.2, 0.5), box_at(0.8, 0.5)])
    assert both[0].track_id == a and both[1].track_id != a
