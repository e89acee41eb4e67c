"""The one rule that picks the representative (calibration) data of every int8 conversion.

Why a shared rule: full-int8 conversion fixes each tensor's int8 range from the activations
the representative data produces, so which rows calibrate a model changes its bytes and its
numbers. Both conversion scripts (``build_expression_model.py``, ``build_voice_model.py``)
therefore pick those rows the same documented, reproducible way, and record a manifest that
lets anyone check which rows were used without re-running the build.

The rule (``RULE``):

1. Candidates are the **training rows only**: the caller passes the indices of the rows the
   model was trained on (never evaluation rows); the function refuses an index outside the
   label array and never looks at any other row.
2. Classes are visited in the fixed order the caller gives (the model's label order).
3. One generator, ``numpy.random.Generator(numpy.random.PCG64(seed))`` (what
   ``numpy.random.default_rng(seed)`` builds), is shared by the classes in that order: for each
   class ``c`` it draws ``per_class`` rows **without replacement** from that class's training
   rows (in ascending index order) with ``rng.choice(candidates, per_class, replace=False)``.
4. The result is the concatenation in class order; within a class, the order of the draw.
   Calibration feeds the rows in exactly this order.
5. A class with fewer than ``per_class`` training rows: by default an error naming the class
   (a sample that is silently unbalanced is what this rule exists to prevent). With
   ``allow_short=True`` all of that class's rows are taken (in a permuted order, drawn by the
   same generator), and the manifest lists the class under ``short_classes`` with how many
   rows it had, so the imbalance is on record. A class with no training row is always an error.

The manifest's ``indices_sha256`` is the SHA-256 of the index list as little-endian int64
bytes (``numpy.asarray(indices, "<i8").tobytes()``), in the order above.

This module needs only numpy (it runs in both ``.venv``, numpy 2, and ``.venv-build``,
numpy 1.26; both draw the same numbers from PCG64).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

RULE = "sensekit-representative/1"
"""Name and version of the rule above; changes whenever the rule would pick other rows."""


@dataclass(frozen=True)
class Representative:
    """The chosen rows and the manifest a build writes beside the model.

    ``indices`` index the caller's label array (all rows, not just the training ones).
    """

    indices: npt.NDArray[np.int64]
    manifest: dict[str, Any]


def indices_sha256(indices: npt.ArrayLike) -> str:
    """SHA-256 of an index list as little-endian int64 bytes (the manifest's checksum)."""
    return hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()


def representative_rows(
    labels: npt.ArrayLike,
    train_rows: npt.ArrayLike,
    classes: Sequence[int],
    class_names: Sequence[str],
    per_class: int,
    seed: int,
    allow_short: bool = False,
) -> Representative:
    """Pick the class-balanced, seeded calibration rows from the training rows (see module).

    ``labels`` holds every row's class index; ``train_rows`` the indices of the rows the model
    was trained on; ``classes`` the class indices in the fixed order to visit them and
    ``class_names`` their names (for the manifest and the error messages).
    """
    y = np.asarray(labels)
    train = np.unique(np.asarray(train_rows, dtype=np.int64))  # ascending, no duplicates
    if len(classes) != len(class_names):
        raise ValueError(f"{len(classes)} classes but {len(class_names)} class names")
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, not {per_class}")
    if len(train) and (train[0] < 0 or train[-1] >= len(y)):
        raise ValueError(f"training rows outside the {len(y)} labels")
    rng = np.random.default_rng(seed)
    picks: list[npt.NDArray[np.int64]] = []
    available: dict[str, int] = {}
    short: dict[str, int] = {}
    for c, name in zip(classes, class_names, strict=True):
        candidates = train[y[train] == c]
        available[name] = len(candidates)
        if len(candidates) == 0:
            raise ValueError(f"class {name!r} has no training row to calibrate with")
        if len(candidates) < per_class:
            if not allow_short:
                raise ValueError(
                    f"class {name!r} has {len(candidates)} training rows, fewer than "
                    f"per_class={per_class}: lower per_class or pass allow_short=True"
                )
            short[name] = len(candidates)
        take = min(per_class, len(candidates))
        picks.append(rng.choice(candidates, size=take, replace=False).astype(np.int64))
    indices = np.concatenate(picks)
    manifest = {
        "rule": RULE,
        "split": "train",
        "generator": "numpy PCG64",
        "seed": int(seed),
        "per_class": int(per_class),
        "classes": list(class_names),
        "counts": {name: len(p) for name, p in zip(class_names, picks, strict=True)},
        "available": available,
        "short_classes": short,
        "n": len(indices),
        "indices_sha256": indices_sha256(indices),
    }
    return Representative(indices=indices, manifest=manifest)
