"""BlazeFace anchor centres, as MediaPipe's SSD anchor calculator lays them out.

Both face models use fixed-size anchors (every anchor is 1 x 1 in input units), so only the
centres matter. Layers that share a stride share one grid; each grid cell repeats its centre
once per anchor (2 per layer: aspect ratio 1 plus the interpolated scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class AnchorSpec:
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int
    offset: float = 0.5


SHORT_RANGE = AnchorSpec(input_size=128, strides=(8, 16, 16, 16), anchors_per_layer=2)
FULL_RANGE = AnchorSpec(input_size=192, strides=(4,), anchors_per_layer=1)


def generate_anchors(spec: AnchorSpec) -> npt.NDArray[np.float32]:
    """Anchor centres (N x 2, normalised x, y) in the order the model emits its outputs."""
    centres: list[npt.NDArray[np.float32]] = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        repeats = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            repeats += spec.anchors_per_layer
            layer += 1
        cells = int(np.ceil(spec.input_size / stride))
        grid = (np.arange(cells, dtype=np.float32) + spec.offset) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, repeats, axis=0))
    return np.concatenate(centres, axis=0).astype(np.float32)
