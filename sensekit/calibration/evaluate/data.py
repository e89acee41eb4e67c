"""The labelled data `sensekit eval` reads, and the seeded class-stratified splits it uses.

Layout of a data folder (the shared one, `../shared/data` beside the repository, or any other
laid out the same way): `fer2013.npz` (arrays x_test, y_test in the FER2013 class order) and/or
`emodb/labels.csv` (file,speaker,emotion) with the clips in `emodb/wav/`. Whichever part is
present is evaluated.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sensekit.errors import ConfigError

FER_FILE = "fer2013.npz"
EMODB_DIR = "emodb"
SEED = 2026
"""One seed for every split and slice, so two runs on the same data give the same report."""

IntArray = npt.NDArray[np.int64]


def default_data_dir() -> Path | None:
    """`../shared/data` beside the repository root (a checkout), if it exists."""
    root = Path(__file__).resolve().parents[3]
    candidate = root.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@dataclass(frozen=True, slots=True)
class DataParts:
    """Which parts of a data folder exist."""

    root: Path
    fer: Path | None
    emodb: Path | None


def find_parts(root: Path) -> DataParts:
    """The FER2013 file and the EmoDB folder under `root`; ConfigError if neither exists."""
    fer = root / FER_FILE
    emodb = root / EMODB_DIR
    parts = DataParts(
        root=root,
        fer=fer if fer.is_file() else None,
        emodb=emodb if (emodb / "labels.csv").is_file() else None,
    )
    if parts.fer is None and parts.emodb is None:
        raise ConfigError(
            [
                f"no evaluation data in {root}: looked for {fer} (FER2013) and "
                f"{emodb / 'labels.csv'} with {emodb / 'wav'}/*.wav (EmoDB); pass --data DIR"
            ]
        )
    return parts


@dataclass(frozen=True, slots=True)
class FerTest:
    """The FER2013 test split: 48 x 48 uint8 grey faces and their labels (FER2013 order)."""

    images: npt.NDArray[np.uint8]
    labels: IntArray


def load_fer_test(path: Path) -> FerTest:
    """The *test* split only: the train split trained the model."""
    try:
        with np.load(path) as data:
            images, labels = data["x_test"], data["y_test"].astype(np.int64)
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(
            [f"{path}: not a FER2013 archive with x_test and y_test ({exc})"]
        ) from exc
    if images.ndim != 3 or len(images) != len(labels):
        raise ConfigError([f"{path}: x_test {images.shape} does not match y_test {labels.shape}"])
    return FerTest(images=images.astype(np.uint8), labels=labels)


@dataclass(frozen=True, slots=True)
class EmoDbClip:
    file: str
    speaker: str
    emotion: str


def read_emodb_labels(folder: Path) -> list[EmoDbClip]:
    """The rows of `labels.csv`, sorted by file name (the order the model build uses)."""
    path = folder / "labels.csv"
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [EmoDbClip(r["file"], r["speaker"], r["emotion"]) for r in csv.DictReader(f)]
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [f"{path}: expected a CSV with columns file,speaker,emotion ({exc})"]
        ) from exc
    missing = [r.file for r in rows if not (folder / "wav" / r.file).is_file()]
    if missing:
        raise ConfigError(
            [f"{path}: {len(missing)} clips missing in {folder / 'wav'}, e.g. {missing[0]}"]
        )
    return sorted(rows, key=lambda r: r.file)


def stratified_subset(labels: npt.ArrayLike, limit: int | None, seed: int = SEED) -> IntArray:
    """Indices of a class-stratified random slice of about `limit` items (sorted).

    Each class keeps its share of the slice (at least one item per class present), so a quick
    run still sees every class; None or a limit >= len(labels) keeps everything.
    """
    y = np.asarray(labels)
    if limit is None or limit >= len(y):
        return np.arange(len(y), dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.maximum(1, np.floor(counts * limit / len(y)).astype(np.int64))
    # Hand the rounding remainder to the largest classes, so the slice has `limit` items.
    for i in np.argsort(-counts)[: max(0, limit - int(quota.sum()))]:
        quota[i] += 1
    chosen = [
        rng.choice(np.flatnonzero(y == c), size=min(int(q), int(n)), replace=False)
        for c, q, n in zip(classes, quota, counts, strict=True)
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def stratified_halves(labels: npt.ArrayLike, seed: int = SEED) -> tuple[IntArray, IntArray]:
    """Split indices into a calibration half and an evaluation half, class by class.

    Within each class the items are shuffled with `seed` and the first floor(n / 2) go to
    calibration, the rest to evaluation, so both halves have the same class mix.
    """
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    calibration: list[IntArray] = []
    evaluation: list[IntArray] = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        half = len(members) // 2
        calibration.append(members[:half])
        evaluation.append(members[half:])
    return (
        np.sort(np.concatenate(calibration)).astype(np.int64),
        np.sort(np.concatenate(evaluation)).astype(np.int64),
    )
