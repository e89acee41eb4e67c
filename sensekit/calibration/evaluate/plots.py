"""The report's figures: confusion matrices and reliability diagrams, as PNG (matplotlib, Agg).

matplotlib is an optional dependency (`sensekit[plots]`): the daemon never draws. `require()`
is called before any work starts, so a missing matplotlib fails in a second, not after the
whole evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sensekit.confidence import reliability_bins
from sensekit.errors import SensekitError


def require() -> None:
    """Import matplotlib with the Agg backend, or say how to install it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise SensekitError(
            "sensekit eval draws its figures with matplotlib, which is not installed: "
            "pip install 'sensekit[plots]'"
        ) from exc
    matplotlib.use("Agg")


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    # No Software entry: the PNG's bytes then depend only on the numbers.
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)


def confusion_png(
    counts: Sequence[Sequence[int]], labels: Sequence[str], title: str, path: Path
) -> None:
    """Two panels: raw counts, and rows normalised (recall on the diagonal)."""
    import matplotlib.pyplot as plt

    mat = np.asarray(counts, dtype=np.float64)
    rows = mat / np.maximum(mat.sum(axis=1, keepdims=True), 1.0)
    size = 4.0 + 0.45 * len(labels)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), constrained_layout=True)
    for ax, values, name, fmt in (
        (axes[0], mat, "counts", "{:.0f}"),
        (axes[1], rows, "rows normalised (recall on the diagonal)", "{:.2f}"),
    ):
        top = max(float(values.max()), 1e-9)
        ax.imshow(values, cmap="Blues", vmin=0.0, vmax=top)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=10)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(
                    j,
                    i,
                    fmt.format(values[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if values[i, j] > 0.5 * top else "black",
                )
    fig.suptitle(title)
    _save(fig, path)


def reliability_png(
    truth: npt.ArrayLike,
    panels: Sequence[tuple[str, npt.ArrayLike]],
    bins: int,
    title: str,
    path: Path,
) -> None:
    """One reliability diagram per (name, probabilities): accuracy vs confidence per bin.

    Bars below the diagonal are overconfident bins; the lower strip shows how many
    predictions fall in each bin (a bar over a handful of items means little).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2,
        len(panels),
        figsize=(4.6 * len(panels), 5.6),
        gridspec_kw={"height_ratios": [3, 1]},
        sharex=True,
        constrained_layout=True,
        squeeze=False,
    )
    for col, (name, probs) in enumerate(panels):
        rel = reliability_bins(probs, truth, bins)
        centres = (rel.edges[:-1] + rel.edges[1:]) / 2
        width = rel.edges[1] - rel.edges[0]
        used = rel.counts > 0
        ax = axes[0, col]
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        ax.bar(
            centres[used],
            rel.accuracy[used],
            width=width * 0.95,
            color="tab:blue",
            edgecolor="black",
            label="accuracy",
        )
        ax.bar(
            centres[used],
            rel.confidence[used] - rel.accuracy[used],
            bottom=rel.accuracy[used],
            width=width * 0.95,
            color="tab:red",
            alpha=0.3,
            label="gap to confidence",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}\nECE {rel.ece:.3f}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
        low = axes[1, col]
        low.bar(centres, rel.counts, width=width * 0.95, color="grey")
        low.set_xlabel("confidence (top class)")
        low.set_ylabel("count")
    fig.suptitle(title)
    _save(fig, path)
