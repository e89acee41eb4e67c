"""The astronaut's face turned by a known yaw or pitch, for testing the head-pose estimate.

Two warps of skimage's `data.astronaut()` (public domain, bundled):

* `cylinder`: the head as a cylinder (vertical axis for yaw, horizontal for pitch) of radius
  RADIUS_PX through the face centre, turned by the angle and seen orthographically. The nose
  (on the front of the cylinder) then moves sideways while the sides of the face compress: the
  parallax a real turned head shows, which the pose estimate reads.
* `planar`: the face as a flat card turned by the angle in front of a pinhole camera four face
  widths away (a perspective homography). A flat face has no nose parallax, only foreshortening
  and a little perspective, so it is a much weaker test (see `main`'s table).

`python -m tools.media.turn` prints the estimated-vs-applied table quoted in
sensekit/vision/pose.py.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

CENTER = (225.0, 124.0)  # face centre in the 512 x 512 photo (source pixels)
RADIUS_PX = 80.0  # cylinder radius: about the half-width of her head at the ears

BGRImage = npt.NDArray[np.uint8]


def astronaut() -> BGRImage:
    from skimage import data  # media tooling only

    return np.ascontiguousarray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


def _cylinder_axis(
    coord: npt.NDArray[np.float32], degrees: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Output coordinate (in radii) -> source coordinate, and where the surface is visible."""
    if degrees == 0.0:
        return coord, np.ones(coord.shape, dtype=bool)
    inside = np.abs(coord) < 1.0
    phi = np.arcsin(np.clip(coord, -1.0, 1.0)) - math.radians(degrees)
    visible = inside & (np.abs(phi) < math.pi / 2)
    return np.where(inside, np.sin(phi), coord).astype(np.float32), visible


def turned_cylinder(image: BGRImage, yaw: float = 0.0, pitch: float = 0.0) -> BGRImage:
    """Yaw > 0 turns the face toward the image's right, pitch > 0 tilts it down."""
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    x, _ = _cylinder_axis((xx - CENTER[0]) / RADIUS_PX, yaw)
    y, _ = _cylinder_axis((yy - CENTER[1]) / RADIUS_PX, pitch)
    map_x = (x * RADIUS_PX + CENTER[0]).astype(np.float32)
    map_y = (y * RADIUS_PX + CENTER[1]).astype(np.float32)
    return np.asarray(
        cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
        dtype=np.uint8,
    )


def turned_planar(
    image: BGRImage, yaw: float = 0.0, pitch: float = 0.0, distance_faces: float = 4.0
) -> BGRImage:
    """A flat face turned in front of a pinhole camera; same sign convention as the cylinder."""
    distance = distance_faces * 100.0  # her face box is about 100 px wide
    cx, cy = CENTER
    src = np.float32(
        [[cx - 150, cy - 100], [cx + 150, cy - 100], [cx + 150, cy + 100], [cx - 150, cy + 100]]
    )
    a, b = math.radians(-yaw), math.radians(-pitch)
    rot_y = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rot_x = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rotation = rot_y @ rot_x
    dst = []
    for x, y in src:
        p = rotation @ np.array([x - cx, y - cy, 0.0])
        z = distance + p[2]
        dst.append([cx + distance * p[0] / z, cy + distance * p[1] / z])
    matrix = cv2.getPerspectiveTransform(src, np.float32(dst))
    size = (image.shape[1], image.shape[0])
    return np.asarray(
        cv2.warpPerspective(image, matrix, size, borderMode=cv2.BORDER_REPLICATE), dtype=np.uint8
    )


def turned(
    yaw: float = 0.0, pitch: float = 0.0, kind: Literal["cylinder", "planar"] = "cylinder"
) -> BGRImage:
    """The 512 x 512 astronaut photo with her face turned by `yaw` / `pitch` degrees."""
    image = astronaut()
    if kind == "planar":
        return turned_planar(image, yaw, pitch)
    return turned_cylinder(image, yaw, pitch)


def main() -> int:
    """Print estimated vs applied angles for both detector models and both warps."""
    from sensekit.types import DetectorModel
    from sensekit.vision.detector import DetectorOptions, FaceDetector
    from sensekit.vision.pose import head_pose

    angles = (-45, -30, -15, 0, 15, 30, 45)
    for kind in ("cylinder", "planar"):
        for axis in ("yaw", "pitch"):
            print(f"{kind} {axis}: applied " + " ".join(f"{a:5d}" for a in angles))
            for model in DetectorModel:
                detector = FaceDetector(DetectorOptions(model=model, score_threshold=0.3))
                row = []
                for angle in angles:
                    image = turned(angle, 0.0, kind) if axis == "yaw" else turned(0.0, angle, kind)
                    faces = detector.detect(image)
                    if not faces:
                        row.append("    -")
                        continue
                    face = max(faces, key=lambda f: f.score)
                    pose = head_pose(face.keypoints[None], 512, 512, model)
                    value = pose.yaw[0] if axis == "yaw" else pose.pitch[0]
                    row.append(f"{value:5.0f}")
                print(f"  {model.value:>22s} " + " ".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
