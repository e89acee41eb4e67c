"""The release gate: what of a zone's raw window may be published. Nothing reaches a
publisher without passing through `ReleaseGate.release`.

The rule (the argument is in PRIVACY.md, "Small groups are never reported"):

- Faces are counted in visits (sensekit.aggregate). A zone's visits fall into eight cells:
  the seven expressions and `unclassified`. Each cell keeps its visits *held* until they come
  from at least k distinct people (tracks); then the whole cell is released at once and
  emptied. A cell below k publishes 0 and its visits wait for the next window of the same
  zone, so nothing is lost, only delayed. `people` is the sum of the released cells.
- Because every visit is released exactly once, and every released cell covers at least k
  people, every published number and every difference of two published numbers that
  describes a set of visits (a total minus some of its cells) covers 0 or at least k people.
- Voice: each speech analysis window has an arousal level and a category; the 3 x 7 joint
  cells are held until they reach k_windows and are released whole, and the two published
  breakdowns (arousal, categories) are margins of the released joint cells, so they sum to
  the same total and neither can be subtracted from the other to expose a held cell. In a
  zone that a camera covers, voice is released only in a window whose faces released at
  least k people: speech is never published about a zone where fewer than k people are
  known to have been (and a held voice cell waits for such a window).
- Optionally, discrete Laplace noise with `dp_epsilon` is then added to every cell, released
  or not, and the totals are recomputed from the noisy cells.

What is held lives only in this object's memory: it is never written or sent, and it is lost
at a restart (logged as a count, so it is not silent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sensekit.privacy.noise import DiscreteLaplace
from sensekit.types import (
    EXPRESSION_LABELS,
    VOICE_AROUSAL_LABELS,
    VOICE_EMOTION_LABELS,
    FaceCounts,
    FaceTally,
    VoiceCounts,
    VoiceTally,
    ZoneTally,
    ZoneWindow,
)

log = logging.getLogger(__name__)

FACE_CELLS: tuple[str, ...] = (*EXPRESSION_LABELS, "unclassified")
_UNCLASSIFIED = len(EXPRESSION_LABELS)


@dataclass(frozen=True, slots=True)
class ReleasePolicy:
    k_threshold: int
    k_windows: int
    dp_epsilon: float | None = None

    def __post_init__(self) -> None:
        if self.k_threshold < 3 or self.k_windows < 3:
            raise ValueError("k_threshold and k_windows must be at least 3")


@dataclass(slots=True)
class _HeldVisits:
    """One person's held visits in one cell."""

    visits: int = 0
    probability_sum: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(len(EXPRESSION_LABELS))
    )


@dataclass(slots=True)
class _ZonePool:
    faces: list[dict[int, _HeldVisits]] = field(default_factory=lambda: [{} for _ in FACE_CELLS])
    voice: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(
            (len(VOICE_AROUSAL_LABELS), len(VOICE_EMOTION_LABELS)), dtype=np.int64
        )
    )


@dataclass(frozen=True, slots=True)
class HeldSummary:
    """How much is waiting, device-wide, for the shutdown log line (never published)."""

    visits: int
    speech_windows: int


