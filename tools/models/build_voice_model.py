"""Train, convert, evaluate and document the int8 voice (prosody) model on EmoDB.

Why this script exists: no usable pretrained speech-emotion weights exist offline, so the
voice model is trained here, from our own prosody features (`sensekit.audio.prosody`) of the
535 EmoDB clips (CC0-1.0, read from ``../shared/data/emodb``, never copied into the repository).
Every number in ``models/voice_prosody_int8.md`` comes from this one script, in three steps
that run in two virtual environments:

1. ``features`` (``.venv``: sensekit, soundfile, soxr): each clip resampled from 22.05 to 16 kHz
   with soxr (the daemon analyses 16 kHz audio), then ``ProsodyExtractor(16000).extract``;
   the matrix goes to ``build/voice/emodb_features.npz`` (gitignored), with the feature
   version, feature names and label orders it was made with.
2. ``train`` (``.venv-build``: TensorFlow 2.15, numpy < 2): leave-one-speaker-out (LOSO,
   10 folds): per fold a float Keras model is trained on 9 speakers, scored on the 10th, and
   converted to a fully int8 LiteRT model (``models/voice_prosody_folds/``, committed, so the
   evaluation can be re-run without TensorFlow); then the shipped model is trained on all 10
   speakers (``models/voice_prosody_int8.tflite`` + ``.json`` sidecar), and also converted
   without quantization (``models/voice_prosody_float.tflite``, the float reference that
   ``sensekit eval`` compares the int8 model with; not used by the daemon). The same LOSO is
   run once more, float only, with the comparison arousal mapping. Every int8 conversion is
   calibrated on rows chosen by the shared rule of ``tools/models/representative.py``
   (see ``calibration_rows``).
3. ``evaluate`` (``.venv``): the int8 fold models run through ``sensekit.audio.voice.
   VoiceClassifier`` -- the daemon's own code path -- and the metrics, confusion matrices,
   float/int8 agreement and logistic-regression baselines are written to
   ``models/voice_prosody_int8_eval.json`` and ``models/voice_prosody_int8_confusion.png``.

Two conditions are scored in every fold, because a device runs in both: *uncalibrated* (the
test speaker z-scored with the training speakers' pooled statistics: a device before its site
normalisation has learned enough speech) and *calibrated* (the test speaker z-scored with its
own mean and standard deviation over all its clips; unsupervised, labels unused: a device whose
site normalisation has converged). The model is trained on both views of every training clip
(each speaker z-scored by its own statistics, and all z-scored by the pooled statistics), so
one model serves both states.

Run it through ``tools/models/build_voice_model.sh``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # sensekit from this checkout, installed or not
    sys.path.insert(0, str(REPO_ROOT))

from tools.models.representative import Representative, representative_rows  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "emodb"
BUILD_DIR = REPO_ROOT / "build" / "voice"
MODELS_DIR = REPO_ROOT / "models"
MODEL_NAME = "voice_prosody_int8"
FLOAT_NAME = "voice_prosody_float"
FOLDS_DIR = "voice_prosody_folds"
FOLDS_JSON = "folds.json"
FEATURES_FILE = "emodb_features.npz"
FLOAT_FILE = "float_predictions.npz"
SAMPLE_RATE = 16000
WINDOW_S = 2.0
STD_FLOOR = 1e-6
"""A feature with a smaller standard deviation is treated as constant (divided by 1)."""
REP_PER_CLASS = 35
"""Calibration clips per emotion class: the most that every model's smallest training class
can supply (disgust has 35 clips once speaker 16 is held out), so no sample is unbalanced."""
REP_SEED = 2026
"""Seed of the calibration draw, the same for every fold and the shipped model (and fixed
whatever --seed the training uses: the draw depends only on the training clips)."""

# EmoDB's emotions in the order of sensekit.types.VOICE_EMOTION_LABELS, and their names there.
EMODB_TO_EMOTION: dict[str, str] = {
    "anger": "angry",
    "boredom": "bored",
    "disgust": "disgust",
    "fear": "fear",
    "happiness": "happy",
    "neutral": "neutral",
    "sadness": "sad",
}
AROUSAL_MAPPING: dict[str, str] = {
    "boredom": "low",
    "sadness": "low",
    "neutral": "mid",
    "disgust": "mid",
    "anger": "high",
    "fear": "high",
    "happiness": "high",
}
"""The shipped mapping: circumplex placement, consistent with Schuller et al. (2009)'s binary
EmoDB arousal split (low = boredom, disgust, neutral, sadness), with its low half divided into
the deactivated states (boredom, sadness) and the composed ones (neutral, disgust)."""
COMPARISON_MAPPING: dict[str, str] = {
    "sadness": "low",
    "boredom": "mid",
    "neutral": "mid",
    "anger": "high",
    "disgust": "high",
    "fear": "high",
    "happiness": "high",
}
"""Only for comparison with the issue's reference numbers; not shipped."""

