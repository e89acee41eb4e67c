"""The int8 voice model: its sidecar matches our features, one call scores a batch, bad files fail.

The model and its evaluation folds are the committed files in models/; nothing is trained here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sensekit.audio.prosody import FEATURE_NAMES, FEATURE_VERSION, ProsodyExtractor
from sensekit.audio.voice import MODEL_FILE, VoiceClassifier, VoiceModelInfo
from sensekit.errors import ModelError
from sensekit.runtime import models_dir
from sensekit.types import VOICE_AROUSAL_LABELS, VOICE_EMOTION_LABELS

FOLDS = models_dir() / "voice_prosody_folds"


@pytest.fixture(scope="module")
def classifier() -> VoiceClassifier:
    return VoiceClassifier()


def standardised_batch(n: int, seed: int = 0) -> np.ndarray:
    """Plausible model input: z-scores are mostly within ±3."""
    return np.random.default_rng(seed).normal(size=(n, len(FEATURE_NAMES))).astype(np.float32)


def copy_model(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / MODEL_FILE
    shutil.copy(models_dir() / MODEL_FILE, model)
    sidecar = model.with_suffix(".json")
    shutil.copy((models_dir() / MODEL_FILE).with_suffix(".json"), sidecar)
    return model, sidecar


def edit_sidecar(sidecar: Path, **changes: object) -> None:
    data = json.loads(sidecar.read_text())
    data.update(changes)
    sidecar.write_text(json.dumps(data))


def test_the_bundled_model_is_fully_int8_with_a_dynamic_batch(
    classifier: VoiceClassifier,
) -> None:
    spec = classifier.model.inputs[0]
    assert spec.dtype == np.int8 and spec.dynamic_batch
    assert spec.shape[1:] == (len(FEATURE_NAMES),)
    assert sorted(out.shape[-1] for out in classifier.model.outputs) == [3, 7]
    assert all(out.dtype == np.int8 for out in classifier.model.outputs)


def test_the_sidecar_describes_the_features_this_sensekit_computes(
    classifier: VoiceClassifier,
) -> None:
    sidecar = json.loads((models_dir() / MODEL_FILE).with_suffix(".json").read_text())
    assert sidecar["feature_version"] == FEATURE_VERSION
    assert tuple(sidecar["feature_names"]) == FEATURE_NAMES == classifier.feature_names
    assert tuple(sidecar["arousal_labels"]) == VOICE_AROUSAL_LABELS
    assert tuple(sidecar["emotion_labels"]) == VOICE_EMOTION_LABELS
    assert sidecar["sample_rate"] == 16000
    for stat in (classifier.training_mean, classifier.training_std):
        assert stat.dtype == np.float32 and stat.shape == (len(FEATURE_NAMES),)
    assert np.all(classifier.training_std > 0)
    # Every EmoDB emotion has a label and an arousal level, and all levels are used.
    assert set(sidecar["emodb_to_emotion"].values()) == set(VOICE_EMOTION_LABELS)
    assert set(sidecar["arousal_mapping"]) == set(sidecar["emodb_to_emotion"])
    assert set(sidecar["arousal_mapping"].values()) == set(VOICE_AROUSAL_LABELS)


def test_a_batch_of_n_windows_gives_n_probability_vectors(classifier: VoiceClassifier) -> None:
    scores = classifier.classify(standardised_batch(6))
    assert len(scores) == 6
    for s in scores:
        assert s.arousal.shape == (3,) and s.emotion.shape == (7,)
        for p in (s.arousal, s.emotion):
            assert p.dtype == np.float32 and np.all(p >= 0)
            assert p.sum() == pytest.approx(1.0, abs=1e-5)
        assert s.arousal_label in VOICE_AROUSAL_LABELS
        assert s.emotion_label in VOICE_EMOTION_LABELS


def test_one_call_for_a_batch_equals_one_call_per_window(classifier: VoiceClassifier) -> None:
    batch = standardised_batch(8, seed=1)
    together = classifier.probabilities(batch)
    alone = [classifier.probabilities(batch[i : i + 1]) for i in range(len(batch))]
    np.testing.assert_array_equal(together[0], np.concatenate([a for a, _ in alone]))
    np.testing.assert_array_equal(together[1], np.concatenate([e for _, e in alone]))


def test_no_windows_give_no_scores_and_a_wrong_width_is_refused(
    classifier: VoiceClassifier,
) -> None:
    assert classifier.classify(np.empty((0, len(FEATURE_NAMES)), np.float32)) == []
    with pytest.raises(ValueError, match="standardised features"):
        classifier.classify(np.zeros((2, len(FEATURE_NAMES) - 1), np.float32))


def test_features_do_not_depend_on_the_microphone_gain() -> None:
    """What the model sees must not move with gain or distance: EmoDB's clips are normalised."""
    rate = 16000
    t = np.arange(2 * rate) / rate
    f0 = 140.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 20))
    syllables = np.clip(np.sin(2 * np.pi * 3.0 * t), 0.0, None)
    noise = np.random.default_rng(0).normal(scale=0.01, size=t.shape)
    signal = (0.3 * voice * syllables + noise).astype(np.float32)
    extractor = ProsodyExtractor(rate)
    loud = extractor.extract(signal)
    quiet = extractor.extract((signal * np.float32(0.05)).astype(np.float32))
    np.testing.assert_allclose(quiet, loud, rtol=1e-3, atol=1e-3)


