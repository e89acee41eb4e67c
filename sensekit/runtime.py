"""One wrapper around the LiteRT interpreter, so the rest of sensekit never imports it.

`ai_edge_litert` is the maintained interpreter (wheels for x86_64 and aarch64, numpy 2). The old
`tflite_runtime` is only a fallback import: it installs beside numpy 2 but breaks at run time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sensekit.errors import ModelError

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent


def _load_interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter
    except ImportError as exc:
        raise ModelError(
            "no TFLite interpreter is installed: install sensekit's dependencies "
            "(pip install ai-edge-litert)"
        ) from exc


def interpreter_description() -> str:
    """Which interpreter package and version loads the models: the first thing to know when a
    model misbehaves on one platform only."""
    from importlib.metadata import PackageNotFoundError, version

    for module, distribution in (
        ("ai_edge_litert", "ai-edge-litert"),
        ("tflite_runtime", "tflite-runtime"),
    ):
        try:
            __import__(f"{module}.interpreter")
        except ImportError:
            continue
        try:
            return f"{distribution} {version(distribution)}"
        except PackageNotFoundError:
            return distribution
    return "no interpreter"


def models_dir() -> Path:
    """Where the bundled models are: inside the installed wheel, or `models/` of a checkout."""
    for candidate in (_PACKAGE_DIR / "models", _PACKAGE_DIR.parent / "models"):
        if candidate.is_dir():
            return candidate
    return _PACKAGE_DIR.parent / "models"


def resolve_model(name_or_path: str | Path) -> Path:
    """A bare file name means a bundled model; anything with a directory is taken as given."""
    path = Path(name_or_path)
    if path.parent == Path(".") and not path.exists():
        return models_dir() / path
    return path


@dataclass(frozen=True, slots=True)
class Quantization:
    """Affine int8/uint8 quantization of one tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int

    @property
    def is_quantized(self) -> bool:
        return self.scale != 0.0


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    index: int
    shape: tuple[int, ...]
    dynamic_batch: bool
    dtype: np.dtype[Any]
    quantization: Quantization


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    signature = tuple(int(v) for v in detail.get("shape_signature", detail["shape"]))
    return TensorSpec(
        name=str(detail["name"]),
        index=int(detail["index"]),
        shape=tuple(int(v) for v in detail["shape"]),
        dynamic_batch=bool(signature) and signature[0] == -1,
        dtype=np.dtype(detail["dtype"]),
        quantization=Quantization(float(scale), int(zero_point)),
    )


class TFLiteModel:
    """A loaded model: fixed inputs and outputs, invoked with numpy arrays.

    Each instance owns one interpreter and must be used from one thread only.
    """

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        self.path = resolve_model(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        interpreter_class = _load_interpreter_class()
        try:
            self._interpreter = interpreter_class(
                model_path=str(self.path), num_threads=num_threads
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"cannot load model {self.path}: {exc!s}".strip()
                + " (the file is corrupt or not a TFLite model; reinstall sensekit's models)"
            ) from exc
        self.inputs = [_spec(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_spec(d) for d in self._interpreter.get_output_details()]
        self._batch = self.inputs[0].shape[0] if self.inputs[0].shape else 1

    @property
    def batch_size(self) -> int:
        return self._batch

    def set_batch_size(self, batch: int) -> None:
        """Resize the dynamic batch dimension; re-allocation happens only when it changes."""
        if batch == self._batch:
            return
        spec = self.inputs[0]
        if not spec.dynamic_batch:
            raise ModelError(f"model {self.path.name} has a fixed batch of {self._batch}")
        self._interpreter.resize_tensor_input(spec.index, [batch, *spec.shape[1:]], strict=True)
        self._interpreter.allocate_tensors()
        self._batch = batch

    def run(self, inputs: Sequence[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        """Invoke once; returns copies of the outputs (the interpreter reuses its buffers)."""
        for spec, value in zip(self.inputs, inputs, strict=True):
            self._interpreter.set_tensor(spec.index, value)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(spec.index) for spec in self.outputs]

    def invoke(self) -> None:
        """Invoke on whatever input is set: the bare model cost the benchmark compares with."""
        self._interpreter.invoke()
