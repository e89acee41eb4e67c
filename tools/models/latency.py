"""Measure the bare interpreter latency of a .tflite model.

Why: the model cards quote "bare model" invoke times so that ``sensekit bench`` can
report the daemon's overhead as a ratio against them. This script times only
``interpreter.invoke()`` on a fixed random input (no pre/post-processing, no
copies), single-threaded by default because the daemon pins its inference loop to
one thread on a 2-core Pi.

Usage::

    python tools/models/latency.py MODEL.tflite BATCH [--threads 1] [--runs 200]

A batch size other than the model's own needs a dynamic batch dimension
(``shape_signature[0] == -1``); the input is then resized with
``resize_tensor_input`` before ``allocate_tensors``. Prints one line with the
median and p90 invoke time in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_interpreter(model: Path, threads: int) -> Any:
    """Build a LiteRT interpreter, preferring ai_edge_litert like the daemon does.

    The fallbacks let the same script run in the TensorFlow build venv.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on the venv
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ImportError:
            import tensorflow as tf  # type: ignore[import-not-found]

            Interpreter = tf.lite.Interpreter  # type: ignore[misc]
    return Interpreter(model_path=str(model), num_threads=threads)


def random_input(detail: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Return a random tensor matching an input's current shape and dtype."""
    shape = tuple(int(s) for s in detail["shape"])
    dtype = np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def measure(model: Path, batch: int, threads: int, runs: int, warmup: int) -> list[float]:
    """Return ``runs`` invoke times in milliseconds after ``warmup`` untimed invokes."""
    interp = make_interpreter(model, threads)
    inputs = interp.get_input_details()
    for detail in inputs:
        shape = [int(s) for s in detail["shape"]]
        if shape and shape[0] != batch:
            signature = [int(s) for s in detail.get("shape_signature", shape)]
            if signature[0] != -1:
                raise SystemExit(
                    f"{model.name}: input {detail['name']!r} has a fixed batch of "
                    f"{shape[0]} (shape_signature {signature}); cannot run batch {batch}"
                )
            interp.resize_tensor_input(detail["index"], [batch, *shape[1:]])
    interp.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interp.get_input_details():
        interp.set_tensor(detail["index"], random_input(detail, rng))
    for _ in range(warmup):
        interp.invoke()
    times: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        interp.invoke()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, time the model and print median/p90 in ms."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="path to a .tflite file")
    parser.add_argument("batch", type=int, help="batch size (dynamic batch needed if != model's)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    parser.add_argument("--runs", type=int, default=200, help="timed invokes (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed invokes first (default 20)")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.runs < 1:
        parser.error("batch and runs must be >= 1")
    times = measure(args.model, args.batch, args.threads, args.runs, args.warmup)
    median = statistics.median(times)
    p90 = float(np.percentile(times, 90))
    print(
        f"{args.model.name} batch={args.batch} threads={args.threads} runs={args.runs}: "
        f"median {median:.3f} ms, p90 {p90:.3f} ms, per image {median / args.batch:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