HEADS = ("arousal", "emotion")
CONDITIONS = ("uncalibrated", "calibrated")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Recipe:
    """The training recipe (also written to the sidecar and the evaluation JSON).

    One hidden-layer MLP with two softmax heads. `ensemble` > 1 averages that many such nets,
    each trained on its own seed: it evens out the seed-to-seed spread of single nets (about
    ±1.5 points of UAR on these 535 clips) but multiplies the size (8 KB per member), so the
    shipped recipe is a single net and the card reports the spread over seeds instead.
    """

    hidden: int = 64
    dropout: float = 0.3
    l2: float = 1e-3
    input_noise: float = 0.2
    learning_rate: float = 1e-3
    epochs: int = 150
    batch_size: int = 32
    ensemble: int = 1
    seed: int = 2026
    training_normalisation: str = "per-speaker and pooled"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    """The feature matrix of all clips with everything needed to interpret it."""

    features: FloatArray  # clips x features, raw (not standardised)
    files: tuple[str, ...]
    speakers: npt.NDArray[np.str_]
    emotions: npt.NDArray[np.str_]  # EmoDB names
    feature_names: tuple[str, ...]
    feature_version: str
    arousal_labels: tuple[str, ...]
    emotion_labels: tuple[str, ...]

    @classmethod
    def load(cls, path: Path) -> Dataset:
        if not path.is_file():
            raise SystemExit(f"{path} not found: run the `features` step first (in .venv)")
        with np.load(path) as d:
            return cls(
                features=d["features"].astype(np.float32),
                files=tuple(str(f) for f in d["files"]),
                speakers=d["speakers"].astype(str),
                emotions=d["emotions"].astype(str),
                feature_names=tuple(str(n) for n in d["feature_names"]),
                feature_version=str(d["feature_version"]),
                arousal_labels=tuple(str(n) for n in d["arousal_labels"]),
                emotion_labels=tuple(str(n) for n in d["emotion_labels"]),
            )

    @property
    def speaker_ids(self) -> list[str]:
        return sorted(set(self.speakers.tolist()))

    def emotion_targets(self) -> IntArray:
        """Class indices in `emotion_labels` order."""
        return np.array(
            [self.emotion_labels.index(EMODB_TO_EMOTION[e]) for e in self.emotions], dtype=np.int64
        )

    def arousal_targets(self, mapping: Mapping[str, str]) -> IntArray:
        return np.array(
            [self.arousal_labels.index(mapping[e]) for e in self.emotions], dtype=np.int64
        )


def read_labels(data: Path) -> list[dict[str, str]]:
    """The rows of EmoDB's labels.csv (file, speaker, emotion), sorted by file name."""
    labels = data / "labels.csv"
    if not labels.is_file():
        raise SystemExit(
            f"EmoDB not found at {data}: it lives in the shared data folder beside the "
            "repository (never in it); pass --data PATH"
        )
    with labels.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return sorted(rows, key=lambda r: r["file"])


def extract_features(data: Path, files: Sequence[str], progress: bool = True) -> FloatArray:
    """Prosody features of the given EmoDB clips with this checkout's extractor."""
    from sensekit.audio.prosody import ProsodyExtractor
    from sensekit.calibration.evaluate.voice import load_clip  # the eval's own clip reader

    extractor = ProsodyExtractor(SAMPLE_RATE)
    rows = [
        extractor.extract(load_clip(data / "wav" / name))
        for name in tqdm(files, desc="features", unit="clip", disable=not progress)
    ]
    return np.stack(rows).astype(np.float32)


# --------------------------------------------------------------------------- standardisation


