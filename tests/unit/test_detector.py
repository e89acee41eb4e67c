"""BlazeFace anchors, decoding, NMS and the real models on images with known faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from sensekit.errors import ModelError
from sensekit.types import DetectorModel
from sensekit.vision.anchors import FULL_RANGE, SHORT_RANGE, generate_anchors
from sensekit.vision.detector import (
    DetectorOptions,
    FaceDetector,
    decode,
    iou_matrix,
    letterbox_into,
    weighted_nms,
)

# Eileen Collins' eyes in skimage's astronaut (512 x 512), measured by hand on the image.
ASTRONAUT_EYES_PX = np.array([[205.0, 102.0], [248.0, 106.0]])


def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def test_anchor_layouts_match_the_models_outputs() -> None:
    short = generate_anchors(SHORT_RANGE)
    full = generate_anchors(FULL_RANGE)
    assert short.shape == (896, 2)
    assert full.shape == (2304, 2)
    # First stride-8 cell, twice (two anchors per cell), then the next cell to the right.
    np.testing.assert_allclose(short[:3], [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]])
    # The stride-16 block starts after 16 x 16 x 2 anchors, with 6 anchors per cell.
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(full[-1], [47.5 / 48, 47.5 / 48])


def test_decode_places_a_box_on_its_anchor() -> None:
    anchors = generate_anchors(SHORT_RANGE)
    raw_boxes = np.zeros((896, 16), np.float32)
    raw_scores = np.full((896, 1), -10.0, np.float32)
    raw_scores[600] = 5.0
    raw_boxes[600, :4] = [12.8, -6.4, 32.0, 25.6]  # dx, dy, w, h in input pixels (128)
    raw_boxes[600, 4:6] = [-6.4, 0.0]  # first keypoint 0.05 left of the anchor
    boxes, scores, points = decode(raw_boxes, raw_scores, anchors, 128, 0.5)
    assert boxes.shape == (1, 4) and points.shape == (1, 6, 2)
    cx, cy = anchors[600] + [0.1, -0.05]
    np.testing.assert_allclose(boxes[0], [cx - 0.125, cy - 0.1, cx + 0.125, cy + 0.1], atol=1e-6)
    np.testing.assert_allclose(scores[0], 1 / (1 + np.exp(-5.0)), rtol=1e-6)
    np.testing.assert_allclose(points[0, 0], anchors[600] + [-0.05, 0.0], atol=1e-6)


def test_decode_drops_scores_below_threshold_and_survives_extreme_logits() -> None:
    anchors = generate_anchors(SHORT_RANGE)
    raw_scores = np.full((896, 1), -1e6, np.float32)
    raw_scores[3] = 1e6
    boxes, scores, _ = decode(np.zeros((896, 16), np.float32), raw_scores, anchors, 128, 0.5)
    assert len(boxes) == 1 and scores[0] == pytest.approx(1.0)


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces() -> None:
    boxes = np.array(
        [[0.10, 0.10, 0.30, 0.30], [0.12, 0.10, 0.32, 0.30], [0.60, 0.60, 0.80, 0.80]], np.float32
    )
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    points = np.zeros((3, 6, 2), np.float32)
    out_boxes, out_scores, _ = weighted_nms(boxes, scores, points, 0.3)
    assert len(out_boxes) == 2
    np.testing.assert_allclose(out_scores, [0.9, 0.7])
    # The merged box is the score-weighted mean of the two overlapping ones.
    np.testing.assert_allclose(out_boxes[0, 0], (0.10 * 0.9 + 0.12 * 0.6) / 1.5, atol=1e-6)
    np.testing.assert_allclose(out_boxes[1], boxes[2])


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 2, 2]], np.float32)
    b = np.array([[1, 1, 3, 3], [5, 5, 6, 6], [0, 0, 2, 2]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1 / 7, 0.0, 1.0]], atol=1e-6)


@pytest.mark.parametrize("model", list(DetectorModel))
def test_real_model_finds_the_astronauts_face_and_eyes(model: DetectorModel) -> None:
    detector = FaceDetector(DetectorOptions(model=model))
    faces = detector.detect(astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    eyes_px = face.keypoints[:2] * 512
    np.testing.assert_allclose(eyes_px, ASTRONAUT_EYES_PX, atol=8)
    box = np.array([face.box.xmin, face.box.ymin, face.box.xmax, face.box.ymax]) * 512
    assert box[0] < 200 < 250 < box[2] and box[1] < 100 < 140 < box[3]


def test_letterbox_maps_back_to_frame_coordinates() -> None:
    """The face pasted off-centre in a wide frame comes back where it was put."""
    frame = np.full((400, 800, 3), 80, np.uint8)
    head = astronaut()[30:230, 130:330]  # 200 x 200 around the face
    frame[50:350, 450:750] = cv2.resize(head, (300, 300))
    faces = FaceDetector(DetectorOptions()).detect(frame)
    assert len(faces) == 1
    eyes = faces[0].keypoints[:2] * [800, 400]
    expected = (ASTRONAUT_EYES_PX - [130, 30]) * 1.5 + [450, 50]
    np.testing.assert_allclose(eyes, expected, atol=8)


def test_letterbox_fills_padding_with_black_and_scales_to_unit_range() -> None:
    image = np.full((100, 200, 3), 255, np.uint8)
    out = np.empty((128, 128, 3), np.float32)
    box = letterbox_into(image, 128, out)
    assert (box.scale_x, box.scale_y) == (1.0, 0.5)
    assert out[0, 0, 0] == -1.0 and out[64, 64, 0] == pytest.approx(1.0)


def test_min_face_px_filters_small_faces() -> None:
    image = astronaut()
    assert FaceDetector(DetectorOptions(min_face_px=60)).detect(image)
    assert not FaceDetector(DetectorOptions(min_face_px=200)).detect(image)


def test_missing_and_corrupt_model_files_raise_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found"):
        FaceDetector(DetectorOptions(model_path=tmp_path / "nope.tflite"))
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelError, match="corrupt"):
        FaceDetector(DetectorOptions(model_path=corrupt))


def test_the_wrong_model_for_the_variant_is_refused() -> None:
    from sensekit.runtime import models_dir

    with pytest.raises(ModelError, match="full_range"):
        FaceDetector(
            DetectorOptions(
                model=DetectorModel.FULL_RANGE,
                model_path=models_dir() / "face_detection_short_range.tflite",
            )
        )
