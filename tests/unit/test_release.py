"""The release gate: no published number, and no difference of published numbers, describes
1..k-1 people; held people are carried to later windows, not lost.

The property tests state the rule from the outside (PRIVACY.md) and check the gate's output
against it for arbitrary sequences of visits, people and zones."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensekit.privacy.release import FACE_CELLS, ReleaseGate, ReleasePolicy
from sensekit.types import (
    EXPRESSION_LABELS,
    VOICE_AROUSAL_LABELS,
    VOICE_EMOTION_LABELS,
    FaceTally,
    Visit,
    VoiceTally,
    ZoneTally,
    ZoneWindow,
)

T0 = 1_767_225_600.0
UNCLASSIFIED = len(EXPRESSION_LABELS)


def probabilities(cell: int) -> np.ndarray | None:
    if cell == UNCLASSIFIED:
        return None
    p = np.full(len(EXPRESSION_LABELS), 0.02)
    p[cell] = 1.0 - 0.02 * (len(EXPRESSION_LABELS) - 1)
    return p


def tally(
    zone: str,
    index: int,
    visits: list[tuple[int, int]] | None,
    voice: np.ndarray | None = None,
    has_camera: bool = True,
) -> ZoneTally:
    start = T0 + 60 * index
    faces = None
    if visits is not None:
        faces = FaceTally(
            zone, "cam", start, start + 60, True, 600,
            tuple(Visit(person, probabilities(cell)) for person, cell in visits),
        )  # fmt: skip
    heard = None
    if voice is not None:
        heard = VoiceTally(zone, ("mic",), start, start + 60, True, 60.0, voice)
    return ZoneTally("s", "d", zone, start, start + 60, True, has_camera, faces, heard)


def cells_of(window: ZoneWindow) -> list[int]:
    assert window.faces is not None
    return [window.faces.expressions[x] for x in EXPRESSION_LABELS] + [window.faces.unclassified]


# --- examples --------------------------------------------------------------------------------


def test_a_cell_below_k_is_held_and_released_with_the_next_visits() -> None:
    gate = ReleaseGate(ReleasePolicy(k_threshold=3, k_windows=3))
    happy = EXPRESSION_LABELS.index("happy")
    first = gate.release(tally("door", 0, [(1, happy), (2, happy)]))
    assert first.faces is not None and first.faces.people == 0
    assert gate.held().visits == 2
    second = gate.release(tally("door", 1, [(3, happy)]))
    assert second.faces is not None
    assert second.faces.people == 3 and second.faces.expressions["happy"] == 3
    assert second.faces.mean_probabilities is not None
    assert gate.held().visits == 0


def test_one_person_visiting_again_and_again_is_never_released_alone() -> None:
    gate = ReleaseGate(ReleasePolicy(k_threshold=3, k_windows=3))
    for index in range(50):
        window = gate.release(tally("kiosk", index, [(7, 0)]))
        assert window.faces is not None and window.faces.people == 0
    assert gate.held().visits == 50
    released = gate.release(tally("kiosk", 50, [(8, 0), (9, 0)]))
    assert released.faces is not None and released.faces.expressions["angry"] == 52


def test_small_cells_are_held_while_large_ones_go_out() -> None:
    gate = ReleaseGate(ReleasePolicy(k_threshold=3, k_windows=3))
    visits = [(1, 3), (2, 3), (3, 3), (4, 4)]  # three happy, one sad
    window = gate.release(tally("door", 0, visits))
    assert window.faces is not None
    assert window.faces.expressions["happy"] == 3 and window.faces.expressions["sad"] == 0
    assert window.faces.people == 3  # the total never includes the held sad visit


def test_voice_waits_for_k_people_in_a_camera_zone() -> None:
    gate = ReleaseGate(ReleasePolicy(k_threshold=3, k_windows=3))
    speech = np.zeros((3, 7), np.int64)
    speech[2, 4] = 20  # 20 windows of high-arousal "happy" speech from a lone customer
    alone = gate.release(tally("kiosk", 0, [(1, 3)], speech))
    assert alone.voice is not None and alone.voice.windows == 0
    crowd = gate.release(tally("kiosk", 1, [(2, 3), (3, 3)]))
    assert crowd.faces is not None and crowd.faces.people == 3
    assert crowd.voice is None  # no microphone part in this window: the speech stays held
    later = gate.release(tally("kiosk", 2, [(4, 3), (5, 3), (6, 3)], np.zeros((3, 7), np.int64)))
    assert later.voice is not None and later.voice.arousal["high"] == 20
    assert later.voice.emotions["happy"] == 20


def test_a_zone_without_camera_needs_k_windows_per_joint_cell() -> None:
    gate = ReleaseGate(ReleasePolicy(k_threshold=3, k_windows=4))
    speech = np.zeros((3, 7), np.int64)
    speech[0, 1] = 4
    speech[1, 5] = 3  # held: below k_windows
    window = gate.release(tally("till", 0, None, speech, has_camera=False))
    assert window.voice is not None
    assert window.voice.arousal == {"low": 4, "mid": 0, "high": 0}
    assert window.voice.emotions["bored"] == 4 and window.voice.emotions["neutral"] == 0
    assert gate.held().speech_windows == 3


def test_a_reload_keeps_what_is_held_and_applies_the_new_k() -> None:
    gate = ReleaseGate(ReleasePolicy(k_threshold=5, k_windows=3))
    gate.release(tally("door", 0, [(1, 0), (2, 0), (3, 0)]))
    gate.update(ReleasePolicy(k_threshold=3, k_windows=3))
    window = gate.release(tally("door", 1, []))
    assert window.faces is not None and window.faces.people == 3
    assert window.k_threshold == 3


def test_k_below_three_is_refused() -> None:
    with pytest.raises(ValueError):
        ReleasePolicy(k_threshold=2, k_windows=3)


def test_with_noise_counts_are_noisy_whole_and_non_negative() -> None:
    gate = ReleaseGate(ReleasePolicy(3, 3, dp_epsilon=0.5), rng=np.random.default_rng(1))
    seen = []
    for index in range(200):
        window = gate.release(tally("door", index, [(i, 3) for i in range(10)]))
        assert window.dp_epsilon == 0.5
        assert window.faces is not None and window.faces.mean_probabilities is None
        cells = cells_of(window)
        assert all(isinstance(c, int) and c >= 0 for c in cells)
        assert window.faces.people == sum(cells)
        seen.append(window.faces.expressions["happy"])
    assert len(set(seen)) > 3  # noise changes the numbers...
    assert np.mean(seen) == pytest.approx(10, abs=0.6)  # ...without a bias (10 >> noise)


# --- properties ------------------------------------------------------------------------------

ZONES = ("a", "b")

visit = st.tuples(st.integers(0, 9), st.integers(0, UNCLASSIFIED))  # (person, cell)
window_visits = st.dictionaries(st.sampled_from(ZONES), st.lists(visit, max_size=8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(3, 5),
    windows=st.lists(window_visits, min_size=1, max_size=14),
)
def test_no_published_cell_or_difference_covers_1_to_k_minus_1_people(
    k: int, windows: list[dict[str, list[tuple[int, int]]]]
) -> None:
    gate = ReleaseGate(ReleasePolicy(k_threshold=k, k_windows=3))
    # The outside view of the rule: in each zone, a cell's visits are held until they come
    # from k distinct people, then all of them go out at once.
    since_release: dict[tuple[str, int], list[tuple[int, int, int]]] = defaultdict(list)
    published: list[tuple[frozenset[tuple[str, int, int]], frozenset[int]]] = []
    total_in = released_total = 0
    for index, by_zone in enumerate(windows):
        for zone in ZONES:
            visits = by_zone.get(zone, [])
            total_in += len(visits)
            window = gate.release(tally(zone, index, visits))
            released_sets = []
            for position, (person, cell) in enumerate(visits):
                since_release[(zone, cell)].append((index, position, person))
            for cell, count in enumerate(cells_of(window)):
                pending = since_release[(zone, cell)]
                people = {person for _, _, person in pending}
                if count:
                    assert len(people) >= k, (zone, cell, pending)
                    assert count == len(pending)
                    released_sets.append(
                        (frozenset((zone, i, p) for i, p, _ in pending), frozenset(people))
                    )
                    pending.clear()
                else:
                    assert len(people) < k, "held although k people were there"
            # Within the message: the total minus any subset of its cells is the rest of them.
            for size in range(len(released_sets) + 1):
                for subset in itertools.combinations(released_sets, size):
                    rest = [r for r in released_sets if r not in subset]
                    people = frozenset().union(*(r[1] for r in rest)) if rest else frozenset()
                    assert len(people) == 0 or len(people) >= k
            assert window.faces is not None
            assert window.faces.people == sum(cells_of(window))
            released_total += window.faces.people
            published.extend(released_sets)
            published.append(
                (
                    frozenset().union(*(r[0] for r in released_sets)),
                    frozenset().union(*(r[1] for r in released_sets)),
                )
            )
    # Across all messages: whenever one published number's visits contain another's, the
    # visits in the difference come from 0 or at least k people.
    for (visits_x, _), (visits_y, _) in itertools.permutations(published, 2):
        if visits_y and visits_y < visits_x:
            people_left = _people_of(visits_x - visits_y, windows)
            assert len(people_left) >= k, (visits_x, visits_y)
    # Nothing is lost: released + held = everything seen.
    assert released_total + gate.held().visits == total_in


def _people_of(
    visits: frozenset[tuple[str, int, int]], windows: list[dict[str, list[tuple[int, int]]]]
) -> set[int]:
    return {windows[index][zone][position][0] for zone, index, position in visits}


speech = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 6), st.integers(0, 12)), max_size=6
).map(lambda cells: _matrix(cells))


def _matrix(cells: list[tuple[int, int, int]]) -> np.ndarray:
    m = np.zeros((len(VOICE_AROUSAL_LABELS), len(VOICE_EMOTION_LABELS)), np.int64)
    for a, e, n in cells:
        m[a, e] += n
    return m


@settings(max_examples=150, deadline=None)
@given(
    k=st.integers(3, 5),
    k_windows=st.integers(3, 12),
    has_camera=st.booleans(),
    windows=st.lists(st.tuples(st.lists(visit, max_size=8), speech), min_size=1, max_size=12),
)
def test_voice_is_released_only_in_whole_cells_and_only_beside_k_people(
    k: int,
    k_windows: int,
    has_camera: bool,
    windows: list[tuple[list[tuple[int, int]], np.ndarray]],
) -> None:
    gate = ReleaseGate(ReleasePolicy(k_threshold=k, k_windows=k_windows))
    heard = released = 0
    for index, (visits, matrix) in enumerate(windows):
        window = gate.release(tally("z", index, visits if has_camera else None, matrix, has_camera))
        voice = window.voice
        assert voice is not None
        heard += int(matrix.sum())
        released += voice.windows
        # The two breakdowns are margins of the same released cells: equal totals, so one
        # cannot be subtracted from the other to expose a held cell.
        assert sum(voice.arousal.values()) == sum(voice.emotions.values()) == voice.windows
        for count in [*voice.arousal.values(), *voice.emotions.values()]:
            assert count == 0 or count >= k_windows
        if has_camera and voice.windows:
            assert window.faces is not None and window.faces.people >= k
    assert released + gate.held().speech_windows == heard


def test_cell_names_cover_the_labels_and_unclassified() -> None:
    assert (*EXPRESSION_LABELS, "unclassified") == FACE_CELLS
