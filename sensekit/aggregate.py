"""Tumbling windows per zone: people, expression counts, mean probabilities, k-threshold.

Pure bookkeeping over timestamps passed in: no clock, no I/O, so a replayed file gives the same
windows every time.

Counting rules (documented in the README):
- A person is a confirmed track. A person counts once per zone per window, however long they
  stay; one who walks from one zone into another counts in both.
- A person's expression in a window is the arg-max of the mean of their class probabilities
  over the frames in which they were in that zone and large enough to classify. A person never
  large enough to classify counts in `people` and `unclassified` only.
- `mean_probabilities` is the mean over people of those per-person means.
- Fewer than `k_threshold` people: the breakdown (counts per class, probabilities,
  unclassified) is withheld and only the people count is published.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sensekit.types import EXPRESSION_LABELS, FaceWindow


def window_start(timestamp: float, window_s: int) -> float:
    """Windows are aligned to multiples of their length since the epoch, so every device's
    windows line up on a dashboard."""
    return math.floor(timestamp / window_s) * float(window_s)


@dataclass(slots=True)
class _PersonInZone:
    confirmed: bool = False
    classified_frames: int = 0
    probability_sum: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(len(EXPRESSION_LABELS))
    )


@dataclass(frozen=True, slots=True)
class Observation:
    """One face in one frame, reduced to what aggregation needs."""

    track_id: int
    confirmed: bool
    zone: str | None
    probabilities: npt.NDArray[np.float32] | None


class WindowAggregator:
    """Aggregates one camera's zones. Feed frames in timestamp order; collect closed windows."""

    def __init__(
        self,
        site: str,
        device: str,
        camera: str,
        zones: Sequence[str],
        window_s: int,
        k_threshold: int,
    ) -> None:
        self.site, self.device, self.camera = site, device, camera
        self.zones = tuple(zones)
        self.window_s = window_s
        self.k_threshold = k_threshold
        self._start: float | None = None
        self._frames = 0
        self._people: dict[str, dict[int, _PersonInZone]] = {zone: {} for zone in self.zones}

    @property
    def current_window_start(self) -> float | None:
        return self._start

    def add_frame(self, timestamp: float, observations: Sequence[Observation]) -> list[FaceWindow]:
        """Record one processed frame; returns the windows that this frame's time closed."""
        closed: list[FaceWindow] = []
        start = window_start(timestamp, self.window_s)
        if self._start is not None and start > self._start:
            closed = self._close(self._start + self.window_s, complete=True)
        # A frame that steps back in time (a clock change) never reopens a published window:
        # it counts in the open one.
        if self._start is None or start > self._start:
            self._start = start
        self._frames += 1
        for obs in observations:
            if obs.zone is None or obs.zone not in self._people:
                continue
            person = self._people[obs.zone].setdefault(obs.track_id, _PersonInZone())
            person.confirmed |= obs.confirmed
            if obs.probabilities is not None:
                person.classified_frames += 1
                person.probability_sum += obs.probabilities
        return closed

    def flush(self, end_timestamp: float) -> list[FaceWindow]:
        """Close the open window at `end_timestamp` (shutdown, end of media)."""
        if self._start is None:
            return []
        nominal_end = self._start + self.window_s
        complete = end_timestamp >= nominal_end
        return self._close(nominal_end if complete else end_timestamp, complete)

    def _close(self, end: float, complete: bool) -> list[FaceWindow]:
        assert self._start is not None
        windows = [self._summarise(zone, end, complete) for zone in self.zones]
        self._frames = 0
        self._people = {zone: {} for zone in self.zones}
        self._start = None
        return windows

    def _summarise(self, zone: str, end: float, complete: bool) -> FaceWindow:
        assert self._start is not None
        people = [p for p in self._people[zone].values() if p.confirmed]
        expressions: dict[str, int] | None = None
        means: dict[str, float] | None = None
        unclassified: int | None = None
        if len(people) >= self.k_threshold:
            classified = [
                p.probability_sum / p.classified_frames for p in people if p.classified_frames
            ]
            counts = np.zeros(len(EXPRESSION_LABELS), dtype=np.int64)
            for person_mean in classified:
                counts[int(np.argmax(person_mean))] += 1
            expressions = {
                label: int(c) for label, c in zip(EXPRESSION_LABELS, counts, strict=True)
            }
            unclassified = len(people) - len(classified)
            if classified:
                average = np.mean(classified, axis=0)
                means = {
                    label: round(float(v), 4)
                    for label, v in zip(EXPRESSION_LABELS, average, strict=True)
                }
        return FaceWindow(
            site=self.site,
            device=self.device,
            zone=zone,
            camera=self.camera,
            window_start=self._start,
            window_end=end,
            complete=complete,
            frames=self._frames,
            people=len(people),
            k_threshold=self.k_threshold,
            expressions=expressions,
            unclassified=unclassified,
            mean_probabilities=means,
        )
