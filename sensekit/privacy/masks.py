"""Exclusion masks: areas of a camera's picture that no model ever sees.

Staff areas, cash desks and a window onto the street are blanked (set to black) in a copy of
each frame before face detection, so a face there is never detected, classified, tracked or
counted. This is how a shop keeps its employees out of emotion recognition, which the EU AI Act
prohibits in the workplace (Art. 5(1)(f)).

A polygon is rasterised once per frame size with its vertices rounded to the nearest pixel,
so an edge may be off by one pixel: draw masks with a margin. A face straddling a mask edge is
seen partly blanked and may still be detected from its visible part; such a face is dropped
when its anchor point (the point that decides its zone) lies in a mask, so a person standing
in a masked area is never counted, whatever part of the face shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from sensekit.config import CameraConfig
from sensekit.zones import points_in_polygon


class ExclusionMask:
    def __init__(self, polygons: Sequence[npt.NDArray[np.float64]]) -> None:
        """`polygons`: V x 2 arrays of normalised (x, y) vertices."""
        self.polygons = tuple(np.asarray(p, dtype=np.float64) for p in polygons)
        self._keep: dict[tuple[int, int], npt.NDArray[np.uint8]] = {}

    @classmethod
    def from_config(cls, camera: CameraConfig) -> ExclusionMask:
        return cls([np.asarray(mask.polygon, dtype=np.float64) for mask in camera.masks])

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def covers(self, points: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Which normalised (x, y) points lie in some mask."""
        inside = np.zeros(len(points), dtype=bool)
        for polygon in self.polygons:
            inside |= points_in_polygon(points, polygon)
        return inside

    def keep(self, height: int, width: int) -> npt.NDArray[np.uint8]:
        """255 where the picture may be analysed, 0 where it is masked; cached per size."""
        key = (height, width)
        keep = self._keep.get(key)
        if keep is None:
            keep = np.full((height, width), 255, dtype=np.uint8)
            scale = np.array([width, height], dtype=np.float64)
            pixels = [np.round(p * scale).astype(np.int32) for p in self.polygons]
            cv2.fillPoly(keep, pixels, 0)
            self._keep[key] = keep
        return keep

    def apply(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """A blanked copy of `image` (the frame itself is never written), or `image` itself
        when there is nothing to mask."""
        if not self.polygons:
            return image
        keep = self.keep(image.shape[0], image.shape[1])
        blanked: npt.NDArray[np.uint8] = cv2.bitwise_and(image, image, mask=keep)
        return blanked