def test_a_sidecar_of_another_feature_version_is_refused(tmp_path: Path) -> None:
    model, sidecar = copy_model(tmp_path)
    edit_sidecar(sidecar, feature_version="sensekit-prosody/0")
    with pytest.raises(ModelError, match="trained on features 'sensekit-prosody/0'"):
        VoiceClassifier(model)


def test_a_sidecar_with_other_features_is_refused(tmp_path: Path) -> None:
    model, sidecar = copy_model(tmp_path)
    edit_sidecar(sidecar, feature_names=list(FEATURE_NAMES[:-1]))
    with pytest.raises(ModelError, match="expects 72 features"):
        VoiceClassifier(model)


def test_a_missing_or_unreadable_sidecar_is_refused(tmp_path: Path) -> None:
    model, sidecar = copy_model(tmp_path)
    sidecar.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read voice model sidecar"):
        VoiceClassifier(model)
    sidecar.write_text(json.dumps({"feature_version": FEATURE_VERSION}))
    with pytest.raises(ModelError, match="incomplete or malformed"):
        VoiceClassifier(model)
    sidecar.unlink()
    with pytest.raises(ModelError, match="sidecar not found"):
        VoiceClassifier(model)


def test_a_corrupt_model_is_refused(tmp_path: Path) -> None:
    model, _ = copy_model(tmp_path)
    model.write_bytes(model.read_bytes()[:2000])
    with pytest.raises(ModelError, match="corrupt or not a TFLite model"):
        VoiceClassifier(model)


def test_a_model_that_is_not_the_one_its_sidecar_describes_is_refused(tmp_path: Path) -> None:
    """A fold model beside the shipped sidecar still loads as TFLite; the checksum stops it."""
    model, _ = copy_model(tmp_path)
    shutil.copy(next(FOLDS.glob("fold_*.tflite")), model)
    with pytest.raises(ModelError, match="does not match its sidecar"):
        VoiceClassifier(model)


def test_a_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        VoiceClassifier(tmp_path / "nowhere.tflite")


def test_every_evaluation_fold_loads_with_its_own_standardisation() -> None:
    folds = json.loads((FOLDS / "folds.json").read_text())["folds"]
    assert len(folds) == 10
    means = []
    for speaker in sorted(folds):
        info = VoiceModelInfo.load(FOLDS / "folds.json", fold=speaker)
        classifier = VoiceClassifier(FOLDS / f"fold_{speaker}.tflite", info=info)
        assert len(classifier.classify(standardised_batch(2))) == 2
        assert speaker not in folds[speaker]["train_speakers"]
        means.append(info.training_mean)
    assert len({m.tobytes() for m in means}) == 10


def test_the_card_quotes_the_evaluation_and_the_model_it_describes() -> None:
    """The card's table and checksum are those of the committed JSON files, not stale copies."""
    card = (models_dir() / "voice_prosody_int8.md").read_text().replace("**", "")
    evaluation = json.loads((models_dir() / "voice_prosody_int8_eval.json").read_text())
    sidecar = json.loads((models_dir() / MODEL_FILE).with_suffix(".json").read_text())
    assert sidecar["sha256"] in card and evaluation["model_sha256"] == sidecar["sha256"]
    assert evaluation["feature_version"] == FEATURE_VERSION
    for kind in ("float", "int8"):
        for condition in ("uncalibrated", "calibrated"):
            pooled = evaluation["pooled"][kind][condition]
            cells = [
                f"{pooled[head][metric]:.3f}"
                for head in ("arousal", "emotion")
                for metric in ("accuracy", "uar")
            ]
            assert f"| {kind} | {condition} | {' | '.join(cells)} |" in card
