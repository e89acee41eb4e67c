"""A rough head pose (yaw, pitch, roll in degrees) from BlazeFace's six keypoints, vectorised.

Why: a face turned far from the camera is still a person (it is counted) but its expression is
read badly by a classifier trained on near-frontal faces, so the face gate needs to know how
turned a face is. A landmark model or a PnP fit would cost a model call or a solver per face;
the detector's keypoints (eyes, nose tip, mouth centre, ear tragions) already carry the cue, at
the cost of a few array operations for all faces of a frame.

Method (all in pixels, because the keypoints are normalised separately in x and y):

* roll: the angle of the eye line (subject's right eye -> left eye). Every point is then turned
  by -roll about the midpoint of the eyes, so yaw and pitch are read in the face's own frame.
* yaw: where the nose tip sits between the ear tragions and between the eyes, each as
  t = 2 * (nose - right) / (left - right) - 1 (0 = centred, +-1 = on the outer point), averaged.
  Head model: the nose tip stands in front of the eyes and ears, so turning the head by yaw
  moves it sideways by depth * sin(yaw) while the outer points stay on either side:
  t = K_YAW * sin(yaw), yaw = asin(t / K_YAW). K_YAW = 0.55 is not anatomy: it is what the
  detectors' keypoints actually do on a head turned by a known angle (they move far less than
  a real nose tip would, the keypoints are pulled toward a frontal prior).
* pitch: where the nose tip sits between the eye line and the mouth, s = nose / mouth along the
  face's own vertical. s0 (frontal) differs between the two BlazeFace models (0.48 short range,
  0.64 full range, measured on the frontal astronaut face); pitch = asin((s - s0) / K_PITCH),
  K_PITCH = 0.30.

Signs: yaw > 0 when the face turns toward the image's right (the subject's left), pitch > 0
when it tilts down (nose toward the mouth), roll > 0 when the eye line runs clockwise on screen
(the subject's left eye lower).

How rough: the constants come from one face (skimage's astronaut) turned synthetically (a
cylinder-shaped head turned by a known angle; `python -m tools.media.turn` prints the table).
Estimated vs applied yaw (full range model, degrees):

    applied  -45  -30  -15    0   15   30   45
    full     -31  -26  -13   -4   14   34   45
    short    -39  -35  -21   -9   -6    3   10

The estimate rises monotonically with the turn for both models, but the short-range model's
keypoints barely move for turns toward the image's right, and any one face carries its own
offset (the astronaut looks slightly aside: -4 to -9 degrees "frontal"). Pitch is rougher still
(+-10 degrees of cross-talk from yaw; the full-range nose barely moves when the head tilts
down). Use the angles to gate the clearly turned faces with generous limits calibrated on the
site's own recording (`sensekit calibrate faces`), never as a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensekit.types import DetectorModel

RIGHT_EYE, LEFT_EYE, NOSE, MOUTH, RIGHT_EAR, LEFT_EAR = range(6)

K_YAW = 0.55
K_PITCH = 0.30
FRONTAL_NOSE_RATIO = {DetectorModel.SHORT_RANGE: 0.48, DetectorModel.FULL_RANGE: 0.64}

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class HeadPose:
    """Per-face angles in degrees (arrays of the same length as the faces)."""

    yaw: FloatArray
    pitch: FloatArray
    roll: FloatArray

    def __len__(self) -> int:
        return len(self.yaw)


def _centred_ratio(
    value: npt.NDArray[np.float64], lo: npt.NDArray[np.float64], hi: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """2 * (value - lo) / (hi - lo) - 1, and 0 where the span has collapsed (degenerate points)."""
    span = hi - lo
    safe = np.where(np.abs(span) > 1e-6, span, 1.0)
    return np.where(np.abs(span) > 1e-6, 2.0 * (value - lo) / safe - 1.0, 0.0)


def head_pose(
    keypoints: npt.NDArray[np.floating],
    frame_width: int,
    frame_height: int,
    model: DetectorModel = DetectorModel.SHORT_RANGE,
) -> HeadPose:
    """Yaw, pitch and roll of N faces from their N x 6 x 2 normalised keypoints."""
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, 6, 2) * (frame_width, frame_height)
    if len(points) == 0:
        empty = np.empty(0, dtype=np.float32)
        return HeadPose(empty, empty, empty)
    centre = (points[:, LEFT_EYE] + points[:, RIGHT_EYE]) / 2.0
    axis = points[:, MOUTH] - centre
    # Roll from the face's vertical axis (eye midpoint -> mouth centre): both ends lie on the
    # face's midline, so the axis stays upright when the head turns, whereas the detectors tilt
    # the eye line by up to 15 degrees on a face turned 45 degrees that is not rolled at all.
    roll = np.arctan2(-axis[:, 0], axis[:, 1])
    cos, sin = np.cos(roll)[:, None], np.sin(roll)[:, None]
    rel = points - centre[:, None, :]
    # Turn by -roll: the face's vertical axis becomes the image's y.
    x = rel[..., 0] * cos + rel[..., 1] * sin
    y = -rel[..., 0] * sin + rel[..., 1] * cos
    t_ears = _centred_ratio(x[:, NOSE], x[:, RIGHT_EAR], x[:, LEFT_EAR])
    t_eyes = _centred_ratio(x[:, NOSE], x[:, RIGHT_EYE], x[:, LEFT_EYE])
    t = np.clip((t_ears + t_eyes) / 2.0 / K_YAW, -1.0, 1.0)
    mouth = y[:, MOUTH]
    s = np.where(np.abs(mouth) > 1e-6, y[:, NOSE] / np.where(np.abs(mouth) > 1e-6, mouth, 1.0), 0.0)
    p = np.clip((s - FRONTAL_NOSE_RATIO[model]) / K_PITCH, -1.0, 1.0)
    return HeadPose(
        yaw=np.degrees(np.arcsin(t)).astype(np.float32),
        pitch=np.degrees(np.arcsin(p)).astype(np.float32),
        roll=np.degrees(roll).astype(np.float32),
    )