def statistics(features: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-feature mean and (population) standard deviation, computed in float64.

    A standard deviation under STD_FLOOR becomes 1, so a constant feature is centred, not
    blown up.
    """
    x = features.astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    return mean.astype(np.float32), np.where(std < STD_FLOOR, 1.0, std).astype(np.float32)


def standardise(features: FloatArray, mean: FloatArray, std: FloatArray) -> FloatArray:
    """z = (x - mean) / std in float32: what the daemon feeds the model."""
    return ((features - mean) / std).astype(np.float32)


def per_speaker(features: FloatArray, speakers: npt.NDArray[np.str_]) -> FloatArray:
    """Each speaker's clips z-scored with that speaker's own statistics (calibrated view)."""
    out = np.empty_like(features)
    for speaker in sorted(set(speakers.tolist())):
        rows = speakers == speaker
        out[rows] = standardise(features[rows], *statistics(features[rows]))
    return out


def training_views(features: FloatArray, speakers: npt.NDArray[np.str_]) -> FloatArray:
    """Both standardisations of the training clips, stacked: per-speaker, then pooled."""
    return np.concatenate(
        [per_speaker(features, speakers), standardise(features, *statistics(features))]
    )


def test_views(
    features: FloatArray, train_mean: FloatArray, train_std: FloatArray
) -> dict[str, FloatArray]:
    """The held-out speaker's clips as an uncalibrated and as a calibrated device sees them."""
    return {
        "uncalibrated": standardise(features, train_mean, train_std),
        "calibrated": standardise(features, *statistics(features)),
    }


# --------------------------------------------------------------------------- metrics


def confusion(truth: IntArray, predicted: IntArray, classes: int) -> IntArray:
    """Counts, rows = true class, columns = predicted class."""
    flat = truth.astype(np.int64) * classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def scores(truth: IntArray, predicted: IntArray, classes: int) -> dict[str, Any]:
    """Accuracy and UAR (mean recall over the classes present in `truth`)."""
    counts = confusion(truth, predicted, classes)
    present = counts.sum(axis=1) > 0
    recall = np.diag(counts)[present] / counts.sum(axis=1)[present]
    return {
        "n": len(truth),
        "accuracy": float(np.mean(truth == predicted)),
        "uar": float(np.mean(recall)),
        "confusion": counts.tolist(),
    }


def balanced_weights(targets: IntArray, classes: int) -> FloatArray:
    """Per-sample weights n / (k * n_class): every class weighs the same in the loss (UAR)."""
    counts = np.bincount(targets, minlength=classes).astype(np.float64)
    weights = len(targets) / (classes * np.maximum(counts, 1.0))
    return weights[targets].astype(np.float32)


# --------------------------------------------------------------------------- step 1: features


def step_features(args: argparse.Namespace) -> int:
    """Extract the prosody features of every clip into build/voice/emodb_features.npz."""
    from sensekit.audio.prosody import FEATURE_NAMES, FEATURE_VERSION
    from sensekit.types import VOICE_AROUSAL_LABELS, VOICE_EMOTION_LABELS

    if tuple(EMODB_TO_EMOTION.values()) != VOICE_EMOTION_LABELS:
        raise RuntimeError("EMODB_TO_EMOTION is not in VOICE_EMOTION_LABELS order")
    rows = read_labels(args.data)
    files = [r["file"] for r in rows]
    start = time.perf_counter()
    features = extract_features(args.data, files)
    elapsed = time.perf_counter() - start
    args.build.mkdir(parents=True, exist_ok=True)
    out = args.build / FEATURES_FILE
    np.savez(
        out,
        features=features,
        files=np.array(files),
        speakers=np.array([r["speaker"] for r in rows]),
        emotions=np.array([r["emotion"] for r in rows]),
        feature_names=np.array(FEATURE_NAMES),
        feature_version=np.array(FEATURE_VERSION),
        arousal_labels=np.array(VOICE_AROUSAL_LABELS),
        emotion_labels=np.array(VOICE_EMOTION_LABELS),
    )
    print(
        f"wrote {out}: {features.shape[0]} clips x {features.shape[1]} features "
        f"({FEATURE_VERSION}), {elapsed / len(files) * 1000:.1f} ms per clip incl. I/O"
    )
    return 0


# --------------------------------------------------------------------------- step 2: train


def build_member(features: int, recipe: Recipe, name: str) -> Any:
    """One MLP: input noise, a ReLU hidden layer with dropout, two softmax heads."""
    import tensorflow as tf

    reg = tf.keras.regularizers.l2(recipe.l2)
    inputs = tf.keras.Input((features,), name="features")
    hidden = tf.keras.layers.GaussianNoise(recipe.input_noise)(inputs)
    hidden = tf.keras.layers.Dense(recipe.hidden, activation="relu", kernel_regularizer=reg)(hidden)
    hidden = tf.keras.layers.Dropout(recipe.dropout)(hidden)
    arousal = tf.keras.layers.Dense(
        3, activation="softmax", kernel_regularizer=reg, name="arousal"
    )(hidden)
    emotion = tf.keras.layers.Dense(
        7, activation="softmax", kernel_regularizer=reg, name="emotion"
    )(hidden)
    model = tf.keras.Model(inputs, [arousal, emotion], name=name)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(recipe.learning_rate),
        loss={head: "sparse_categorical_crossentropy" for head in HEADS},
    )
    return model


def train_ensemble(
    x: FloatArray, y_arousal: IntArray, y_emotion: IntArray, recipe: Recipe, seed: int
) -> Any:
    """Train `recipe.ensemble` members on their own seeds; return one averaging model.

    Members are trained independently (an ensemble, not one wide net) and then joined behind
    one input so that the daemon still makes a single interpreter call.
    """
    import tensorflow as tf

    members = []
    for k in range(recipe.ensemble):
        # A fresh Keras state and seed per net: each model then depends only on its data and
        # seed, not on what this process trained before (checked: same bytes either way).
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(seed + k)
        member = build_member(x.shape[1], recipe, name=f"member_{k}")
        member.fit(
            x,
            {"arousal": y_arousal, "emotion": y_emotion},
            sample_weight={
                "arousal": balanced_weights(y_arousal, 3),
                "emotion": balanced_weights(y_emotion, 7),
            },
            epochs=recipe.epochs,
            batch_size=recipe.batch_size,
            shuffle=True,
            verbose=0,
        )
        members.append(member)
    inputs = tf.keras.Input((x.shape[1],), name="features")
    outputs = [member(inputs, training=False) for member in members]
    if len(members) == 1:
        return tf.keras.Model(inputs, outputs[0])
    arousal = tf.keras.layers.Average(name="arousal")([o[0] for o in outputs])
    emotion = tf.keras.layers.Average(name="emotion")([o[1] for o in outputs])
    return tf.keras.Model(inputs, [arousal, emotion])


