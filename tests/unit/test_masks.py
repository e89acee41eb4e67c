"""Exclusion masks: a face inside a mask is never detected, on real frames of the demo video
through the real detector; the frame itself is not written."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sensekit.config import CameraConfig, DetectorConfig, MaskConfig, ZoneConfig
from sensekit.privacy.masks import ExclusionMask
from sensekit.tracker import Tracker
from sensekit.types import DetectorModel, VideoFrame
from sensekit.vision.detector import DetectorOptions, FaceDetector
from sensekit.vision.expression import ExpressionClassifier, ExpressionOptions
from sensekit.vision.gate import FaceGate
from sensekit.vision.pipeline import VisionPipeline
from sensekit.zones import ZoneMap
from tests.conftest import DEMO_VIDEO

LEFT = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
RIGHT = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]


def demo_frames(step: int = 1) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(DEMO_VIDEO))
    frames = []
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(image)
        index += 1
    capture.release()
    assert frames, "the demo video decodes"
    return frames


def pipeline(masks: list[MaskConfig]) -> VisionPipeline:
    camera = CameraConfig(
        name="door",
        detector=DetectorConfig(model=DetectorModel.FULL_RANGE),
        zones=[ZoneConfig(name="outside", polygon=LEFT), ZoneConfig(name="inside", polygon=RIGHT)],
        masks=masks,
    )
    return VisionPipeline(
        FaceDetector(DetectorOptions(model=DetectorModel.FULL_RANGE, min_face_px=24)),
        ExpressionClassifier(ExpressionOptions()),
        Tracker(),
        ZoneMap.from_config(camera),
        FaceGate(min_face_px=40, model=DetectorModel.FULL_RANGE),
        ExclusionMask.from_config(camera),
    )


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return demo_frames()


def test_a_face_inside_a_mask_is_never_detected_in_the_whole_video(
    frames: list[np.ndarray],
) -> None:
    """The left half (the "outside" zone) masked: over all 600 frames no face is counted
    there (a face crossing the edge is dropped when its centre is in the mask), while the
    unmasked half still sees people."""
    masked = pipeline([MaskConfig(name="street", polygon=LEFT)])
    open_view = pipeline([])
    seen = {"masked": set(), "open": set()}
    for index, image in enumerate(frames):
        frame = VideoFrame("door", index, 1000.0 + index / 10, image)
        result, observations = masked.process(frame)
        for face in result.faces:
            assert face.face.box.center[0] >= 0.5, (index, face.face.box)
        seen["masked"] |= {o.zone for o in observations}
        seen["open"] |= {o.zone for o in open_view.process(frame)[1]}
    assert "outside" not in seen["masked"] and "inside" in seen["masked"]
    assert {"outside", "inside"} <= seen["open"]  # the video does have faces on both sides


def test_masking_one_face_leaves_the_others(frames: list[np.ndarray]) -> None:
    detector = FaceDetector(DetectorOptions(model=DetectorModel.FULL_RANGE, min_face_px=24))
    image = next(f for f in frames if len(detector.detect(f)) >= 2)
    faces = detector.detect(image)
    target = faces[0].box
    margin = 0.02
    polygon = [
        (max(0.0, target.xmin - margin), max(0.0, target.ymin - margin)),
        (min(1.0, target.xmax + margin), max(0.0, target.ymin - margin)),
        (min(1.0, target.xmax + margin), min(1.0, target.ymax + margin)),
        (max(0.0, target.xmin - margin), min(1.0, target.ymax + margin)),
    ]
    mask = ExclusionMask([np.array(polygon)])
    original = image.copy()
    remaining = detector.detect(mask.apply(image))
    assert len(remaining) == len(faces) - 1
    for face in remaining:
        cx, cy = face.box.center
        assert not (target.xmin <= cx <= target.xmax and target.ymin <= cy <= target.ymax)
    assert np.array_equal(image, original)  # the frame was not written into


def test_masked_pixels_are_black_and_the_rest_untouched() -> None:
    image = np.full((100, 200, 3), 200, dtype=np.uint8)
    mask = ExclusionMask([np.array([(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)])])
    out = mask.apply(image)
    assert out[:, :99].max() == 0
    assert out[:, 101:].min() == 200
    assert image.min() == 200


def test_no_mask_costs_nothing() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    assert ExclusionMask([]).apply(image) is image
