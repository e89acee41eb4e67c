"""Associates faces across frames by position only: no appearance, no identity, memory only.

A track is a box that moves: each new face joins the live track whose predicted box it overlaps
most (or, for fast motion, whose predicted centre is within half a face width and whose size is
similar). Track ids are process-local counters that are never published or stored; a track not
seen for `max_gap_s` is forgotten, so a person who leaves and comes back counts again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensekit.types import Box
from sensekit.vision.detector import iou_matrix


@dataclass(slots=True)
class _Track:
    track_id: int
    box: npt.NDArray[np.float32]  # xyxy, normalised
    velocity: npt.NDArray[np.float32]  # per second, of the xyxy corners
    last_seen: float
    hits: int


@dataclass(frozen=True, slots=True)
class TrackAssignment:
    """Which track a face joined, and whether that track has been seen often enough to count."""

    track_id: int
    confirmed: bool


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

    def update(self, timestamp: float, boxes: Sequence[Box]) -> list[TrackAssignment]:
        self._tracks = [t for t in self._tracks if timestamp - t.last_seen <= self.max_gap_s]
        detections = np.array(
            [(b.xmin, b.ymin, b.xmax, b.ymax) for b in boxes], dtype=np.float32
        ).reshape(-1, 4)
        assigned: list[int | None] = [None] * len(detections)
        if self._tracks and len(detections):
            predicted = np.stack(
                [t.box + t.velocity * np.float32(timestamp - t.last_seen) for t in self._tracks]
            )
            affinity = self._affinity(predicted, detections)
            # Greedy on the best pairs first: with a handful of faces this equals the optimum
            # in practice and needs no solver.
            for flat in np.argsort(-affinity, axis=None, kind="stable"):
                ti, di = np.unravel_index(flat, affinity.shape)
                if affinity[ti, di] <= 0:
                    break
                if assigned[di] is not None or np.isneginf(predicted[ti, 0]):
                    continue
                assigned[di] = int(ti)
                predicted[ti, 0] = -np.inf  # track used
        result: list[TrackAssignment] = []
        for di, box in enumerate(detections):
            ti = assigned[di]
            if ti is None:
                track = _Track(self._next_id, box, np.zeros(4, np.float32), timestamp, 1)
                self._next_id += 1
                self._tracks.append(track)
            else:
                track = self._tracks[ti]
                dt = timestamp - track.last_seen
                if dt > 0:
                    measured = (box - track.box) / np.float32(dt)
                    track.velocity = 0.5 * track.velocity + 0.5 * measured
                track.box, track.last_seen = box, timestamp
                track.hits += 1
            result.append(TrackAssignment(track.track_id, track.hits >= self.min_frames))
        return result

    def _affinity(
        self, predicted: npt.NDArray[np.float32], detections: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """IoU where boxes overlap enough; otherwise a small positive score for a near centre
        of similar size (a face that moved more than its overlap allows); else zero."""
        iou = iou_matrix(predicted, detections)
        size_p = np.maximum(predicted[:, 2] - predicted[:, 0], predicted[:, 3] - predicted[:, 1])
        size_d = np.maximum(
            detections[:, 2] - detections[:, 0], detections[:, 3] - detections[:, 1]
        )
        centre_p = (predicted[:, :2] + predicted[:, 2:]) / 2
        centre_d = (detections[:, :2] + detections[:, 2:]) / 2
        distance = np.linalg.norm(centre_p[:, None, :] - centre_d[None, :, :], axis=2)
        scale = np.maximum(size_p[:, None], size_d[None, :])
        ratio = np.minimum(size_p[:, None], size_d[None, :]) / np.maximum(scale, 1e-6)
        near = (distance < 0.5 * scale) & (ratio > 0.6)
        fallback = np.where(near, 0.01 * (1.0 - distance / np.maximum(scale, 1e-6)), 0.0)
        return np.where(iou >= self.iou_threshold, iou, fallback).astype(np.float32)
