"""Associates faces across frames by position only: no appearance, no identity, memory only.

A track is a box that moves: each new face joins the live track whose predicted box it overlaps
most (or, for fast motion, whose predicted centre is within half a face width and whose size is
similar). Track ids are process-local counters that are never published or stored; a track not
seen for `max_gap_s` is forgotten, so a person who leaves and comes back counts again.

A frame holds a handful of faces, so this is plain Python over tuples: for so few pairs it is
several times faster than building numpy arrays each frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sensekit.types import Box

Corners = tuple[float, float, float, float]


@dataclass(slots=True)
class _Track:
    track_id: int
    box: Corners  # xmin, ymin, xmax, ymax, normalised
    velocity: Corners  # per second, of each corner coordinate
    last_seen: float
    hits: int

    def predicted(self, timestamp: float) -> Corners:
        dt = timestamp - self.last_seen
        b, v = self.box, self.velocity
        return (b[0] + v[0] * dt, b[1] + v[1] * dt, b[2] + v[2] * dt, b[3] + v[3] * dt)


@dataclass(frozen=True, slots=True)
class TrackAssignment:
    """Which track a face joined, and whether that track has been seen often enough to count."""

    track_id: int
    confirmed: bool


def box_iou(a: Corners, b: Corners) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes, in any units."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Tracker:
    def __init__(
        self, iou_threshold: float = 0.2, max_gap_s: float = 1.0, min_frames: int = 3
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_gap_s = max_gap_s
        self.min_frames = min_frames
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)

    def affinity(self, predicted: Corners, detection: Corners) -> float:
        """IoU where boxes overlap enough; otherwise a small positive score for a near centre
        of similar size (a face that moved more than its overlap allows); else zero."""
        iou = box_iou(predicted, detection)
        if iou >= self.iou_threshold:
            return iou
        size_p = max(predicted[2] - predicted[0], predicted[3] - predicted[1])
        size_d = max(detection[2] - detection[0], detection[3] - detection[1])
        scale = max(size_p, size_d, 1e-6)
        distance = math.hypot(
            (predicted[0] + predicted[2] - detection[0] - detection[2]) / 2,
            (predicted[1] + predicted[3] - detection[1] - detection[3]) / 2,
        )
        if distance < 0.5 * scale and min(size_p, size_d) / scale > 0.6:
            return 0.01 * (1.0 - distance / scale)
        return 0.0

    def update(self, timestamp: float, boxes: Sequence[Box]) -> list[TrackAssignment]:
        self._tracks = [t for t in self._tracks if timestamp - t.last_seen <= self.max_gap_s]
        detections = [(b.xmin, b.ymin, b.xmax, b.ymax) for b in boxes]
        predictions = [track.predicted(timestamp) for track in self._tracks]
        pairs = [
            (score, ti, di)
            for ti, predicted in enumerate(predictions)
            for di, detection in enumerate(detections)
            if (score := self.affinity(predicted, detection)) > 0
        ]
        # Greedy on the best pairs first: with a handful of faces this equals the optimum in
        # practice and needs no solver.
        pairs.sort(key=lambda pair: -pair[0])
        track_of: dict[int, int] = {}
        used: set[int] = set()
        for _, ti, di in pairs:
            if di not in track_of and ti not in used:
                track_of[di] = ti
                used.add(ti)
        result: list[TrackAssignment] = []
        for di, box in enumerate(detections):
            ti = track_of.get(di)
            if ti is None:
                track = _Track(self._next_id, box, (0.0, 0.0, 0.0, 0.0), timestamp, 1)
                self._next_id += 1
                self._tracks.append(track)
            else:
                track = self._tracks[ti]
                dt = timestamp - track.last_seen
                if dt > 0:
                    track.velocity = tuple(  # type: ignore[assignment]
                        0.5 * v + 0.5 * (new - old) / dt
                        for v, new, old in zip(track.velocity, box, track.box, strict=True)
                    )
                track.box, track.last_seen = box, timestamp
                track.hits += 1
            result.append(TrackAssignment(track.track_id, track.hits >= self.min_frames))
        return result