def predict_float(model: Any, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    arousal, emotion = model(x, training=False)
    return arousal.numpy().astype(np.float32), emotion.numpy().astype(np.float32)


def calibration_rows(
    data: Dataset, train: npt.NDArray[np.bool_], views: FloatArray, per_class: int, seed: int
) -> tuple[FloatArray, Representative]:
    """The representative rows of a model trained on the clips `train` (a mask over all clips).

    The shared rule (``tools/models/representative.py``) draws `per_class` *clips* per emotion
    class (the 7 EmoDB classes, label order) from the training clips only, with PCG64(seed).
    A clip's two standardised views (`views`: per-speaker rows, then pooled rows, as built by
    ``training_views``) are drawn **together**: each drawn clip contributes its per-speaker
    row then its pooled row. Why together: the two views are one utterance as a calibrated and
    as an uncalibrated device sees it, so the sample stays balanced over classes *and* over the
    two device states, and the manifest's clip indices say exactly which rows were fed.
    """
    train_idx = np.flatnonzero(train)
    sample = representative_rows(
        data.emotion_targets(),
        train_idx,
        classes=range(len(data.emotion_labels)),
        class_names=data.emotion_labels,
        per_class=per_class,
        seed=seed,
    )
    position = np.searchsorted(train_idx, sample.indices)
    rows = np.stack([views[position], views[len(train_idx) + position]], axis=1)
    manifest = {
        **sample.manifest,
        "unit": (
            "EmoDB clip (index into labels.csv sorted by file name); both standardised views "
            "of each drawn clip are fed, per-speaker then pooled"
        ),
        "rows_fed": 2 * len(sample.indices),
    }
    return rows.reshape(-1, views.shape[1]), Representative(sample.indices, manifest)


def convert_int8(model: Any, representative: FloatArray) -> bytes:
    """A fully int8 LiteRT model with a dynamic batch, calibrated on `representative`.

    Traced through a ``tf.function`` with batch ``None`` (``shape_signature [-1, F]``) so the
    daemon scores all windows of a cycle in one call. The representative rows (chosen by
    ``calibration_rows``) are fed one at a time in order.
    """
    import tensorflow as tf

    spec = tf.TensorSpec([None, representative.shape[1]], tf.float32, name="features")
    serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    concrete = serve.get_concrete_function()

    def rows() -> Iterator[list[FloatArray]]:
        for row in representative:
            yield [row[None, :]]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = rows
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def convert_float(model: Any, features: int) -> bytes:
    """The same traced network without quantization: float32 z-scores in, float32 out.

    Same dynamic batch as the int8 model; the input is the standardised features the int8
    model's caller quantises. The reference for ``sensekit eval``; not used by the daemon.
    """
    import tensorflow as tf

    spec = tf.TensorSpec([None, features], tf.float32, name="features")
    serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], model
    )
    tflite = bytes(converter.convert())
    interp = tf.lite.Interpreter(model_content=tflite)
    (inp,) = interp.get_input_details()
    if inp["dtype"] != np.float32 or [int(v) for v in inp["shape_signature"]] != [-1, features]:
        raise RuntimeError(f"float export input {inp}: expected float32 with a dynamic batch")
    if any(out["dtype"] != np.float32 for out in interp.get_output_details()):
        raise RuntimeError("float export has a non-float output")
    return tflite


def quantization_of(tflite: bytes) -> dict[str, Any]:
    """Input and per-head output quantization, for the sidecar (heads told apart by size)."""
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=tflite)
    (inp,) = interp.get_input_details()
    if inp["dtype"] != np.int8 or int(inp["shape_signature"][0]) != -1:
        raise RuntimeError(f"not a dynamic-batch int8 model: {inp}")
    outputs = {}
    for out in interp.get_output_details():
        if out["dtype"] != np.int8:
            raise RuntimeError(f"output {out['name']} is {out['dtype']}, not int8")
        head = "arousal" if int(out["shape"][-1]) == 3 else "emotion"
        scale, zero_point = out["quantization"]
        outputs[head] = {"scale": float(scale), "zero_point": int(zero_point)}
    scale, zero_point = inp["quantization"]
    return {
        "input_quantization": {"scale": float(scale), "zero_point": int(zero_point)},
        "output_quantization": outputs,
    }


def sidecar_common(data: Dataset, recipe: Recipe) -> dict[str, Any]:
    """What the shipped model's sidecar and the folds' JSON share."""
    return {
        "feature_version": data.feature_version,
        "feature_names": list(data.feature_names),
        "sample_rate": SAMPLE_RATE,
        "window_s": WINDOW_S,
        "input": "z-scored features: (x - mean) / std, float32, quantized to int8 by the caller",
        "arousal_labels": list(data.arousal_labels),
        "emotion_labels": list(data.emotion_labels),
        "emodb_to_emotion": EMODB_TO_EMOTION,
        "arousal_mapping": AROUSAL_MAPPING,
        "output": "softmax probabilities per head (mean over the ensemble members)",
        "training": {
            "data": "EmoDB (Burkhardt et al. 2005), CC0-1.0, 535 clips, 10 speakers",
            **asdict(recipe),
        },
    }


