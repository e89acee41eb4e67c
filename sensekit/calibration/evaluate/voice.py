"""The voice model on EmoDB, speaker-independently: accuracy, calibration, float vs int8.

The shipped model was trained on all ten EmoDB speakers, so its accuracy on EmoDB would be a
training score. Accuracy therefore comes from the leave-one-speaker-out fold models
(`voice_prosody_folds/fold_XX.tflite`, each trained without speaker XX), as in the model card:
each clip is resampled 22.05 -> 16 kHz with soxr, featurised by ProsodyExtractor, and z-scored
two ways (`uncalibrated`: the fold's training statistics, a device before site normalisation;
`calibrated`: the speaker's own statistics, a device after it), then scored by the fold's int8
model through VoiceClassifier at T = 1.

Temperature, one per head, is fitted on the out-of-fold probabilities of both conditions
together (the runtime applies one temperature whatever the normalisation state). Its "after"
ECE is nested so it stays speaker-independent too: each speaker's probabilities are rescaled
with a temperature fitted on the other nine speakers only. The temperature to save is the one
fitted on all speakers; it is fitted on the fold models and applied to the shipped model,
which shares their recipe.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from sensekit.calibration.evaluate import metrics
from sensekit.calibration.evaluate.data import SEED, EmoDbClip, read_emodb_labels, stratified_subset
from sensekit.confidence import FittedTemperature, apply_temperature, fit_temperature
from sensekit.errors import ModelError
from sensekit.runtime import TFLiteModel
from sensekit.types import VOICE_AROUSAL_LABELS, VOICE_EMOTION_LABELS

SAMPLE_RATE = 16000
FOLDS_DIR = "voice_prosody_folds"
FOLDS_JSON = "folds.json"
FLOAT_MODEL_FILE = "voice_prosody_float.tflite"
STD_FLOOR = 1e-6
"""As in the build: a feature with a smaller spread is centred, not divided."""
HEADS = ("arousal", "emotion")
CONDITIONS = ("uncalibrated", "calibrated")
LABELS = {"arousal": VOICE_AROUSAL_LABELS, "emotion": VOICE_EMOTION_LABELS}

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class VoiceEvaluation:
    """The JSON-ready result, the pooled out-of-fold probabilities and the temperatures."""

    result: dict[str, Any]
    truth: dict[str, IntArray]
    before: dict[str, FloatArray]  # "<head>_<condition>" -> probabilities
    after: dict[str, FloatArray]  # same, nested temperature applied
    temperatures: dict[str, FittedTemperature]


def load_clip(path: Path) -> FloatArray:
    """A mono clip as float32 at 16 kHz, resampled with soxr like the daemon's capture."""
    import soundfile as sf
    import soxr

    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.ascontiguousarray(mono, dtype=np.float32)


def extract_features(folder: Path, clips: list[EmoDbClip]) -> FloatArray:
    from sensekit.audio.prosody import ProsodyExtractor

    extractor = ProsodyExtractor(SAMPLE_RATE)
    rows = [
        extractor.extract(load_clip(folder / "wav" / clip.file))
        for clip in tqdm(clips, desc="voice features", unit="clip", file=sys.stderr, disable=None)
    ]
    return np.stack(rows).astype(np.float32)


