"""Zones: polygons in normalised image coordinates, and which zone a point falls in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensekit.config import Anchor, CameraConfig
from sensekit.types import Box


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    polygon: npt.NDArray[np.float64]  # V x 2


@dataclass(frozen=True, slots=True)
class _Edges:
    """A polygon's edges, computed once: the per-frame test is then a few array operations."""

    x1: npt.NDArray[np.float64]
    y1: npt.NDArray[np.float64]
    y2: npt.NDArray[np.float64]
    slope: npt.NDArray[np.float64]  # dx/dy of each edge (inf or nan where horizontal)

    @classmethod
    def of(cls, polygon: npt.NDArray[np.float64]) -> _Edges:
        x1, y1 = polygon[:, 0], polygon[:, 1]
        x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (x2 - x1) / (y2 - y1)
        return cls(x1, y1, y2, slope)

    def contain(self, points: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Even-odd ray casting for many points at once.

        Edges are half-open (a point on a shared edge belongs to exactly one of two
        neighbouring zones), so a face on the line between two zones is never counted twice.
        """
        x, y = points[:, 0:1], points[:, 1:2]
        straddles = (self.y1 <= y) != (self.y2 <= y)
        with np.errstate(invalid="ignore"):
            crossing_x = self.x1 + (y - self.y1) * self.slope
        crossings = straddles & (x < crossing_x)
        inside: npt.NDArray[np.bool_] = (np.count_nonzero(crossings, axis=1) % 2) == 1
        return inside


def points_in_polygon(
    points: npt.NDArray[np.float64], polygon: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Which points lie in the polygon (half-open edges, see `_Edges.contain`)."""
    return _Edges.of(np.asarray(polygon, dtype=np.float64)).contain(points)


class ZoneMap:
    """The zones of one camera. Where zones overlap, the first one listed wins."""

    def __init__(self, zones: Sequence[Zone], anchor: Anchor = Anchor.BOX_CENTER) -> None:
        if not zones:
            raise ValueError("a camera needs at least one zone")
        self.zones = tuple(zones)
        self.anchor = anchor
        self._edges = [_Edges.of(zone.polygon) for zone in self.zones]

    @classmethod
    def from_config(cls, camera: CameraConfig) -> ZoneMap:
        zones = [
            Zone(zone.name, np.asarray(zone.polygon, dtype=np.float64))
            for zone in camera.effective_zones()
        ]
        return cls(zones, camera.anchor)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(zone.name for zone in self.zones)

    def anchor_point(self, box: Box) -> tuple[float, float]:
        if self.anchor is Anchor.BOX_BOTTOM:
            return ((box.xmin + box.xmax) / 2.0, box.ymax)
        return box.center

    def assign(self, boxes: Sequence[Box]) -> list[str | None]:
        """The zone of each box's anchor point, or None when it is in no zone."""
        if not boxes:
            return []
        points = np.array([self.anchor_point(box) for box in boxes], dtype=np.float64)
        result: list[str | None] = [None] * len(boxes)
        for zone, edges in zip(self.zones, self._edges, strict=True):
            hits = edges.contain(points)
            for i in np.flatnonzero(hits):
                if result[i] is None:
                    result[i] = zone.name
        return result
