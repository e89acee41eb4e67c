"""Confidence calibration: temperature scaling and the expected calibration error.

A classifier trained with cross-entropy is usually overconfident: of the faces it calls "happy
with 0.9", fewer than 90 % are. The mean probabilities sensekit publishes are only meaningful if
the probabilities are calibrated, so each model may carry a *temperature* T in its sidecar JSON,
fitted by `sensekit eval` on held-out labelled data and applied at run time:

    p_T = p ** (1 / T) / sum(p ** (1 / T))

For a softmax output p = softmax(z) this is exactly softmax(z / T), so it needs no logits (the
int8 models output quantized probabilities). T > 1 softens, T < 1 sharpens, T = 1 changes
nothing, and the arg-max (hence accuracy) never changes. A probability that is exactly zero
stays zero: the int8 output rounds the smallest probabilities to zero and no temperature can
bring them back, so the fit below uses the same transform the runtime does.

A temperature is tied to the model file it was fitted for (its SHA-256 in the sidecar entry):
a rebuilt model invalidates it, and the runtime then falls back to T = 1 with a warning
(`sidecar_temperature`).

Pure numpy at import; scipy only inside `fit_temperature` (the daemon never fits).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_BINS = 15
"""Equal-width confidence bins for the ECE: the usual choice (Guo et al., 2017)."""
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0
"""Bounds of the fit: anything outside is a broken model or broken labels, not calibration."""
NLL_FLOOR = 1e-12
"""Probability floor in the NLL: a true class at exactly zero costs the same for every T."""


def apply_temperature(probs: npt.ArrayLike, temperature: float) -> npt.NDArray[np.float32]:
    """Rows of probabilities (N x C) rescaled by `temperature`, renormalised to sum to 1.

    Computed in the log domain (max-subtracted), so a large 1/T cannot overflow; zeros stay
    zero. T = 1 returns the input unchanged (as float32).
    """
    p = np.asarray(probs, dtype=np.float32)
    if temperature == 1.0:
        return p
    if not (math.isfinite(temperature) and temperature > 0.0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    with np.errstate(divide="ignore"):
        logp = np.log(p.astype(np.float64)) / temperature
    top = np.max(logp, axis=-1, keepdims=True)
    top[~np.isfinite(top)] = 0.0  # an all-zero row stays all zero
    scaled = np.exp(logp - top)
    totals = scaled.sum(axis=-1, keepdims=True)
    np.maximum(totals, 1e-300, out=totals)
    return (scaled / totals).astype(np.float32)


def negative_log_likelihood(probs: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean -log p(true class), with probabilities floored at NLL_FLOOR."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        return float("nan")
    true = p[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.maximum(true, NLL_FLOOR))))


def fit_temperature(probs: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """The T minimising the NLL of `apply_temperature(probs, T)` on labelled data.

    One parameter, so it cannot change the ranking of classes and barely overfits: a few
    hundred labelled examples are enough. Optimised over log T (the NLL is smooth and close to
    convex there) within [MIN_TEMPERATURE, MAX_TEMPERATURE].
    """
    from scipy.optimize import minimize_scalar

    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ValueError(f"expected N x C probabilities and N labels, got {p.shape}, {y.shape}")
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(apply_temperature(p, math.exp(log_t)), y),
        bounds=(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(math.exp(result.x))


@dataclass(frozen=True, slots=True)
class ReliabilityBins:
    """Top-label reliability: per equal-width confidence bin, how sure and how right.

    `confidence[b]` and `accuracy[b]` are NaN for an empty bin; `counts` weigh the bins in the
    ECE and tell the reader of the diagram how much each bar means.
    """

    edges: FloatArray
    counts: IntArray
    confidence: FloatArray
    accuracy: FloatArray

    @property
    def ece(self) -> float:
        total = int(self.counts.sum())
        if total == 0:
            return float("nan")
        used = self.counts > 0
        gaps = np.abs(self.accuracy[used] - self.confidence[used])
        return float(np.sum(self.counts[used] * gaps) / total)

    def to_json(self) -> dict[str, Any]:
        def clean(values: FloatArray) -> list[float | None]:
            return [None if math.isnan(v) else float(v) for v in values]

        return {
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "confidence": clean(self.confidence),
            "accuracy": clean(self.accuracy),
        }


def reliability_bins(
    probs: npt.ArrayLike, labels: npt.ArrayLike, bins: int = DEFAULT_BINS
) -> ReliabilityBins:
    """Bin the top-label confidence into `bins` equal-width bins over [0, 1]."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    confidence = p.max(axis=1) if len(p) else np.empty(0)
    correct = (p.argmax(axis=1) == y).astype(np.float64) if len(p) else np.empty(0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Right-closed bins (a confidence of exactly 1 falls in the last one, 0 in the first).
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=bins) / counts
        mean_acc = np.bincount(index, weights=correct, minlength=bins) / counts
    return ReliabilityBins(edges=edges, counts=counts, confidence=mean_conf, accuracy=mean_acc)


def expected_calibration_error(
    probs: npt.ArrayLike, labels: npt.ArrayLike, bins: int = DEFAULT_BINS
) -> float:
    """Top-label ECE: the bin-size-weighted mean |accuracy - confidence| over equal-width bins."""
    return reliability_bins(probs, labels, bins).ece


@dataclass(frozen=True, slots=True)
class FittedTemperature:
    """One sidecar entry: the temperature, which model file it belongs to, and its evidence."""

    value: float
    model_sha256: str
    fitted_on: str
    ece_before: float
    ece_after: float

    def to_json(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 6),
            "model_sha256": self.model_sha256,
            "fitted_on": self.fitted_on,
            "ece_before": round(self.ece_before, 6),
            "ece_after": round(self.ece_after, 6),
        }


def sidecar_temperature(entry: Any, model_sha256: str, where: str) -> float:
    """The temperature a sidecar entry gives the model with checksum `model_sha256`.

    No entry means an uncalibrated model (T = 1). An entry fitted for another model file is
    ignored with a warning: its temperature describes a model that is no longer there. A
    malformed entry raises ValueError (the caller names the file).
    """
    if entry is None:
        return 1.0
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: temperature entry must be an object, got {entry!r}")
    try:
        value = float(entry["value"])
        fitted_for = str(entry["model_sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: temperature entry needs 'value' and 'model_sha256'") from exc
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{where}: temperature must be positive, got {value!r}")
    if fitted_for != model_sha256:
        log.warning(
            "%s: temperature %.3f was fitted for model %s…, not this model file (%s…); using "
            "uncalibrated probabilities (T = 1). Re-run `sensekit eval --save-temperature`.",
            where,
            value,
            fitted_for[:12],
            model_sha256[:12],
        )
        return 1.0
    return value
