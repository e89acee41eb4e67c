"""Tumbling windows per zone, counted in visits.

Pure bookkeeping over timestamps passed in: no clock, no I/O, so a replayed file gives the same
windows every time.

Counting rules (documented in the README and PRIVACY.md):
- A visit is one confirmed track's stay in one zone: it starts when the track is first seen
  there and ends once the track has not been seen there for the tracker's `max_gap_s`. A person
  who walks from one zone into another makes a visit in each.
- A visit counts once, in the window during which it ended, however long it lasted: a person
  who stays ten minutes is one visit, not ten person-minutes, and is never counted in two
  windows (which would let one window's count be subtracted from the next).
- A visit's expression is the arg-max of the mean of its class probabilities over the frames
  in which the face was large enough to classify; never large enough: `unclassified`.

The windows leave here raw (`FaceTally`): the release gate (sensekit.privacy.release) decides
what of them may be published.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sensekit.types import EXPRESSION_LABELS, FaceTally, Visit


def window_start(timestamp: float, window_s: int) -> float:
    """Windows are aligned to multiples of their length since the epoch, so every device's
    windows line up on a dashboard."""
    return math.floor(timestamp / window_s) * float(window_s)


@dataclass(slots=True)
class _OpenVisit:
    last_seen: float
    confirmed: bool = False
    classified_frames: int = 0
    probability_sum: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(len(EXPRESSION_LABELS))
    )

    def ended(self, track_id: int) -> Visit:
        mean = self.probability_sum / self.classified_frames if self.classified_frames else None
        return Visit(track_id, mean)


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
        self, camera: str, zones: Sequence[str], window_s: int, visit_gap_s: float
    ) -> None:
        self.camera = camera
        self.zones = tuple(zones)
        self.window_s = window_s
        self.visit_gap_s = visit_gap_s
        self._start: float | None = None
        self._frames = 0
        self._open: dict[str, dict[int, _OpenVisit]] = {zone: {} for zone in self.zones}
        self._ended: dict[str, list[Visit]] = {zone: [] for zone in self.zones}

    @property
    def current_window_start(self) -> float | None:
        return self._start

    @property
    def open_visits(self) -> int:
        return sum(len(visits) for visits in self._open.values())

    def add_frame(self, timestamp: float, observations: Sequence[Observation]) -> list[FaceTally]:
        """Record one processed frame; returns the windows that this frame's time closed."""
        closed: list[FaceTally] = []
        start = window_start(timestamp, self.window_s)
        if self._start is not None and start > self._start:
            self._end_visits(lambda visit: timestamp - visit.last_seen > self.visit_gap_s)
            closed = self._close(self._start + self.window_s, complete=True)
        # A frame that steps back in time (a clock change) never reopens a published window:
        # it counts in the open one.
        if self._start is None or start > self._start:
            self._start = start
        self._frames += 1
        for obs in observations:
            if obs.zone is None or obs.zone not in self._open:
                continue
            visits = self._open[obs.zone]
            visit = visits.get(obs.track_id)
            if visit is None:
                visit = visits[obs.track_id] = _OpenVisit(timestamp)
            visit.last_seen = max(visit.last_seen, timestamp)
            visit.confirmed |= obs.confirmed
            if obs.probabilities is not None:
                visit.classified_frames += 1
                visit.probability_sum += obs.probabilities
        self._end_visits(lambda visit: timestamp - visit.last_seen > self.visit_gap_s)
        return closed

    def flush(self, end_timestamp: float) -> list[FaceTally]:
        """Close the open window at `end_timestamp` (shutdown, end of media): every visit
        still open ends with it."""
        if self._start is None:
            return []
        self._end_visits(lambda _visit: True)
        nominal_end = self._start + self.window_s
        complete = end_timestamp >= nominal_end
        return self._close(nominal_end if complete else end_timestamp, complete)

    def _end_visits(self, over: Callable[[_OpenVisit], bool]) -> None:
        for zone, visits in self._open.items():
            for track_id in [t for t, visit in visits.items() if over(visit)]:
                visit = visits.pop(track_id)
                if visit.confirmed:
                    self._ended[zone].append(visit.ended(track_id))

    def _close(self, end: float, complete: bool) -> list[FaceTally]:
        assert self._start is not None
        windows = [
            FaceTally(
                zone=zone,
                camera=self.camera,
                window_start=self._start,
                window_end=end,
                complete=complete,
                frames=self._frames,
                visits=tuple(self._ended[zone]),
            )
            for zone in self.zones
        ]
        self._frames = 0
        self._ended = {zone: [] for zone in self.zones}
        self._start = None
        return windows