def loso_float(
    data: Dataset,
    mapping: Mapping[str, str],
    recipe: Recipe,
    folds_dir: Path | None,
    calibration: tuple[int, int] = (REP_PER_CLASS, REP_SEED),
) -> dict[str, FloatArray]:
    """Train every LOSO fold; return float probabilities per head and condition.

    With `folds_dir`, each fold's model is also converted to int8 and written there with
    its training statistics and calibration manifest (the folds' JSON is written by the
    caller); `calibration` is the rule's (per_class, seed).
    """
    x, speakers = data.features, data.speakers
    y_arousal, y_emotion = data.arousal_targets(mapping), data.emotion_targets()
    out = {
        f"{head}_{cond}": np.zeros((len(x), 3 if head == "arousal" else 7), np.float32)
        for head in HEADS
        for cond in CONDITIONS
    }
    fold_entries: dict[str, Any] = {}
    for i, speaker in enumerate(tqdm(data.speaker_ids, desc="LOSO folds", unit="fold")):
        train, test = speakers != speaker, speakers == speaker
        views = training_views(x[train], speakers[train])
        model = train_ensemble(
            views,
            np.tile(y_arousal[train], 2),
            np.tile(y_emotion[train], 2),
            recipe,
            seed=recipe.seed + 100 * i,
        )
        mean, std = statistics(x[train])
        for cond, z in test_views(x[test], mean, std).items():
            arousal, emotion = predict_float(model, z)
            out[f"arousal_{cond}"][test] = arousal
            out[f"emotion_{cond}"][test] = emotion
        if folds_dir is not None:
            rows, sample = calibration_rows(data, train, views, *calibration)
            tflite = convert_int8(model, rows)
            name = f"fold_{speaker}.tflite"
            (folds_dir / name).write_bytes(tflite)
            fold_entries[speaker] = {
                "model": name,
                "sha256": hashlib.sha256(tflite).hexdigest(),
                "bytes": len(tflite),
                "test_speaker": speaker,
                "train_speakers": sorted(set(speakers[train].tolist())),
                "standardisation": {"mean": mean.tolist(), "std": std.tolist()},
                **quantization_of(tflite),
                "representative": sample.manifest,
            }
    if folds_dir is not None:
        out["_fold_entries"] = fold_entries  # type: ignore[assignment]
    return out


def step_train(args: argparse.Namespace) -> int:
    """LOSO float + int8 fold models, the comparison mapping, and the shipped model."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    data = Dataset.load(args.build / FEATURES_FILE)
    recipe = Recipe(ensemble=args.ensemble, seed=args.seed)
    folds_dir = args.models / FOLDS_DIR
    folds_dir.mkdir(parents=True, exist_ok=True)
    for old in folds_dir.glob("fold_*.tflite"):
        old.unlink()

    print(f"LOSO, shipped mapping, {recipe}")
    calibration = (args.per_class, args.rep_seed)
    shipped = loso_float(data, AROUSAL_MAPPING, recipe, folds_dir, calibration)
    fold_entries = shipped.pop("_fold_entries")
    folds_json = {
        **sidecar_common(data, recipe),
        "note": (
            "LOSO evaluation models: fold_<speaker>.tflite was trained on the other 9 EmoDB "
            "speakers; `standardisation` is those 9 speakers' pooled statistics (the "
            "uncalibrated input). Not for deployment: use voice_prosody_int8.tflite."
        ),
        "folds": fold_entries,
    }
    (folds_dir / FOLDS_JSON).write_text(json.dumps(folds_json, indent=1) + "\n")
    print(f"wrote {len(fold_entries)} fold models and {FOLDS_JSON} to {folds_dir}")

    comparison: dict[str, FloatArray] = {}
    if not args.skip_comparison:
        print("LOSO, comparison mapping (float only)")
        comparison = loso_float(data, COMPARISON_MAPPING, recipe, None)

    print("final model: all 10 speakers")
    x, speakers = data.features, data.speakers
    views = training_views(x, speakers)
    final = train_ensemble(
        views,
        np.tile(data.arousal_targets(AROUSAL_MAPPING), 2),
        np.tile(data.emotion_targets(), 2),
        recipe,
        seed=recipe.seed + 10_000,
    )
    rows, sample = calibration_rows(data, np.ones(len(x), bool), views, *calibration)
    print(f"calibration: {sample.manifest['rows_fed']} rows, {sample.manifest['counts']}")
    tflite = convert_int8(final, rows)
    model_path = args.models / f"{MODEL_NAME}.tflite"
    model_path.write_bytes(tflite)
    digest = hashlib.sha256(tflite).hexdigest()
    float_tflite = convert_float(final, x.shape[1])
    float_path = args.models / f"{FLOAT_NAME}.tflite"
    float_path.write_bytes(float_tflite)
    float_reference = {
        "model": float_path.name,
        "sha256": hashlib.sha256(float_tflite).hexdigest(),
        "bytes": len(float_tflite),
        "input": "float32 N x 73 z-scores (the same standardisation as this model), unquantized",
        "use": "reference for the float-vs-int8 agreement (sensekit eval); not used by the daemon",
    }
    print(f"wrote {float_path} ({len(float_tflite)} bytes, sha256 {float_reference['sha256']})")
    mean, std = statistics(x)
    sidecar = {
        "model": model_path.name,
        "sha256": digest,
        "bytes": len(tflite),
        **sidecar_common(data, recipe),
        "standardisation": {
            "statistics": "pooled over all 535 EmoDB clips (the uncalibrated input)",
            "mean": mean.tolist(),
            "std": std.tolist(),
        },
        **quantization_of(tflite),
        "representative": sample.manifest,
        "float_reference": float_reference,
        "tensorflow": tf.__version__,
    }
    (args.models / f"{MODEL_NAME}.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    print(f"wrote {model_path} ({len(tflite)} bytes, sha256 {digest}) and its sidecar")
    final_arousal, final_emotion = predict_float(final, standardise(x, mean, std))

    arrays = {f"shipped_{k}": v for k, v in shipped.items()}
    arrays |= {f"comparison_{k}": v for k, v in comparison.items()}
    arrays |= {"final_arousal": final_arousal, "final_emotion": final_emotion}
    np.savez(
        args.build / FLOAT_FILE,
        files=np.array(data.files),
        tensorflow=np.array(tf.__version__),
        recipe=np.array(json.dumps(asdict(recipe))),
        **arrays,
    )
    print(f"wrote {args.build / FLOAT_FILE}")
    return 0


# --------------------------------------------------------------------------- step 3: evaluate


def evaluate_int8_fold(
    models: Path, speaker: str, views: Mapping[str, FloatArray]
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """Run one fold's committed int8 model through the daemon's VoiceClassifier."""
    from sensekit.audio.voice import VoiceClassifier, VoiceModelInfo

    folds = models / FOLDS_DIR
    info = VoiceModelInfo.load(folds / FOLDS_JSON, fold=speaker)
    classifier = VoiceClassifier(folds / f"fold_{speaker}.tflite", info=info)
    return {cond: classifier.probabilities(z) for cond, z in views.items()}


def fold_views(data: Dataset, speaker: str, models: Path) -> dict[str, FloatArray]:
    """The test speaker's two standardised views, using the fold JSON's training statistics."""
    folds = json.loads((models / FOLDS_DIR / FOLDS_JSON).read_text())
    entry = folds["folds"][speaker]
    mean = np.asarray(entry["standardisation"]["mean"], np.float32)
    std = np.asarray(entry["standardisation"]["std"], np.float32)
    return test_views(data.features[data.speakers == speaker], mean, std)


def head_scores(
    truth: Mapping[str, IntArray], predicted: Mapping[str, IntArray]
) -> dict[str, dict[str, Any]]:
    return {
        head: scores(truth[head], predicted[head], 3 if head == "arousal" else 7) for head in HEADS
    }


def logistic_baseline(data: Dataset, mapping: Mapping[str, str]) -> dict[str, Any]:
    """Logistic regression (C=1) on the same features and training views, LOSO, pooled."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x, speakers = data.features, data.speakers
    truth = {"arousal": data.arousal_targets(mapping), "emotion": data.emotion_targets()}
    predicted = {f"{h}_{c}": np.zeros(len(x), np.int64) for h in HEADS for c in CONDITIONS}
    for speaker in data.speaker_ids:
        train, test = speakers != speaker, speakers == speaker
        views = training_views(x[train], speakers[train])
        tests = test_views(x[test], *statistics(x[train]))
        for head in HEADS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = LogisticRegression(C=1.0, max_iter=5000)
                model.fit(views, np.tile(truth[head][train], 2))
            for cond, z in tests.items():
                predicted[f"{head}_{cond}"][test] = model.predict(z)
    return {
        cond: {
            head: {
                k: v
                for k, v in scores(
                    truth[head], predicted[f"{head}_{cond}"], 3 if head == "arousal" else 7
                ).items()
                if k != "confusion"
            }
            for head in HEADS
        }
        for cond in CONDITIONS
    }


