"""Temperature scaling and the ECE, and the runtime classifiers applying a fitted temperature."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from sensekit.audio.voice import VoiceClassifier
from sensekit.calibration.evaluate.sidecar import save_temperature
from sensekit.confidence import (
    FittedTemperature,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
    sidecar_temperature,
)
from sensekit.errors import ModelError
from sensekit.runtime import models_dir
from sensekit.vision.detector import DetectorOptions, FaceDetector
from sensekit.vision.expression import MODEL_FILE, ExpressionClassifier, ExpressionOptions


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def overconfident(n: int, true_t: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z) (calibrated by construction), probabilities softmax(z * t).

    A model reporting softmax(z * t) is overconfident by exactly the temperature t.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, 5))
    calibrated = softmax(z)
    labels = np.array([rng.choice(5, p=p) for p in calibrated])
    return softmax(z * true_t), labels


def test_temperature_lowers_ece_and_nll_of_an_overconfident_model() -> None:
    probs, labels = overconfident(4000, true_t=2.5)
    t = fit_temperature(probs, labels)
    after = apply_temperature(probs, t)
    before_ece = expected_calibration_error(probs, labels)
    after_ece = expected_calibration_error(after, labels)
    assert before_ece > 0.1
    assert after_ece < before_ece / 3
    assert negative_log_likelihood(after, labels) < negative_log_likelihood(probs, labels) - 0.05
    # The ranking of classes, hence accuracy, is untouched.
    np.testing.assert_array_equal(after.argmax(axis=1), probs.argmax(axis=1))


def test_the_fitted_temperature_recovers_the_known_one() -> None:
    for true_t in (0.6, 2.5):
        probs, labels = overconfident(6000, true_t=true_t, seed=1)
        assert fit_temperature(probs, labels) == pytest.approx(true_t, rel=0.1)


def test_temperature_one_is_an_exact_no_op() -> None:
    probs = softmax(np.random.default_rng(2).normal(size=(50, 7))).astype(np.float32)
    np.testing.assert_array_equal(apply_temperature(probs, 1.0), probs)


def test_on_a_softmax_it_equals_dividing_the_logits_and_zero_stays_zero() -> None:
    z = np.random.default_rng(3).normal(0.0, 3.0, size=(20, 7))
    np.testing.assert_allclose(apply_temperature(softmax(z), 1.7), softmax(z / 1.7), atol=1e-6)
    with_zero = np.array([[0.0, 0.2, 0.8], [0.0, 0.0, 1.0]], np.float32)
    softened = apply_temperature(with_zero, 4.0)
    assert softened[0, 0] == 0.0 and softened[1, 0] == 0.0 and softened[1, 2] == 1.0
    np.testing.assert_allclose(softened.sum(axis=1), 1.0, atol=1e-6)
    assert softened[0, 1] > 0.2  # softer: the runner-up gains
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(with_zero, 0.0)


def test_ece_of_a_hand_computed_example() -> None:
    # Four predictions at confidence 0.9 (three right) and two at 0.6 (one right):
    # ECE = 4/6 * |0.75 - 0.9| + 2/6 * |0.5 - 0.6| = 0.1 + 0.0333.
    probs = np.array([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2)
    labels = np.array([0, 0, 0, 1, 1, 0])
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.4 / 3)
    bins = reliability_bins(probs, labels, bins=10)
    assert bins.counts.sum() == 6 and bins.counts[8] == 4 and bins.counts[5] == 2
    assert bins.accuracy[8] == pytest.approx(0.75) and np.isnan(bins.accuracy[0])


def test_a_sidecar_temperature_counts_only_for_the_model_it_was_fitted_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = FittedTemperature(1.8, "a" * 64, "test", 0.1, 0.02).to_json()
    assert sidecar_temperature(entry, "a" * 64, "x.json") == 1.8
    assert sidecar_temperature(None, "a" * 64, "x.json") == 1.0
    with caplog.at_level(logging.WARNING):
        assert sidecar_temperature(entry, "b" * 64, "x.json") == 1.0
    assert "fitted for model aaaaaaaaaaaa" in caplog.text and "x.json" in caplog.text
    with pytest.raises(ValueError, match=r"x\.json"):
        sidecar_temperature({"value": 2.0}, "a" * 64, "x.json")
    with pytest.raises(ValueError, match="positive"):
        sidecar_temperature({"value": -1, "model_sha256": "a" * 64}, "a" * 64, "x.json")


@pytest.fixture(scope="module")
def astronaut_crop() -> np.ndarray:
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    faces = FaceDetector(DetectorOptions()).detect(image)
    return ExpressionClassifier(ExpressionOptions(temperature=1.0)).crops(image, faces)


def test_the_expression_classifier_applies_an_override_temperature(
    astronaut_crop: np.ndarray,
) -> None:
    plain = ExpressionClassifier(ExpressionOptions(temperature=1.0)).classify_batch(astronaut_crop)
    softer = ExpressionClassifier(ExpressionOptions(temperature=2.0)).classify_batch(astronaut_crop)
    np.testing.assert_allclose(softer, apply_temperature(plain, 2.0), atol=1e-6)
    assert softer.max() < plain.max() and softer.argmax() == plain.argmax()
    with pytest.raises(ModelError, match="positive"):
        ExpressionClassifier(ExpressionOptions(temperature=0.0))


def copy_face_model(target: Path) -> Path:
    source = models_dir() / MODEL_FILE
    shutil.copy(source, target / MODEL_FILE)
    shutil.copy(source.with_suffix(".json"), target / source.with_suffix(".json").name)
    return target / MODEL_FILE


def test_the_expression_classifier_reads_the_temperature_saved_in_its_sidecar(
    tmp_path: Path, astronaut_crop: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    model = copy_face_model(tmp_path)
    sidecar = model.with_suffix(".json")
    original = {k: v for k, v in json.loads(sidecar.read_text()).items() if k != "temperature"}
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    save_temperature(sidecar, FittedTemperature(1.5, sha, "test", 0.1, 0.05).to_json())
    saved = json.loads(sidecar.read_text())
    assert {k: v for k, v in saved.items() if k != "temperature"} == original
    assert sidecar.read_text().startswith('{\n  "')  # the file keeps its 2-space indent

    classifier = ExpressionClassifier(ExpressionOptions(model_path=model))
    assert classifier.temperature == 1.5
    plain = ExpressionClassifier(ExpressionOptions(model_path=model, temperature=1.0))
    np.testing.assert_allclose(
        classifier.classify_batch(astronaut_crop),
        apply_temperature(plain.classify_batch(astronaut_crop), 1.5),
        atol=1e-6,
    )
    # A rebuilt model (another checksum) must not inherit the old temperature.
    save_temperature(sidecar, FittedTemperature(1.5, "0" * 64, "test", 0.1, 0.05).to_json())
    with caplog.at_level(logging.WARNING):
        assert ExpressionClassifier(ExpressionOptions(model_path=model)).temperature == 1.0
    assert "not this model file" in caplog.text


def test_the_voice_classifier_applies_per_head_temperatures(tmp_path: Path) -> None:
    source = models_dir() / "voice_prosody_int8.tflite"
    model = tmp_path / source.name
    shutil.copy(source, model)
    shutil.copy(source.with_suffix(".json"), model.with_suffix(".json"))
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    save_temperature(
        model.with_suffix(".json"),
        {
            "arousal": FittedTemperature(2.0, sha, "test", 0.1, 0.05).to_json(),
            "emotion": FittedTemperature(0.5, sha, "test", 0.1, 0.05).to_json(),
        },
    )
    x = np.random.default_rng(4).normal(size=(6, len(VoiceClassifier(model).feature_names)))
    x = x.astype(np.float32)
    raw_a, raw_e = VoiceClassifier(model, temperature=1.0).probabilities(x)
    cal = VoiceClassifier(model)
    assert cal.temperature == {"arousal": 2.0, "emotion": 0.5}
    a, e = cal.probabilities(x)
    np.testing.assert_allclose(a, apply_temperature(raw_a, 2.0), atol=1e-6)
    np.testing.assert_allclose(e, apply_temperature(raw_e, 0.5), atol=1e-6)
    override = VoiceClassifier(model, temperature={"arousal": 1.0, "emotion": 3.0})
    np.testing.assert_allclose(override.probabilities(x)[0], raw_a, atol=1e-7)
