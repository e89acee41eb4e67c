"""The expression model on the FER2013 test split: accuracy, calibration, float vs int8.

Protocol (fixed, so two runs agree): the test split (the train split trained the model) is cut
class by class with seed 2026 into a calibration half, on which the temperature is fitted, and
an evaluation half, on which everything else is reported. Each 48 x 48 face is resized to the
model's 64 x 64 with cv2.INTER_LINEAR on uint8 and mapped to int8 by the runtime's lookup table,
exactly as tools/models/build_expression_model.py did when it measured the card's numbers, and
the int8 model is run by ExpressionClassifier.classify_batch, the daemon's own code path.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from sensekit.calibration.evaluate import metrics
from sensekit.calibration.evaluate.data import (
    SEED,
    load_fer_test,
    stratified_halves,
    stratified_subset,
)
from sensekit.confidence import FittedTemperature, apply_temperature, fit_temperature
from sensekit.errors import ModelError
from sensekit.runtime import TFLiteModel
from sensekit.types import EXPRESSION_LABELS
from sensekit.vision.expression import (
    MODEL_FILE,
    ExpressionClassifier,
    ExpressionOptions,
    int8_lookup,
)

FLOAT_MODEL_FILE = "fer_mini_xception_float.tflite"
BATCH = 256

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FaceEvaluation:
    """The JSON-ready result and the probabilities the plots need."""

    result: dict[str, Any]
    labels_eval: npt.NDArray[np.int64]
    probs_eval_before: FloatArray
    probs_eval_after: FloatArray
    temperature: FittedTemperature


def resize_to(images: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.uint8]:
    """48 x 48 grey faces to size x size with INTER_LINEAR on uint8 (as the build did)."""
    if images.shape[1:] == (size, size):
        return images
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    return out


def batched(
    run: Callable[[npt.NDArray[Any]], FloatArray], x: npt.NDArray[Any], desc: str, batch: int
) -> FloatArray:
    """Run `run` over `x` in chunks with a progress bar; concatenate the rows."""
    rows = [
        run(x[start : start + batch])
        for start in tqdm(
            range(0, len(x), batch), desc=desc, unit="batch", file=sys.stderr, disable=None
        )
    ]
    return np.concatenate(rows) if rows else np.empty((0, len(EXPRESSION_LABELS)), np.float32)


def int8_probabilities(model_path: Path, grey: npt.NDArray[np.uint8]) -> tuple[FloatArray, str]:
    """The runtime's probabilities at T = 1 (uncalibrated) and the model file's SHA-256."""
    classifier = ExpressionClassifier(ExpressionOptions(model_path=model_path, temperature=1.0))
    quant = classifier.model.inputs[0].quantization
    lookup = int8_lookup(quant.scale, quant.zero_point)
    x = lookup[resize_to(grey, classifier.size)][..., None]
    probs = batched(classifier.classify_batch, x, "face int8", BATCH)
    return probs, hashlib.sha256(classifier.model_path.read_bytes()).hexdigest()


def float_probabilities(model_path: Path, grey: npt.NDArray[np.uint8]) -> FloatArray:
    """The float export's softmax on the same faces, input scaled to [-1, 1] like `fer`'s."""
    model = TFLiteModel(model_path)
    spec = model.inputs[0]
    if spec.dtype != np.float32 or len(spec.shape) != 4:
        raise ModelError(f"{model_path}: expected a float32 N x S x S x 1 input, got {spec}")
    size = spec.shape[1]
    x = (resize_to(grey, size).astype(np.float32) / 127.5 - 1.0)[..., None]
    batch = BATCH if spec.dynamic_batch else spec.shape[0]

    def run(chunk: npt.NDArray[np.float32]) -> FloatArray:
        if spec.dynamic_batch:
            model.set_batch_size(len(chunk))
        if len(chunk) != model.batch_size:  # a fixed-batch model: pad the last chunk
            padded = np.zeros((model.batch_size, *chunk.shape[1:]), np.float32)
            padded[: len(chunk)] = chunk
            return np.asarray(model.run([padded])[0][: len(chunk)], np.float32)
        return np.asarray(model.run([chunk])[0], np.float32)

    return batched(run, x, "face float", batch)


def evaluate_face(fer_path: Path, models: Path, limit: int | None, bins: int) -> FaceEvaluation:
    """Score the int8 model (and its float export if present) on the FER2013 test split."""
    test = load_fer_test(fer_path)
    keep = stratified_subset(test.labels, limit)
    grey, labels = test.images[keep], test.labels[keep]
    calib, evaluation = stratified_halves(labels)
    model_path = models / MODEL_FILE
    probs, sha256 = int8_probabilities(model_path, grey)

    temperature = fit_temperature(probs[calib], labels[calib])
    after = apply_temperature(probs, temperature)
    halves = {"calibration_half": calib, "evaluation_half": evaluation}
    calibration = {
        name: {
            "before": metrics.calibration(labels[idx], probs[idx]),
            "after": metrics.calibration(labels[idx], after[idx]),
        }
        for name, idx in halves.items()
    }
    fitted = FittedTemperature(
        value=temperature,
        model_sha256=sha256,
        fitted_on=(
            f"FER2013 test split, calibration half ({len(calib)} of {len(labels)} faces, "
            f"class-stratified, seed {SEED}); ECE on the other half, {bins} bins"
        ),
        ece_before=calibration["evaluation_half"]["before"]["ece"],
        ece_after=calibration["evaluation_half"]["after"]["ece"],
    )

    float_path = models / FLOAT_MODEL_FILE
    float_result: dict[str, Any]
    if float_path.is_file():
        float_probs = float_probabilities(float_path, grey)
        float_result = {
            "model": str(float_path),
            "agreement_with_int8": metrics.agreement(float_probs, probs),
            "classification_evaluation_half": metrics.classification(
                labels[evaluation], float_probs[evaluation], EXPRESSION_LABELS
            ),
        }
    else:
        float_result = {"error": f"float model not found: {float_path}"}

    result = {
        "model": str(model_path),
        "model_sha256": sha256,
        "data": str(fer_path),
        "protocol": (
            "FER2013 test split (the train split trained the model), "
            + (f"class-stratified slice of {len(labels)} (seed {SEED}), " if limit else "")
            + f"cut class by class (seed {SEED}) into a calibration half ({len(calib)}) that "
            f"fits the temperature and an evaluation half ({len(evaluation)}) that everything "
            "else is measured on; int8 through ExpressionClassifier.classify_batch at T = 1"
        ),
        "n": len(labels),
        "n_calibration": len(calib),
        "n_evaluation": len(evaluation),
        "classification": metrics.classification(
            labels[evaluation], probs[evaluation], EXPRESSION_LABELS
        ),
        "accuracy_whole_split": float(np.mean(probs.argmax(axis=1) == labels)),
        "temperature": fitted.to_json(),
        "calibration": calibration,
        "float": float_result,
    }
    return FaceEvaluation(
        result=result,
        labels_eval=labels[evaluation],
        probs_eval_before=probs[evaluation],
        probs_eval_after=after[evaluation],
        temperature=fitted,
    )
