"""Classification and calibration metrics of one head on one set of labelled predictions.

Balanced accuracy is the mean recall over the classes present (= UAR, the speech-emotion
literature's headline figure): FER2013 and EmoDB are both imbalanced, and plain accuracy rewards
a model that favours the big classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sensekit.confidence import negative_log_likelihood, reliability_bins

IntArray = npt.NDArray[np.int64]


def confusion(truth: npt.ArrayLike, predicted: npt.ArrayLike, classes: int) -> IntArray:
    """Counts, rows = true class, columns = predicted class."""
    flat = np.asarray(truth, np.int64) * classes + np.asarray(predicted, np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def classification(
    truth: npt.ArrayLike, probs: npt.ArrayLike, labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class precision/recall/F1 and the confusion matrix."""
    y = np.asarray(truth, np.int64)
    predicted = np.asarray(probs).argmax(axis=1)
    counts = confusion(y, predicted, len(labels))
    support = counts.sum(axis=1)
    called = counts.sum(axis=0)
    hits = np.diag(counts).astype(np.float64)
    present = support > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = hits / support
        precision = hits / called
        f1 = 2 * precision * recall / (precision + recall)

    def number(value: float) -> float | None:
        return None if not np.isfinite(value) else float(value)

    return {
        "n": len(y),
        "accuracy": float(np.mean(predicted == y)) if len(y) else float("nan"),
        "balanced_accuracy": float(np.mean(recall[present])) if present.any() else float("nan"),
        "per_class": {
            name: {
                "support": int(support[i]),
                "precision": number(precision[i]),
                "recall": number(recall[i]),
                "f1": number(f1[i]),
            }
            for i, name in enumerate(labels)
        },
        "labels": list(labels),
        "confusion": counts.tolist(),
    }


def calibration(truth: npt.ArrayLike, probs: npt.ArrayLike) -> dict[str, Any]:
    """ECE, NLL, mean confidence and the reliability bins of one set of probabilities."""
    p = np.asarray(probs, np.float64)
    bins = reliability_bins(p, truth)
    return {
        "ece": bins.ece,
        "nll": negative_log_likelihood(p, truth),
        "mean_confidence": float(p.max(axis=1).mean()) if len(p) else float("nan"),
        "accuracy": float(np.mean(p.argmax(axis=1) == np.asarray(truth))) if len(p) else 0.0,
        "reliability": bins.to_json(),
    }


def agreement(probs_a: npt.ArrayLike, probs_b: npt.ArrayLike) -> dict[str, float]:
    """How far two models' outputs are apart: arg-max agreement and mean |p_a - p_b|."""
    a, b = np.asarray(probs_a, np.float64), np.asarray(probs_b, np.float64)
    return {
        "n": len(a),
        "argmax_agreement": float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))),
        "mean_abs_prob_diff": float(np.mean(np.abs(a - b))),
        "max_abs_prob_diff": float(np.max(np.abs(a - b))) if len(a) else 0.0,
    }