def statistics(features: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-feature mean and population std in float64, a std under STD_FLOOR becoming 1."""
    x = features.astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    return mean.astype(np.float32), np.where(std < STD_FLOOR, 1.0, std).astype(np.float32)


def standardise(features: FloatArray, mean: FloatArray, std: FloatArray) -> FloatArray:
    return ((features - mean) / std).astype(np.float32)


def targets(clips: list[EmoDbClip], sidecar: dict[str, Any]) -> dict[str, IntArray]:
    """Arousal and emotion class indices, through the model's own label mappings."""
    to_emotion, to_arousal = sidecar["emodb_to_emotion"], sidecar["arousal_mapping"]
    try:
        return {
            "emotion": np.array(
                [VOICE_EMOTION_LABELS.index(to_emotion[c.emotion]) for c in clips], np.int64
            ),
            "arousal": np.array(
                [VOICE_AROUSAL_LABELS.index(to_arousal[c.emotion]) for c in clips], np.int64
            ),
        }
    except (KeyError, ValueError) as exc:
        raise ModelError(f"an EmoDB emotion the voice model's mapping lacks: {exc}") from exc


def out_of_fold(
    models: Path, features: FloatArray, speakers: npt.NDArray[np.str_]
) -> dict[str, FloatArray]:
    """Each speaker's clips scored by the fold model that never heard that speaker."""
    from sensekit.audio.voice import VoiceClassifier, VoiceModelInfo

    folds = models / FOLDS_DIR / FOLDS_JSON
    entries = json.loads(folds.read_text(encoding="utf-8"))["folds"]
    probs = {
        f"{h}_{c}": np.zeros((len(features), len(LABELS[h])), np.float32)
        for h in HEADS
        for c in CONDITIONS
    }
    for speaker in tqdm(
        sorted(set(speakers.tolist())),
        desc="voice folds",
        unit="fold",
        file=sys.stderr,
        disable=None,
    ):
        if speaker not in entries:
            raise ModelError(f"{folds}: no fold for EmoDB speaker {speaker}")
        rows = speakers == speaker
        info = VoiceModelInfo.load(folds, fold=speaker)
        classifier = VoiceClassifier(
            models / FOLDS_DIR / entries[speaker]["model"], info=info, temperature=1.0
        )
        views = {
            "uncalibrated": standardise(features[rows], info.training_mean, info.training_std),
            "calibrated": standardise(features[rows], *statistics(features[rows])),
        }
        for condition, z in views.items():
            arousal, emotion = classifier.probabilities(z)
            probs[f"arousal_{condition}"][rows] = arousal
            probs[f"emotion_{condition}"][rows] = emotion
    return probs


def nested_temperature(
    probs: dict[str, FloatArray], truth: IntArray, speakers: npt.NDArray[np.str_], head: str
) -> dict[str, FloatArray]:
    """Each speaker's probabilities rescaled by a temperature fitted on the other speakers."""
    after = {c: np.empty_like(probs[f"{head}_{c}"]) for c in CONDITIONS}
    ids = sorted(set(speakers.tolist()))
    for speaker in ids:
        rows = speakers == speaker
        others = ~rows
        if not others.any():  # a single speaker (a tiny slice): nothing to fit on
            for c in CONDITIONS:
                after[c][rows] = probs[f"{head}_{c}"][rows]
            continue
        t = fit_temperature(
            np.concatenate([probs[f"{head}_{c}"][others] for c in CONDITIONS]),
            np.concatenate([truth[others]] * len(CONDITIONS)),
        )
        for c in CONDITIONS:
            after[c][rows] = apply_temperature(probs[f"{head}_{c}"][rows], t)
    return after


def float_agreement(models: Path, features: FloatArray) -> dict[str, Any]:
    """The shipped int8 model vs its float export on the same clips (pooled statistics)."""
    from sensekit.audio.voice import MODEL_FILE, VoiceClassifier

    float_path = models / FLOAT_MODEL_FILE
    if not float_path.is_file():
        return {"error": f"float model not found: {float_path}"}
    shipped = VoiceClassifier(models / MODEL_FILE, temperature=1.0)
    z = standardise(features, shipped.training_mean, shipped.training_std)
    int8 = dict(zip(HEADS, shipped.probabilities(z), strict=True))
    model = TFLiteModel(float_path)
    spec = model.inputs[0]
    if spec.dtype != np.float32 or len(model.outputs) != 2:
        raise ModelError(f"{float_path}: expected a float32 input and two outputs")
    if spec.dynamic_batch:
        model.set_batch_size(len(z))
        outputs = model.run([z])
    else:  # a fixed batch: one clip at a time
        per_clip = [model.run([z[i : i + 1]]) for i in range(len(z))]
        outputs = [np.concatenate([o[k] for o in per_clip]) for k in range(2)]
    by_size = {np.asarray(o).shape[-1]: np.asarray(o, np.float32) for o in outputs}
    return {
        "model": str(float_path),
        "int8_model": str(shipped.model_path),
        "input": "all clips z-scored with the shipped model's training statistics",
        **{head: metrics.agreement(by_size[len(LABELS[head])], int8[head]) for head in HEADS},
    }


def evaluate_voice(folder: Path, models: Path, limit: int | None, bins: int) -> VoiceEvaluation:
    """Out-of-fold accuracy and calibration of the voice recipe, and the shipped T per head."""
    from sensekit.audio.voice import MODEL_FILE

    clips = read_emodb_labels(folder)
    sidecar_path = (models / MODEL_FILE).with_suffix(".json")
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the voice model sidecar {sidecar_path}: {exc}") from exc
    keep = stratified_subset([c.emotion for c in clips], limit)
    clips = [clips[i] for i in keep]
    features = extract_features(folder, clips)
    speakers = np.array([c.speaker for c in clips])
    truth = targets(clips, sidecar)
    before = out_of_fold(models, features, speakers)

    shipped = models / MODEL_FILE
    sha256 = hashlib.sha256(shipped.read_bytes()).hexdigest()
    after: dict[str, FloatArray] = {}
    heads: dict[str, Any] = {}
    temperatures: dict[str, FittedTemperature] = {}
    for head in HEADS:
        nested = nested_temperature(before, truth[head], speakers, head)
        value = fit_temperature(
            np.concatenate([before[f"{head}_{c}"] for c in CONDITIONS]),
            np.concatenate([truth[head]] * len(CONDITIONS)),
        )
        conditions: dict[str, Any] = {}
        for c in CONDITIONS:
            after[f"{head}_{c}"] = nested[c]
            conditions[c] = {
                **metrics.classification(truth[head], before[f"{head}_{c}"], LABELS[head]),
                "calibration": {
                    "before": metrics.calibration(truth[head], before[f"{head}_{c}"]),
                    "after_nested": metrics.calibration(truth[head], nested[c]),
                },
            }
        all_before = np.concatenate([before[f"{head}_{c}"] for c in CONDITIONS])
        all_after = np.concatenate([nested[c] for c in CONDITIONS])
        all_truth = np.concatenate([truth[head]] * len(CONDITIONS))
        temperatures[head] = FittedTemperature(
            value=value,
            model_sha256=sha256,
            fitted_on=(
                f"EmoDB, out-of-fold probabilities of the leave-one-speaker-out fold models, "
                f"{len(clips)} clips x both normalisation conditions"
                + (f" (class-stratified slice, seed {SEED})" if limit else "")
                + f"; ECE speaker-nested, {bins} bins"
            ),
            ece_before=metrics.calibration(all_truth, all_before)["ece"],
            ece_after=metrics.calibration(all_truth, all_after)["ece"],
        )
        heads[head] = {"conditions": conditions, "temperature": temperatures[head].to_json()}

    result = {
        "model": str(shipped),
        "model_sha256": sha256,
        "folds": str(models / FOLDS_DIR / FOLDS_JSON),
        "data": str(folder),
        "protocol": (
            "leave-one-speaker-out: each clip scored by the int8 fold model trained without its "
            "speaker (VoiceClassifier, T = 1); uncalibrated = fold training statistics, "
            "calibrated = the speaker's own statistics; metrics pooled over the held-out clips; "
            "balanced accuracy = UAR. Temperature per head fitted on the out-of-fold "
            "probabilities of both conditions; 'after' ECE nested by speaker."
        ),
        "n": len(clips),
        "speakers": sorted(set(speakers.tolist())),
        "heads": heads,
        "float": float_agreement(models, features),
    }
    return VoiceEvaluation(
        result=result, truth=truth, before=before, after=after, temperatures=temperatures
    )
