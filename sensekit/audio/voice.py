"""Arousal and emotion from standardised prosody features: all windows in one int8 call.

The model (`models/voice_prosody_int8.tflite`, trained here on EmoDB by
`tools/models/build_voice_model.py`) takes z-scored features, not raw ones. The
standardisation stays outside the int8 model on purpose: inside it, the int8 model agreed with
the float one on only 70 % of clips, and outside it a site can swap the training statistics for
its own (site normalisation) without touching the model. The sidecar JSON beside the model
carries those training statistics, the feature version the model was trained on and the labels;
a model whose sidecar does not match this sensekit's features is refused at load time, because
features computed differently would be scored silently wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sensekit.audio.prosody import FEATURE_NAMES, FEATURE_VERSION
from sensekit.confidence import apply_temperature, sidecar_temperature
from sensekit.errors import ModelError
from sensekit.runtime import Quantization, TFLiteModel, resolve_model
from sensekit.types import VOICE_AROUSAL_LABELS, VOICE_EMOTION_LABELS, VoiceScores

MODEL_FILE = "voice_prosody_int8.tflite"
HEADS = ("arousal", "emotion")

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class VoiceModelInfo:
    """What the sidecar JSON says about a voice model.

    `training_mean` and `training_std` standardise features until a site has learned its own
    statistics; `sha256` ties the sidecar to exactly one model file.
    """

    source: Path
    feature_version: str
    feature_names: tuple[str, ...]
    training_mean: FloatArray = field(repr=False)
    training_std: FloatArray = field(repr=False)
    arousal_labels: tuple[str, ...]
    emotion_labels: tuple[str, ...]
    sha256: str
    temperature: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The sidecar's `temperature` entries per head (`sensekit eval --save-temperature`)."""

    @classmethod
    def load(cls, path: Path, fold: str | None = None) -> VoiceModelInfo:
        """Read a model's sidecar; `fold` picks one entry of the evaluation folds' JSON.

        The folds' JSON keeps what all folds share at the top level and each fold's own
        standardisation and checksum under `folds[<speaker>]`.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(
                f"voice model sidecar not found: {path} (it is written beside the model by "
                "tools/models/build_voice_model.sh)"
            ) from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read voice model sidecar {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelError(f"voice model sidecar {path}: expected a JSON object")
        if fold is not None:
            folds = data.get("folds")
            if not isinstance(folds, dict) or fold not in folds:
                raise ModelError(f"{path}: no fold {fold!r}")
            data = {**{k: v for k, v in data.items() if k != "folds"}, **folds[fold]}
        try:
            standardisation = data["standardisation"]
            info = cls(
                source=path,
                feature_version=str(data["feature_version"]),
                feature_names=tuple(str(n) for n in data["feature_names"]),
                training_mean=np.asarray(standardisation["mean"], dtype=np.float32),
                training_std=np.asarray(standardisation["std"], dtype=np.float32),
                arousal_labels=tuple(str(n) for n in data["arousal_labels"]),
                emotion_labels=tuple(str(n) for n in data["emotion_labels"]),
                sha256=str(data["sha256"]),
                temperature=dict(data.get("temperature") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"voice model sidecar {path} is incomplete or malformed: {exc!r}"
            ) from exc
        info.check_compatible()
        return info

    def check_compatible(self) -> None:
        """Refuse a model trained on other features or labels than this sensekit computes."""
        where = self.source
        if self.feature_version != FEATURE_VERSION:
            raise ModelError(
                f"{where}: the voice model was trained on features {self.feature_version!r} but "
                f"this sensekit computes {FEATURE_VERSION!r}; rebuild the model with "
                "tools/models/build_voice_model.sh or install the matching sensekit"
            )
        if self.feature_names != FEATURE_NAMES:
            raise ModelError(
                f"{where}: the voice model expects {len(self.feature_names)} features, this "
                f"sensekit computes {len(FEATURE_NAMES)} ({FEATURE_VERSION}) with other names or "
                "order; rebuild the model"
            )
        shape = (len(FEATURE_NAMES),)
        if self.training_mean.shape != shape or self.training_std.shape != shape:
            raise ModelError(f"{where}: standardisation must have {shape[0]} values per statistic")
        if not (np.all(np.isfinite(self.training_mean)) and np.all(self.training_std > 0)):
            raise ModelError(f"{where}: standardisation has non-finite means or non-positive stds")
        if self.arousal_labels != VOICE_AROUSAL_LABELS:
            raise ModelError(
                f"{where}: arousal labels {self.arousal_labels} != {VOICE_AROUSAL_LABELS}"
            )
        if self.emotion_labels != VOICE_EMOTION_LABELS:
            raise ModelError(
                f"{where}: emotion labels {self.emotion_labels} != {VOICE_EMOTION_LABELS}"
            )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quantize(values: FloatArray, quant: Quantization) -> npt.NDArray[np.int8]:
    """Float to the model's int8 input: round to nearest, then saturate like TFLite does."""
    q = np.rint(values / np.float32(quant.scale)) + quant.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