def plot_confusions(
    result: Mapping[str, Any], labels: Mapping[str, Sequence[str]], png: Path
) -> None:
    """Row-normalised LOSO confusion matrices: a row per head, float and int8 per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(cond, kind) for cond in CONDITIONS for kind in ("float", "int8")]
    fig, axes = plt.subplots(len(HEADS), len(panels), figsize=(20, 10), constrained_layout=True)
    for row, head in enumerate(HEADS):
        names = labels[head]
        for col, (cond, kind) in enumerate(panels):
            ax = axes[row, col]
            entry = result["pooled"][kind][cond][head]
            counts = np.asarray(entry["confusion"], dtype=np.float64)
            mat = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
            im = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="Blues")
            ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
            ax.set_yticks(range(len(names)), names)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(
                f"{head}, {kind}, {cond}\nacc {entry['accuracy']:.3f}  UAR {entry['uar']:.3f}",
                fontsize=10,
            )
            for i in range(len(names)):
                for j in range(len(names)):
                    ax.text(
                        j,
                        i,
                        f"{mat[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8 if len(names) > 3 else 10,
                        color="white" if mat[i, j] > 0.5 else "black",
                    )
    fig.colorbar(im, ax=axes, shrink=0.6, label="fraction of true class")
    fig.suptitle(
        "voice_prosody_int8 recipe on EmoDB, leave-one-speaker-out (535 clips, 10 folds), "
        "rows normalised"
    )
    # No Software entry: the PNG's bytes then depend only on the numbers.
    fig.savefig(png, dpi=80, metadata={"Software": None})
    plt.close(fig)


def step_evaluate(args: argparse.Namespace) -> int:
    """Score the int8 fold models with VoiceClassifier; write the eval JSON and the PNG."""
    from sensekit.audio.voice import VoiceClassifier

    data = Dataset.load(args.build / FEATURES_FILE)
    float_path = args.build / FLOAT_FILE
    if not float_path.is_file():
        raise SystemExit(f"{float_path} not found: run the `train` step first (in .venv-build)")
    with np.load(float_path) as f:
        floats = {k: f[k] for k in f.files}
    if tuple(str(n) for n in floats["files"]) != data.files:
        raise SystemExit("float predictions and features list different clips: rerun `train`")

    truth = {"arousal": data.arousal_targets(AROUSAL_MAPPING), "emotion": data.emotion_targets()}
    float_probs = {f"{h}_{c}": floats[f"shipped_{h}_{c}"] for h in HEADS for c in CONDITIONS}
    int8 = {
        f"{h}_{c}": np.zeros_like(floats[f"shipped_{h}_{c}"]) for h in HEADS for c in CONDITIONS
    }
    folds: dict[str, Any] = {}
    for speaker in tqdm(data.speaker_ids, desc="int8 folds", unit="fold"):
        test = data.speakers == speaker
        outputs = evaluate_int8_fold(args.models, speaker, fold_views(data, speaker, args.models))
        for cond, (arousal, emotion) in outputs.items():
            int8[f"arousal_{cond}"][test] = arousal
            int8[f"emotion_{cond}"][test] = emotion
        fold_truth = {h: truth[h][test] for h in HEADS}
        folds[speaker] = {
            kind: {
                cond: head_scores(
                    fold_truth, {h: probs[f"{h}_{cond}"][test].argmax(axis=1) for h in HEADS}
                )
                for cond in CONDITIONS
            }
            for kind, probs in (("float", float_probs), ("int8", int8))
        }

    pooled = {
        kind: {
            cond: head_scores(truth, {h: probs[f"{h}_{cond}"].argmax(axis=1) for h in HEADS})
            for cond in CONDITIONS
        }
        for kind, probs in (("float", float_probs), ("int8", int8))
    }
    agreement = {
        cond: {
            h: float(np.mean(float_probs[f"{h}_{cond}"].argmax(1) == int8[f"{h}_{cond}"].argmax(1)))
            for h in HEADS
        }
        for cond in CONDITIONS
    }
    mean_over_folds = {
        kind: {
            cond: {
                h: {
                    m: float(np.mean([folds[s][kind][cond][h][m] for s in folds]))
                    for m in ("accuracy", "uar")
                }
                for h in HEADS
            }
            for cond in CONDITIONS
        }
        for kind in ("float", "int8")
    }

    comparison: dict[str, Any] = {}
    if "comparison_arousal_uncalibrated" in floats:
        comp_truth = data.arousal_targets(COMPARISON_MAPPING)
        comparison = {
            "mapping": COMPARISON_MAPPING,
            "note": "for comparison with the issue's reference only; not shipped",
            "float": {
                cond: {
                    k: v
                    for k, v in scores(
                        comp_truth, floats[f"comparison_arousal_{cond}"].argmax(axis=1), 3
                    ).items()
                }
                for cond in CONDITIONS
            },
            "logistic_regression": logistic_baseline(data, COMPARISON_MAPPING),
        }

    # The shipped model: int8 (VoiceClassifier) vs its float original on its own training
    # clips, pooled standardisation. Not an accuracy: a check that conversion kept the model.
    shipped = VoiceClassifier(args.models / f"{MODEL_NAME}.tflite")
    z_all = standardise(data.features, shipped.training_mean, shipped.training_std)
    final_arousal, final_emotion = shipped.probabilities(z_all)
    final_agreement = {
        "arousal": float(np.mean(final_arousal.argmax(1) == floats["final_arousal"].argmax(1))),
        "emotion": float(np.mean(final_emotion.argmax(1) == floats["final_emotion"].argmax(1))),
    }
    float_reference = float_reference_check(
        args.models, z_all, floats, final_arousal, final_emotion
    )
    model_file = args.models / f"{MODEL_NAME}.tflite"
    sidecar = json.loads(model_file.with_suffix(".json").read_text())
    folds_json = json.loads((args.models / FOLDS_DIR / FOLDS_JSON).read_text())
    result = {
        "model": model_file.name,
        "model_sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        "model_bytes": model_file.stat().st_size,
        "feature_version": data.feature_version,
        "tensorflow": str(floats["tensorflow"]),
        "recipe": json.loads(str(floats["recipe"])),
        "protocol": (
            "leave-one-speaker-out over the 10 EmoDB speakers; metrics pooled over the 535 "
            "held-out predictions (mean over folds given separately); UAR = mean recall over "
            "the classes present. uncalibrated: test speaker z-scored with the 9 training "
            "speakers' pooled statistics; calibrated: with its own statistics over all its "
            "clips (unsupervised). int8 = the fold's LiteRT model run by "
            "sensekit.audio.voice.VoiceClassifier."
        ),
        "arousal_mapping": AROUSAL_MAPPING,
        "labels": {"arousal": list(data.arousal_labels), "emotion": list(data.emotion_labels)},
        "class_counts": {
            "arousal": np.bincount(truth["arousal"], minlength=3).tolist(),
            "emotion": np.bincount(truth["emotion"], minlength=7).tolist(),
        },
        "pooled": pooled,
        "mean_over_folds": mean_over_folds,
        "agreement_float_int8": agreement,
        "folds": folds,
        "comparison_mapping": comparison,
        "logistic_regression": logistic_baseline(data, AROUSAL_MAPPING),
        "shipped_model_float_int8_agreement_on_training_clips": final_agreement,
        "float_reference": float_reference,
        "representative": {
            "shipped": sidecar["representative"],
            "folds": {s: e["representative"] for s, e in folds_json["folds"].items()},
        },
    }
    out = args.models / f"{MODEL_NAME}_eval.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    png = args.models / f"{MODEL_NAME}_confusion.png"
    plot_confusions(result, {"arousal": data.arousal_labels, "emotion": data.emotion_labels}, png)
    print_report(result)
    print(f"wrote {out} and {png}")
    return 0


def float_reference_check(
    models: Path,
    z: FloatArray,
    floats: Mapping[str, Any],
    int8_arousal: FloatArray,
    int8_emotion: FloatArray,
) -> dict[str, Any]:
    """The float export under the runtime interpreter on all clips (pooled standardisation).

    Its argmax must match the Keras model it was converted from (a check of the export), and
    its agreement with the int8 model is what ``sensekit eval`` measures on a site's data.
    """
    from sensekit.runtime import TFLiteModel

    path = models / f"{FLOAT_NAME}.tflite"
    model = TFLiteModel(path)
    model.set_batch_size(len(z))
    outputs = model.run([z])
    by_head = {"arousal" if o.shape[-1] == 3 else "emotion": o for o in outputs}
    int8 = {"arousal": int8_arousal, "emotion": int8_emotion}
    return {
        "model": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "bytes": path.stat().st_size,
        "agreement_with_keras_on_training_clips": {
            h: float(np.mean(by_head[h].argmax(1) == floats[f"final_{h}"].argmax(1))) for h in HEADS
        },
        "max_abs_difference_from_keras": float(
            max(np.abs(by_head[h] - floats[f"final_{h}"]).max() for h in HEADS)
        ),
        "agreement_with_int8_on_training_clips": {
            h: float(np.mean(by_head[h].argmax(1) == int8[h].argmax(1))) for h in HEADS
        },
    }


def print_report(result: Mapping[str, Any]) -> None:
    """The card's tables as Markdown."""
    print("\n| model | condition | arousal acc | arousal UAR | emotion acc | emotion UAR |")
    print("|---|---|---|---|---|---|")
    for kind in ("float", "int8"):
        for cond in CONDITIONS:
            a = result["pooled"][kind][cond]["arousal"]
            e = result["pooled"][kind][cond]["emotion"]
            print(
                f"| {kind} | {cond} | {a['accuracy']:.3f} | {a['uar']:.3f} | "
                f"{e['accuracy']:.3f} | {e['uar']:.3f} |"
            )
    print("\nagreement float vs int8:", json.dumps(result["agreement_float_int8"]))
    lr = result["logistic_regression"]
    print("logistic regression (shipped mapping):", json.dumps(lr))
    if result["comparison_mapping"]:
        comp = result["comparison_mapping"]
        for cond in CONDITIONS:
            f = comp["float"][cond]
            print(
                f"comparison mapping, MLP float, {cond}: acc {f['accuracy']:.3f} UAR {f['uar']:.3f}"
            )
        print("comparison mapping, LR:", json.dumps(comp["logistic_regression"]))
    print(
        "shipped model float/int8 agreement on training clips:",
        json.dumps(result["shipped_model_float_int8_agreement_on_training_clips"]),
    )
    print("float export (voice_prosody_float.tflite):", json.dumps(result["float_reference"]))


