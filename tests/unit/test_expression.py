"""The int8 expression model: input quantization, aligned crops, one call for all faces."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from skimage import data

from sensekit.errors import ModelError
from sensekit.runtime import TFLiteModel, models_dir
from sensekit.types import EXPRESSION_LABELS
from sensekit.vision.detector import DetectorOptions, FaceDetector
from sensekit.vision.expression import (
    MODEL_FILE,
    ExpressionClassifier,
    ExpressionOptions,
    int8_lookup,
)


@pytest.fixture(scope="module")
def classifier() -> ExpressionClassifier:
    return ExpressionClassifier()


def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def test_the_bundled_model_is_fully_int8_with_a_dynamic_batch() -> None:
    model = TFLiteModel(models_dir() / MODEL_FILE)
    spec = model.inputs[0]
    assert spec.dtype == np.int8 and spec.dynamic_batch and spec.shape[1:] == (64, 64, 1)
    assert model.outputs[0].dtype == np.int8 and model.outputs[0].shape[-1] == 7


def test_int8_lookup_quantizes_and_dequantizes_within_half_a_step() -> None:
    scale, zero_point = 2.0 / 255.0, -1
    lookup = int8_lookup(scale, zero_point)
    grey = np.arange(256)
    real = grey / 127.5 - 1.0
    np.testing.assert_array_equal(lookup, np.clip(np.round(real / scale) + zero_point, -128, 127))
    dequantized = (lookup.astype(np.float64) - zero_point) * scale
    assert np.max(np.abs(dequantized - real)) <= scale / 2 + 1e-9
    assert lookup.dtype == np.int8 and lookup[0] == -128 and lookup[255] == 127


def test_crop_levels_the_eyes_of_a_tilted_face(classifier: ExpressionClassifier) -> None:
    """A face rolled by 20 degrees gives nearly the same crop as the upright one."""
    image = astronaut()
    detector = FaceDetector(DetectorOptions())
    upright = detector.detect(image)
    rotation = cv2.getRotationMatrix2D((256, 256), 20, 1.0)
    tilted_image = cv2.warpAffine(image, rotation, (512, 512))
    tilted = detector.detect(tilted_image)
    grey_a = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    grey_b = cv2.cvtColor(tilted_image, cv2.COLOR_BGR2GRAY)
    crop_a = classifier.crops(grey_a, upright)[0, :, :, 0].astype(np.float32)
    crop_b = classifier.crops(grey_b, tilted)[0, :, :, 0].astype(np.float32)
    # The same crop of the tilted face, but without levelling: eyes reported as horizontal.
    level_points = tilted[0].keypoints.copy()
    level_points[1, 1] = level_points[0, 1]
    not_levelled = replace(tilted[0], keypoints=level_points)
    unaligned = classifier.crops(grey_b, [not_levelled])[0, :, :, 0].astype(np.float32)
    corr_aligned = np.corrcoef(crop_a.ravel(), crop_b.ravel())[0, 1]
    corr_unaligned = np.corrcoef(crop_a.ravel(), unaligned.ravel())[0, 1]
    assert corr_aligned > 0.8
    assert corr_aligned > corr_unaligned + 0.1, (corr_aligned, corr_unaligned)


def test_all_faces_of_a_frame_in_one_call_match_single_calls(classifier) -> None:
    image = astronaut()
    faces = FaceDetector(DetectorOptions()).detect(image)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    one = classifier.crops(grey, faces)
    # Three different crops: the face, mirrored, and darker.
    batch = np.concatenate([one, one[:, :, ::-1], (one // 2).astype(np.int8)])
    together = classifier.classify_batch(batch)
    alone = np.concatenate([classifier.classify_batch(batch[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-5)


def test_the_smiling_astronaut_is_happy(classifier: ExpressionClassifier) -> None:
    image = astronaut()
    faces = FaceDetector(DetectorOptions()).detect(image)
    (scores,) = classifier.classify(image, faces)
    assert scores.label == "happy"
    assert scores.probabilities[EXPRESSION_LABELS.index("happy")] > 0.8


def test_empty_batch_costs_no_call(classifier: ExpressionClassifier) -> None:
    assert classifier.classify_batch(np.empty((0, 64, 64, 1), np.int8)).shape == (0, 7)
    assert classifier.classify(astronaut(), []) == []


def test_a_float_model_is_refused_as_expression_model() -> None:
    with pytest.raises(ModelError, match=r"int8|N x S x S x 1"):
        ExpressionClassifier(
            ExpressionOptions(model_path=models_dir() / "face_detection_short_range.tflite")
        )