class VoiceClassifier:
    """Arousal (low/mid/high) and seven emotions for batches of standardised feature vectors.

    Each instance owns one interpreter and must be used from one thread only.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        num_threads: int = 1,
        *,
        info: VoiceModelInfo | None = None,
        temperature: float | Mapping[str, float] | None = None,
    ) -> None:
        """Load the model and its sidecar (`<model>.json` unless `info` is given).

        `temperature` overrides the sidecar's per-head confidence temperatures: one number for
        both heads or one per head name; None = the sidecar's (1 for a head without one).
        """
        path = resolve_model(model_path or MODEL_FILE)
        self._model = TFLiteModel(path, num_threads=num_threads)
        self.info = info or VoiceModelInfo.load(path.with_suffix(".json"))
        actual = _sha256(self._model.path)
        if actual != self.info.sha256:
            raise ModelError(
                f"{self._model.path}: sha256 {actual[:12]}… does not match its sidecar "
                f"{self.info.source} ({self.info.sha256[:12]}…): the sidecar describes another "
                "model file; rebuild or reinstall both together"
            )
        features = len(FEATURE_NAMES)
        spec = self._model.inputs[0]
        if len(self._model.inputs) != 1 or spec.shape[1:] != (features,):
            raise ModelError(f"{path}: input shape {spec.shape}, expected N x {features}")
        if spec.dtype != np.int8 or not spec.quantization.is_quantized or not spec.dynamic_batch:
            raise ModelError(f"{path}: expected a fully int8 model with a dynamic batch")
        sizes = {out.shape[-1]: i for i, out in enumerate(self._model.outputs)}
        arousal, emotion = len(VOICE_AROUSAL_LABELS), len(VOICE_EMOTION_LABELS)
        if len(self._model.outputs) != 2 or set(sizes) != {arousal, emotion}:
            shapes = [out.shape for out in self._model.outputs]
            raise ModelError(f"{path}: outputs {shapes}, expected N x {arousal} and N x {emotion}")
        self._arousal_index, self._emotion_index = sizes[arousal], sizes[emotion]
        self._input_quant = spec.quantization
        self._output_quant = [out.quantization for out in self._model.outputs]
        self.temperature = self._temperatures(temperature, actual)

    def _temperatures(
        self, override: float | Mapping[str, float] | None, sha256: str
    ) -> dict[str, float]:
        """Per-head temperature: the override, else the sidecar's for this very file, else 1."""
        if override is not None:
            chosen = (
                {h: float(override[h]) for h in HEADS}
                if isinstance(override, Mapping)
                else dict.fromkeys(HEADS, float(override))
            )
            if not all(t > 0.0 for t in chosen.values()):
                raise ModelError(f"temperatures must be positive, got {chosen}")
            return chosen
        try:
            return {
                h: sidecar_temperature(
                    self.info.temperature.get(h), sha256, f"{self.info.source} [{h}]"
                )
                for h in HEADS
            }
        except ValueError as exc:
            raise ModelError(str(exc)) from exc

    @property
    def model_path(self) -> Path:
        """The model file in use, for the stats message (which model is this device running)."""
        return self._model.path

    @property
    def model(self) -> TFLiteModel:
        """The interpreter, for measuring the bare invoke against the whole stage."""
        return self._model

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.info.feature_names

    @property
    def training_mean(self) -> FloatArray:
        """Per-feature mean of the training clips: the standardisation before site calibration."""
        return self.info.training_mean

    @property
    def training_std(self) -> FloatArray:
        return self.info.training_std

    def probabilities(self, standardised: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Arousal (N x 3) and emotion (N x 7) probabilities in one interpreter call."""
        x = np.asarray(standardised, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
            raise ValueError(
                f"expected N x {len(FEATURE_NAMES)} standardised features, got {x.shape}"
            )
        if len(x) == 0:
            return (
                np.empty((0, len(VOICE_AROUSAL_LABELS)), np.float32),
                np.empty((0, len(VOICE_EMOTION_LABELS)), np.float32),
            )
        self._model.set_batch_size(len(x))
        raw = self._model.run([quantize(x, self._input_quant)])
        arousal = self._dequantize(raw, self._arousal_index)
        emotion = self._dequantize(raw, self._emotion_index)
        return (
            apply_temperature(arousal, self.temperature["arousal"]),
            apply_temperature(emotion, self.temperature["emotion"]),
        )

    def _dequantize(self, raw: list[npt.NDArray[Any]], index: int) -> FloatArray:
        """Softmax codes to probabilities that sum to exactly 1 (int8 rounding drifts them)."""
        values = raw[index].astype(np.float32)
        quant = self._output_quant[index]
        if quant.is_quantized:
            values -= quant.zero_point  # the scale cancels in the normalisation below
        totals = values.sum(axis=1, keepdims=True)
        np.maximum(totals, 1e-12, out=totals)
        return values / totals

    def classify(self, standardised: FloatArray) -> list[VoiceScores]:
        """One `VoiceScores` per row of z-scored features (`FEATURE_NAMES` order)."""
        arousal, emotion = self.probabilities(standardised)
        return [VoiceScores(arousal=a, emotion=e) for a, e in zip(arousal, emotion, strict=True)]