# --------------------------------------------------------------------------- step: bench


def step_bench(args: argparse.Namespace) -> int:
    """Median time of feature extraction per 2 s window and of classify() per batch size."""
    from sensekit.audio.prosody import ProsodyExtractor
    from sensekit.audio.voice import VoiceClassifier
    from sensekit.calibration.evaluate.voice import load_clip  # the eval's own clip reader

    rows = read_labels(args.data)[:: max(1, 535 // 60)]
    clips = [load_clip(args.data / "wav" / r["file"]) for r in rows]
    extractor = ProsodyExtractor(SAMPLE_RATE)
    for clip in clips[:5]:
        extractor.extract(clip)
    times = []
    for _ in range(3):
        for clip in clips:
            start = time.perf_counter()
            extractor.extract(clip)
            times.append(time.perf_counter() - start)
    print(f"features: median {np.median(times) * 1000:.2f} ms per 2 s window ({len(times)} runs)")
    classifier = VoiceClassifier()
    z = standardise(
        np.stack([extractor.extract(c) for c in clips[:8]]),
        classifier.training_mean,
        classifier.training_std,
    )
    for batch in (1, 8):
        x = z[:batch]
        for _ in range(50):
            classifier.classify(x)
        runs = []
        for _ in range(args.runs):
            start = time.perf_counter()
            classifier.classify(x)
            runs.append(time.perf_counter() - start)
        print(
            f"classify batch {batch}: median {np.median(runs) * 1000:.3f} ms, "
            f"p90 {np.percentile(runs, 90) * 1000:.3f} ms ({args.runs} runs)"
        )
    return 0


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Dispatch the steps (each runs in its own venv; see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("step", choices=("features", "train", "evaluate", "bench"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="EmoDB folder")
    parser.add_argument("--build", type=Path, default=BUILD_DIR, help="scratch (gitignored)")
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help="output folder")
    parser.add_argument("--ensemble", type=int, default=Recipe.ensemble)
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument(
        "--per-class", type=int, default=REP_PER_CLASS, help="train: calibration clips per class"
    )
    parser.add_argument(
        "--rep-seed", type=int, default=REP_SEED, help="train: seed of the calibration draw"
    )
    parser.add_argument("--skip-comparison", action="store_true", help="train: skip it")
    parser.add_argument("--runs", type=int, default=500, help="bench: timed calls")
    args = parser.parse_args(argv)
    steps = {
        "features": step_features,
        "train": step_train,
        "evaluate": step_evaluate,
        "bench": step_bench,
    }
    return steps[args.step](args)


if __name__ == "__main__":
    raise SystemExit(main())
