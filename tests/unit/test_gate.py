"""The face gate: one reason per face, checked in order, on synthetic faces; and in the real
vision pipeline, a small and a turned face are counted but not classified."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sensekit.config import CameraConfig, DetectorConfig
from sensekit.privacy.masks import ExclusionMask
from sensekit.tracker import Tracker
from sensekit.types import Box, DetectorModel, Face, VideoFrame
from sensekit.vision.detector import DetectorOptions, FaceDetector
from sensekit.vision.expression import ExpressionClassifier, ExpressionOptions
from sensekit.vision.gate import FaceGate, GateReason
from sensekit.vision.pipeline import VisionPipeline
from sensekit.zones import ZoneMap
from tools.media.scene import store_background
from tools.media.turn import astronaut, turned

FRONTAL_POINTS = np.array(
    [[0.35, 0.40], [0.65, 0.40], [0.50, 0.55], [0.50, 0.70], [0.20, 0.45], [0.80, 0.45]]
)


def face(x: float, y: float, side: float, score: float = 0.9, nose_dx: float = 0.0) -> Face:
    """A face box at (x, y) of `side` (normalised), keypoints laid out frontally in it; the nose
    shifted by `nose_dx` of the box width turns it."""
    points = FRONTAL_POINTS.copy()
    points[2, 0] += nose_dx
    keypoints = (np.array([x, y]) + points * side).astype(np.float32)
    return Face(Box(x, y, x + side, y + side), score, keypoints)


def test_each_face_gets_the_first_reason_that_applies() -> None:
    gate = FaceGate(min_face_px=40, min_score=0.6, max_yaw_deg=30, max_pitch_deg=30)
    faces = [
        face(0.0, 0.0, 0.2),  # 200 px in a 1000 px frame: classified
        face(0.3, 0.0, 0.03),  # 30 px: too small
        face(0.5, 0.0, 0.2, score=0.55),  # doubtful
        face(0.0, 0.5, 0.2, nose_dx=0.2),  # nose far toward the left ear: turned
        face(0.5, 0.5, 0.03, score=0.55, nose_dx=0.2),  # all three: too small wins
        face(0.3, 0.5, 0.2, score=0.55, nose_dx=0.2),  # doubtful and turned: low score wins
    ]
    assert gate.reasons(faces, 1000, 1000) == [
        GateReason.CLASSIFIED,
        GateReason.TOO_SMALL,
        GateReason.LOW_SCORE,
        GateReason.TURNED,
        GateReason.TOO_SMALL,
        GateReason.LOW_SCORE,
    ]


def test_size_is_the_shorter_side_in_frame_pixels() -> None:
    """A box 0.1 x 0.1 of a 640 x 480 frame is 64 x 48 px: 48 decides."""
    gate = FaceGate(min_face_px=50)
    assert gate.reasons([face(0.1, 0.1, 0.1)], 640, 480) == [GateReason.TOO_SMALL]
    assert gate.reasons([face(0.1, 0.1, 0.1)], 640, 520) == [GateReason.CLASSIFIED]


def test_limits_of_90_and_zero_gate_nothing() -> None:
    gate = FaceGate(min_face_px=0, min_score=0.0, max_yaw_deg=90, max_pitch_deg=90)
    faces = [face(0.1, 0.1, 0.01, score=0.01, nose_dx=0.3), face(0.5, 0.5, 0.3, nose_dx=-0.3)]
    assert gate.reasons(faces, 640, 480) == [GateReason.CLASSIFIED] * 2
    assert gate.reasons([], 640, 480) == []


def test_decide_is_vectorised_over_measurements() -> None:
    gate = FaceGate(min_face_px=40, min_score=0.5, max_yaw_deg=45, max_pitch_deg=30)
    codes = gate.decide(
        size_px=[100, 30, 100, 100, 100],
        score=[0.9, 0.9, 0.4, 0.9, 0.9],
        yaw=[10, 10, 10, -50, 10],
        pitch=[0, 0, 0, 0, 35],
    )
    assert codes.tolist() == [0, 1, 2, 3, 3]


def _head(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image[0:250, 100:350], (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def three_faces() -> np.ndarray:
    """A 640 x 480 frame: a large frontal face (~97 px), a smaller one (~54 px) below it and a
    face turned 45 degrees (cylinder warp, ~84 px) on the right."""
    frame = store_background((640, 480), seed=1).copy()
    frame[20:260, 10:250] = _head(astronaut(), 240)
    frame[20:260, 330:570] = _head(turned(yaw=45), 240)
    frame[300:440, 60:200] = _head(astronaut(), 140)
    return frame


def _pipeline(gate: FaceGate) -> VisionPipeline:
    camera = CameraConfig(name="door", detector=DetectorConfig(model=DetectorModel.FULL_RANGE))
    return VisionPipeline(
        FaceDetector(DetectorOptions(model=DetectorModel.FULL_RANGE, min_face_px=24)),
        ExpressionClassifier(ExpressionOptions()),
        Tracker(min_frames=1),
        ZoneMap.from_config(camera),
        gate,
        ExclusionMask([]),
    )


def test_small_and_turned_faces_are_counted_but_not_classified(three_faces: np.ndarray) -> None:
    pipeline = _pipeline(FaceGate(min_face_px=70, max_yaw_deg=25, model=DetectorModel.FULL_RANGE))
    result, observations = pipeline.process(VideoFrame("door", 0, 0.0, three_faces))
    assert len(result.faces) == 3 and len(observations) == 3
    by_place = {}
    for classified, observation in zip(result.faces, observations, strict=True):
        cx, cy = classified.face.box.center
        place = "turned" if cx > 0.5 else ("small" if cy > 0.5 else "frontal")
        by_place[place] = (classified.expression, observation)
    assert set(by_place) == {"frontal", "small", "turned"}
    assert by_place["frontal"][0] is not None
    assert by_place["frontal"][1].probabilities is not None
    for place in ("small", "turned"):
        expression, observation = by_place[place]
        assert expression is None and observation.probabilities is None, place
        assert observation.zone == "door" and observation.confirmed  # still a person
    assert pipeline.gate_counts == {
        GateReason.CLASSIFIED: 1,
        GateReason.TOO_SMALL: 1,
        GateReason.TURNED: 1,
    }


def test_the_default_gate_classifies_all_three(three_faces: np.ndarray) -> None:
    pipeline = _pipeline(FaceGate(model=DetectorModel.FULL_RANGE))
    result, _ = pipeline.process(VideoFrame("door", 0, 0.0, three_faces))
    assert len(result.faces) == 3
    assert all(face.expression is not None for face in result.faces)
    assert pipeline.gate_counts == {GateReason.CLASSIFIED: 3}
