"""Check the int8 expression model in the *runtime* environment (ai_edge_litert, numpy 2).

Why: the model is built with TensorFlow 2.15 and numpy 1.x, but the daemon runs it
with ``ai_edge_litert`` and numpy 2 and no TensorFlow. This script proves, in that
environment, that

* the file matches the SHA-256 in its JSON sidecar and is fully int8 with a dynamic
  batch (``shape_signature[0] == -1``);
* one batch-4 invoke (input resized to 4) gives exactly the outputs of four
  batch-1 invokes, so the daemon may batch the faces of a frame;
* (when ``../shared/data/fer2013.npz`` is present) its test accuracy under this
  runtime equals what the build measured with ``tf.lite``.

Usage (from the repository root)::

    .venv/bin/python tools/models/check_expression_runtime.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from build_expression_model import (
    DEFAULT_DATA,
    INPUT_SIZE,
    LABELS,
    MODEL_NAME,
    REPO_ROOT,
    QuantParams,
    resize_uint8,
    uint8_to_int8_lut,
)
from tqdm import tqdm


def run(interp: Any, x_q: np.ndarray) -> np.ndarray:
    """Resize the input to ``len(x_q)``, invoke once and return the raw int8 output."""
    idx_in = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(idx_in, [len(x_q), INPUT_SIZE, INPUT_SIZE, 1])
    interp.allocate_tensors()
    interp.set_tensor(idx_in, x_q)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def main(argv: list[str] | None = None) -> int:
    """Run the checks; exit non-zero on the first failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)

    path = args.models / f"{MODEL_NAME}.tflite"
    sidecar = json.loads((args.models / f"{MODEL_NAME}.json").read_text())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sidecar["sha256"]:
        raise SystemExit(f"{path.name}: sha256 {digest} != sidecar {sidecar['sha256']}")
    if list(sidecar["labels"]) != list(LABELS):
        raise SystemExit(f"sidecar labels {sidecar['labels']} != {list(LABELS)}")

    interp = Interpreter(model_path=str(path), num_threads=1)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    signature = [int(s) for s in inp["shape_signature"]]
    print(f"input  {inp['dtype'].__name__} signature {signature} quant {inp['quantization']}")
    out_signature = [int(s) for s in out["shape_signature"]]
    print(f"output {out['dtype'].__name__} signature {out_signature} quant {out['quantization']}")
    if inp["dtype"] != np.int8 or out["dtype"] != np.int8 or signature[0] != -1:
        raise SystemExit("expected int8 input/output with a dynamic batch dimension")
    q_in = QuantParams(float(inp["quantization"][0]), int(inp["quantization"][1]))
    lut = uint8_to_int8_lut(q_in)

    have_data = args.data.is_file()
    if have_data:
        with np.load(args.data) as d:
            x_test, y_test = d["x_test"], d["y_test"].astype(np.int64)
        gray = resize_uint8(x_test)
    else:
        print(f"note: {args.data} missing; batch check uses random images, no accuracy check")
        gray = np.random.default_rng(0).integers(0, 256, (4, INPUT_SIZE, INPUT_SIZE), np.uint8)

    x4 = lut[gray[:4]][..., None]
    batched = run(interp, x4)
    singles = np.concatenate([run(interp, x4[i : i + 1]) for i in range(4)])
    if batched.shape != (4, len(LABELS)) or not np.array_equal(batched, singles):
        raise SystemExit(f"batch 4 != 4 x batch 1:\n{batched}\n{singles}")
    print(f"batch 4 == 4 x batch 1: ok (outputs {batched.shape} {batched.dtype})")

    if have_data:
        preds = []
        for start in tqdm(range(0, len(gray), 256), desc="ai_edge_litert eval", unit="batch"):
            preds.append(run(interp, lut[gray[start : start + 256]][..., None]).argmax(axis=1))
        acc = float(np.mean(np.concatenate(preds) == y_test))
        print(f"int8 test accuracy under ai_edge_litert: {acc:.2%} (n={len(y_test)})")
        eval_path = args.models / f"{MODEL_NAME}_eval.json"
        if eval_path.is_file():
            built = json.loads(eval_path.read_text())["int8_accuracy"]
            print(f"build-time (tf.lite) int8 accuracy:      {built:.2%}")
            if abs(acc - built) > 0.001:
                raise SystemExit("runtime accuracy differs from the build's by more than 0.1 pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
