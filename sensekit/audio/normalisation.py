"""Site normalisation: standardise features with the statistics of this device's own speech.

A shop is not a Berlin studio. The microphone's gain and frequency response, the room, the
language and the customers shift absolute prosodic levels (loudness, spectral balance, pitch),
and a model trained on one studio reads those shifts as emotion. The cure measured in the
model card (per-speaker normalisation inside leave-one-speaker-out) is to z-score each feature
with statistics of the audio it comes from. On a device that means running statistics of the
site's own speech windows:

- `off`: always the model's training statistics (its sidecar).
- `learn`: exponentially weighted running mean and variance over analysed windows (half-life in
  windows, so it follows slow changes such as a new microphone position but not one loud
  customer). Used once `min_windows` windows were seen; until then the training statistics.
  Saved to the state directory (atomically) so a restart keeps them.
- `frozen`: statistics learned earlier (`sensekit calibrate speech`, or a `learn` run) are
  loaded and never changed.

What is stored is one mean and one variance per feature over at least `min_windows` windows
of many people's speech: no window, no audio, nothing about any one person. Nothing is written
before `min_windows` windows have been seen.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sensekit.errors import ConfigError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

STATE_SCHEMA = "sensekit.voice-normalisation/1"
MIN_STD = 1e-6


class NormalisationMode(StrEnum):
    OFF = "off"
    LEARN = "learn"
    FROZEN = "frozen"


@dataclass(frozen=True, slots=True)
class NormalisationOptions:
    mode: NormalisationMode = NormalisationMode.LEARN
    state_file: Path | None = None
    min_windows: int = 300
    half_life_windows: float = 20000.0
    save_every_windows: int = 100


class RunningStats:
    """Exponentially weighted mean and variance (West's weighted incremental update)."""

    def __init__(self, features: int, half_life: float) -> None:
        self.decay = 0.5 ** (1.0 / half_life) if math.isfinite(half_life) else 1.0
        self.weight = 0.0
        self.count = 0
        self.mean = np.zeros(features, dtype=np.float64)
        self._scatter = np.zeros(features, dtype=np.float64)

    def update(self, rows: npt.NDArray[np.floating[Any]]) -> None:
        for row in np.asarray(rows, dtype=np.float64):
            self.weight = self.decay * self.weight + 1.0
            delta = row - self.mean
            self.mean += delta / self.weight
            self._scatter = self.decay * self._scatter + delta * (row - self.mean)
            self.count += 1

    @property
    def std(self) -> npt.NDArray[np.float64]:
        if self.weight <= 0:
            return np.ones_like(self.mean)
        return np.sqrt(np.maximum(self._scatter / self.weight, 0.0))

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "weight": self.weight,
            "mean": self.mean.tolist(),
            "scatter": self._scatter.tolist(),
        }

    def load_json(self, data: dict[str, Any]) -> None:
        mean = np.asarray(data["mean"], dtype=np.float64)
        scatter = np.asarray(data["scatter"], dtype=np.float64)
        if mean.shape != self.mean.shape or scatter.shape != self.mean.shape:
            raise ValueError(f"expected {len(self.mean)} features, found {mean.shape}")
        self.mean, self._scatter = mean, scatter
        self.count, self.weight = int(data["count"]), float(data["weight"])


class SiteNormaliser:
    """Standardises feature rows for the voice model; learns the site when asked to."""

    def __init__(
        self,
        feature_names: tuple[str, ...] | list[str],
        feature_version: str,
        training_mean: FloatArray,
        training_std: FloatArray,
        options: NormalisationOptions | None = None,
    ) -> None:
        self.options = options or NormalisationOptions()
        self.feature_names = tuple(feature_names)
        self.feature_version = feature_version
        self._training = (
            np.asarray(training_mean, dtype=np.float32),
            np.maximum(np.asarray(training_std, dtype=np.float32), MIN_STD),
        )
        self.stats = RunningStats(len(self.feature_names), self.options.half_life_windows)
        self._unsaved = 0
        if self.options.mode is not NormalisationMode.OFF:
            self._load()

    @property
    def calibrated(self) -> bool:
        """True when the site's own statistics are in use."""
        return (
            self.options.mode is not NormalisationMode.OFF
            and self.stats.count >= self.options.min_windows
        )

    @property
    def training_statistics(self) -> tuple[FloatArray, FloatArray]:
        """The model's own mean and standard deviation (from its sidecar)."""
        return self._training

    def standardise(self, features: FloatArray) -> FloatArray:
        if self.calibrated:
            mean = self.stats.mean.astype(np.float32)
            std = np.maximum(self.stats.std, MIN_STD).astype(np.float32)
        else:
            mean, std = self._training
        return ((np.asarray(features, dtype=np.float32) - mean) / std).astype(np.float32)

    def observe(self, features: FloatArray) -> None:
        """Learn from analysed windows (mode `learn` only); saves every few hundred."""
        if self.options.mode is not NormalisationMode.LEARN or len(features) == 0:
            return
        was_calibrated = self.calibrated
        self.stats.update(features)
        self._unsaved += len(features)
        if self.calibrated and not was_calibrated:
            log.info(
                "voice: site normalisation learned from %d speech windows; now in use",
                self.stats.count,
            )
        if self.calibrated and self._unsaved >= self.options.save_every_windows:
            self.save()

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.options.mode.value,
            "calibrated": self.calibrated,
            "windows": self.stats.count,
        }

    # -- persistence ---------------------------------------------------------------------

    def save(self) -> None:
        """Atomically replace the state file; never before `min_windows` (see module doc)."""
        path = self.options.state_file
        if path is None or not self.calibrated:
            return
        document = {
            "schema": STATE_SCHEMA,
            "feature_version": self.feature_version,
            "feature_names": list(self.feature_names),
            "half_life_windows": self.options.half_life_windows,
            "stats": self.stats.to_json(),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8"
            ) as tmp:
                json.dump(document, tmp)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp.name, path)
            self._unsaved = 0
        except OSError as exc:
            log.warning("voice: cannot save site normalisation to %s: %s", path, exc)

    def _load(self) -> None:
        path = self.options.state_file
        if path is None:
            return
        if not path.exists():
            if self.options.mode is NormalisationMode.FROZEN:
                log.warning(
                    "voice: normalisation is frozen but %s does not exist (run "
                    "`sensekit calibrate speech`); using the model's training statistics",
                    path,
                )
            return
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("schema") != STATE_SCHEMA:
                raise ValueError(f"not a {STATE_SCHEMA} file")
            if document.get("feature_version") != self.feature_version:
                raise ValueError(
                    f"learned for features {document.get('feature_version')!r}, the model "
                    f"uses {self.feature_version!r}"
                )
            self.stats.load_json(document["stats"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if self.options.mode is NormalisationMode.FROZEN:
                raise ConfigError(
                    [f"{path}:1: voice.normalisation: cannot use the frozen statistics: {exc}"]
                ) from None
            log.warning("voice: ignoring site normalisation in %s (%s); learning afresh", path, exc)
            self.stats = RunningStats(len(self.feature_names), self.options.half_life_windows)
            return
        log.info(
            "voice: site normalisation loaded from %s (%d windows%s)",
            path,
            self.stats.count,
            "" if self.calibrated else ", not yet enough to use",
        )
