"""Which detected faces get their expression classified, and why the others do not.

A face the detector finds is a person: it is tracked and counted whatever happens here. The
gate decides only whether its expression is worth reading. The classifier was trained on
near-frontal 48 px faces; a face of 20 px, a detection the detector itself doubts, or a head
turned well aside gives a reading that is mostly noise, and noise in the published breakdown is
worse than a smaller sample. Such faces are counted as people but reported as `unclassified`.

The reasons are checked in a fixed order (size, then score, then pose) so every face gets
exactly one: the keypoints of a tiny face are too coarse for a pose estimate to mean anything,
so a tiny turned face is `too_small`, not `turned`. The limits come from the config
(`cameras[].gate`), fitted per site by `sensekit calibrate faces`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from sensekit.types import DetectorModel, Face
from sensekit.vision.pose import HeadPose, head_pose


class GateReason(StrEnum):
    CLASSIFIED = "classified"
    TOO_SMALL = "too_small"
    LOW_SCORE = "low_score"
    TURNED = "turned"


REASONS: tuple[GateReason, ...] = tuple(GateReason)
"""Index order of the codes `FaceGate.decide` returns."""

DEFAULT_MAX_YAW_DEG = 60.0
DEFAULT_MAX_PITCH_DEG = 45.0


@dataclass(frozen=True, slots=True)
class FaceGate:
    """The limits a face must meet to be classified.

    `min_face_px` is the shorter side of the detector's box in frame pixels; `min_score` the
    detector's confidence (at or below the detector's own threshold it gates nothing);
    `max_yaw_deg` / `max_pitch_deg` bound the rough pose of `sensekit.vision.pose` (90 gates
    nothing). The defaults are generous on purpose: on the bundled demo video they gate at most
    one face-frame in a thousand (see README, "Face gating").
    """

    min_face_px: float = 40.0
    min_score: float = 0.0
    max_yaw_deg: float = DEFAULT_MAX_YAW_DEG
    max_pitch_deg: float = DEFAULT_MAX_PITCH_DEG
    model: DetectorModel = DetectorModel.SHORT_RANGE

    def decide(
        self,
        size_px: npt.ArrayLike,
        score: npt.ArrayLike,
        yaw: npt.ArrayLike,
        pitch: npt.ArrayLike,
    ) -> npt.NDArray[np.int8]:
        """Reason codes (indices into REASONS) for arrays of measurements, one per face.

        Vectorised so the calibration can replay a whole recording under candidate limits.
        """
        size = np.asarray(size_px, dtype=np.float64)
        codes = np.zeros(size.shape, dtype=np.int8)
        turned = (np.abs(np.asarray(yaw, dtype=np.float64)) > self.max_yaw_deg) | (
            np.abs(np.asarray(pitch, dtype=np.float64)) > self.max_pitch_deg
        )
        # Assigned from the last check to the first, so the first failing check wins.
        codes[turned] = REASONS.index(GateReason.TURNED)
        codes[np.asarray(score, dtype=np.float64) < self.min_score] = REASONS.index(
            GateReason.LOW_SCORE
        )
        codes[size < self.min_face_px] = REASONS.index(GateReason.TOO_SMALL)
        return codes

    def pose(self, faces: Sequence[Face], frame_width: int, frame_height: int) -> HeadPose:
        points = (
            np.stack([face.keypoints for face in faces])
            if faces
            else np.empty((0, 6, 2), dtype=np.float32)
        )
        return head_pose(points, frame_width, frame_height, self.model)

    def reasons(
        self, faces: Sequence[Face], frame_width: int, frame_height: int
    ) -> list[GateReason]:
        """One reason per face: `classified`, or why it is not."""
        if not faces:
            return []
        sizes = [min(f.box.width * frame_width, f.box.height * frame_height) for f in faces]
        scores = [f.score for f in faces]
        pose = self.pose(faces, frame_width, frame_height)
        return [REASONS[c] for c in self.decide(sizes, scores, pose.yaw, pose.pitch)]