class ReleaseGate:
    def __init__(self, policy: ReleasePolicy, rng: np.random.Generator | None = None) -> None:
        self._rng = rng
        self._pools: dict[str, _ZonePool] = {}
        self.policy = policy
        self._noise: DiscreteLaplace | None = None
        self._voice_noise: DiscreteLaplace | None = None
        self.update(policy)

    def update(self, policy: ReleasePolicy) -> None:
        """A reload: new thresholds apply from the next window; what is held stays held."""
        self.policy = policy
        self._noise = self._voice_noise = None
        if policy.dp_epsilon is not None:
            # One visit moves one face cell by one. One speech window moves one arousal level
            # and one category: two published numbers, hence sensitivity 2.
            self._noise = DiscreteLaplace(policy.dp_epsilon, 1, self._rng)
            self._voice_noise = DiscreteLaplace(policy.dp_epsilon, 2, self._rng)

    def held(self, zone: str | None = None) -> HeldSummary:
        """What is waiting below the thresholds, in one zone or in all."""
        pools = [p for z, p in self._pools.items() if zone is None or z == zone]
        visits = sum(held.visits for pool in pools for cell in pool.faces for held in cell.values())
        speech = sum(int(pool.voice.sum()) for pool in pools)
        return HeldSummary(visits, speech)

    def release(self, tally: ZoneTally) -> ZoneWindow:
        pool = self._pools.setdefault(tally.zone, _ZonePool())
        faces = None if tally.faces is None else self._release_faces(pool, tally.faces)
        voice = None
        if tally.voice is not None:
            face_release = faces is not None and faces.people > 0
            voice = self._release_voice(
                pool, tally.voice, allowed=face_release or not tally.has_camera
            )
        if self._noise is not None:
            faces, voice = self._add_noise(faces, voice)
        return ZoneWindow(
            site=tally.site,
            device=tally.device,
            zone=tally.zone,
            window_start=tally.window_start,
            window_end=tally.window_end,
            complete=tally.complete,
            k_threshold=self.policy.k_threshold,
            dp_epsilon=self.policy.dp_epsilon,
            faces=faces,
            voice=voice,
        )

    # faces ----------------------------------------------------------------------------------
    def _release_faces(self, pool: _ZonePool, tally: FaceTally) -> FaceCounts:
        for visit in tally.visits:
            if visit.probabilities is None:
                cell = _UNCLASSIFIED
            else:
                cell = int(np.argmax(visit.probabilities))
            held = pool.faces[cell].setdefault(visit.person, _HeldVisits())
            held.visits += 1
            if visit.probabilities is not None:
                held.probability_sum += visit.probabilities
        counts = np.zeros(len(FACE_CELLS), dtype=np.int64)
        probability_sum = np.zeros(len(EXPRESSION_LABELS))
        for cell, people in enumerate(pool.faces):
            if len(people) < self.policy.k_threshold:
                continue
            counts[cell] = sum(held.visits for held in people.values())
            for held in people.values():
                probability_sum += held.probability_sum
            people.clear()
        classified = int(counts[:_UNCLASSIFIED].sum())
        means = None
        if classified:
            means = {
                label: round(float(v), 4)
                for label, v in zip(EXPRESSION_LABELS, probability_sum / classified, strict=True)
            }
        return _face_counts(tally.camera, tally.frames, counts, means)

    # voice ----------------------------------------------------------------------------------
    def _release_voice(self, pool: _ZonePool, tally: VoiceTally, allowed: bool) -> VoiceCounts:
        pool.voice += tally.counts
        released = np.zeros_like(pool.voice)
        if allowed:
            ready = pool.voice >= self.policy.k_windows
            released[ready] = pool.voice[ready]
            pool.voice[ready] = 0
        return _voice_counts(
            tally.microphones,
            tally.audio_s,
            released.sum(axis=1),
            released.sum(axis=0),
            self.policy.k_windows,
        )

    # noise ----------------------------------------------------------------------------------
    def _add_noise(
        self, faces: FaceCounts | None, voice: VoiceCounts | None
    ) -> tuple[FaceCounts | None, VoiceCounts | None]:
        assert self._noise is not None and self._voice_noise is not None
        if faces is not None:
            cells = np.array(
                [faces.expressions[label] for label in EXPRESSION_LABELS] + [faces.unclassified],
                dtype=np.int64,
            )
            faces = _face_counts(faces.camera, faces.frames, self._noise.add_to(cells), None)
        if voice is not None:
            arousal = np.array([voice.arousal[x] for x in VOICE_AROUSAL_LABELS], dtype=np.int64)
            emotions = np.array([voice.emotions[x] for x in VOICE_EMOTION_LABELS], dtype=np.int64)
            voice = _voice_counts(
                voice.microphones,
                voice.audio_s,
                self._voice_noise.add_to(arousal),
                self._voice_noise.add_to(emotions),
                voice.k_windows,
            )
        return faces, voice


def _face_counts(
    camera: str, frames: int, cells: npt.NDArray[np.int64], means: dict[str, float] | None
) -> FaceCounts:
    return FaceCounts(
        camera=camera,
        frames=frames,
        people=int(cells.sum()),
        expressions={
            label: int(c) for label, c in zip(EXPRESSION_LABELS, cells[:_UNCLASSIFIED], strict=True)
        },
        unclassified=int(cells[_UNCLASSIFIED]),
        mean_probabilities=means,
    )


def _voice_counts(
    microphones: tuple[str, ...],
    audio_s: float,
    arousal: npt.NDArray[np.int64],
    emotions: npt.NDArray[np.int64],
    k_windows: int,
) -> VoiceCounts:
    return VoiceCounts(
        microphones=microphones,
        audio_s=audio_s,
        windows=int(arousal.sum()),
        k_windows=k_windows,
        arousal={label: int(c) for label, c in zip(VOICE_AROUSAL_LABELS, arousal, strict=True)},
        emotions={label: int(c) for label, c in zip(VOICE_EMOTION_LABELS, emotions, strict=True)},
    )
