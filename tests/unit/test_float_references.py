"""The float reference exports (`*_float.tflite`) that `sensekit eval` compares int8 with.

Each must be the file its int8 sidecar and its card name (checksum), take the same input as
the int8 model without the quantization step (float32, same shape, dynamic batch), give float
softmax outputs, and be the same network as the int8 model: on realistic input the two agree
up to quantization error, which a different network would not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from sensekit.audio.prosody import FEATURE_NAMES
from sensekit.audio.voice import VoiceClassifier
from sensekit.runtime import TFLiteModel, models_dir

PAIRS = {
    "fer_mini_xception_float.tflite": "fer_mini_xception_int8",
    "voice_prosody_float.tflite": "voice_prosody_int8",
}


@pytest.mark.parametrize(("float_file", "int8_name"), sorted(PAIRS.items()))
def test_the_float_export_is_the_recorded_file_with_the_int8_models_input(
    float_file: str, int8_name: str
) -> None:
    path = models_dir() / float_file
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar = json.loads((models_dir() / f"{int8_name}.json").read_text())
    evaluation = json.loads((models_dir() / f"{int8_name}_eval.json").read_text())
    assert sidecar["float_reference"]["sha256"] == digest
    assert evaluation["float_reference"]["sha256"] == digest
    assert sidecar["float_reference"]["bytes"] == path.stat().st_size
    card = Path(path.with_suffix(".md")).read_text()
    assert digest in card and f"{path.stat().st_size:,} bytes" in card
    assert "not used by the daemon" in sidecar["float_reference"]["use"]

    reference, int8 = TFLiteModel(path), TFLiteModel(models_dir() / f"{int8_name}.tflite")
    assert [s.dtype for s in int8.inputs] == [np.dtype(np.int8)]
    assert [s.dtype for s in reference.inputs] == [np.dtype(np.float32)]
    assert reference.inputs[0].dynamic_batch and int8.inputs[0].dynamic_batch
    assert reference.inputs[0].shape[1:] == int8.inputs[0].shape[1:]
    assert all(s.dtype == np.float32 and not s.quantization.is_quantized for s in reference.outputs)
    assert sorted(s.shape[-1] for s in reference.outputs) == sorted(
        s.shape[-1] for s in int8.outputs
    )


def face_like_crops() -> np.ndarray:
    """64x64 grey crops around the astronaut's face, shifted and scaled a little."""
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    crops = []
    for dx in (-8, 0, 8):
        for dy in (-8, 0, 8):
            for half in (50, 60):
                cx, cy = 205 + dx, 105 + dy
                crop = grey[cy - half : cy + half, cx - half : cx + half]
                crops.append(cv2.resize(crop, (64, 64), interpolation=cv2.INTER_LINEAR))
    return np.stack(crops)


def test_the_expression_float_export_matches_the_int8_model_up_to_quantization() -> None:
    crops = face_like_crops()
    reference = TFLiteModel(models_dir() / "fer_mini_xception_float.tflite")
    int8 = TFLiteModel(models_dir() / "fer_mini_xception_int8.tflite")
    reference.set_batch_size(len(crops))
    int8.set_batch_size(len(crops))
    (p_float,) = reference.run([(crops.astype(np.float32) / 127.5 - 1.0)[..., None]])
    q_in, q_out = int8.inputs[0].quantization, int8.outputs[0].quantization
    x = np.arange(256) / 127.5 - 1.0
    lut = np.clip(
        np.sign(x / q_in.scale) * np.floor(np.abs(x / q_in.scale) + 0.5) + q_in.zero_point,
        -128,
        127,
    )
    (raw,) = int8.run([lut.astype(np.int8)[crops][..., None]])
    p_int8 = q_out.scale * (raw.astype(np.float64) - q_out.zero_point)
    np.testing.assert_allclose(p_float.sum(axis=1), 1.0, atol=1e-4)
    assert np.abs(p_float - p_int8).max() < 0.1
    assert np.mean(p_float.argmax(1) == p_int8.argmax(1)) >= 0.9


def test_the_voice_float_export_matches_the_int8_model_up_to_quantization() -> None:
    """The same standardised z-scores go into both: float32 as they are, int8 quantized by
    VoiceClassifier."""
    z = np.random.default_rng(3).normal(size=(256, len(FEATURE_NAMES))).astype(np.float32)
    reference = TFLiteModel(models_dir() / "voice_prosody_float.tflite")
    reference.set_batch_size(len(z))
    outputs = {o.shape[-1]: o for o in reference.run([z])}
    # Raw probabilities: the fitted temperature is not part of the network being compared.
    arousal, emotion = VoiceClassifier(temperature=1.0).probabilities(z)
    for float_probs, int8_probs in ((outputs[3], arousal), (outputs[7], emotion)):
        np.testing.assert_allclose(float_probs.sum(axis=1), 1.0, atol=1e-4)
        assert np.abs(float_probs - int8_probs).max() < 0.15
        assert np.mean(float_probs.argmax(1) == int8_probs.argmax(1)) >= 0.95


def test_selftest_holds_the_float_exports_to_float_rounding() -> None:
    """An int8 model's probabilities may miss 1 by a few 1/256 steps; a float export's may not."""
    from sensekit.selftest import _output_problem, _sum_tolerance

    reference = TFLiteModel(models_dir() / "fer_mini_xception_float.tflite")
    int8 = TFLiteModel(models_dir() / "fer_mini_xception_int8.tflite")
    off_by_a_step = [np.full((1, 7), 1.0 / 7) + np.array([[1.0 / 256, 0, 0, 0, 0, 0, 0]])]
    assert _output_problem(off_by_a_step, _sum_tolerance(int8)) is None
    assert "sum to" in str(_output_problem(off_by_a_step, _sum_tolerance(reference)))
