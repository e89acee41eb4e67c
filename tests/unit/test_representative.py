"""The representative-data rule of every int8 conversion (tools/models/representative.py).

Two halves: the rule itself on self-made labels (balanced, seeded, training rows only, a
short class refused or recorded), and the shipped models' records: each calibration manifest
in models/ must describe a sample this rule gives, and with the shared data present the rule
recomputed on the real labels must give the recorded index checksum.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from sensekit.runtime import models_dir
from tests.conftest import SHARED_DATA
from tools.models.representative import RULE, indices_sha256, representative_rows

NAMES = ("a", "b", "c")
FER2013 = SHARED_DATA / "fer2013.npz"
EMODB = SHARED_DATA / "emodb"


def labels_with(counts: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Shuffled class labels with the given number of rows per class."""
    y = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(y)


def pick(y: np.ndarray, train: np.ndarray, per_class: int = 5, seed: int = 7, **kw: Any) -> Any:
    return representative_rows(y, train, range(3), NAMES, per_class, seed, **kw)


def test_each_class_gives_per_class_rows_in_class_order() -> None:
    y = labels_with((40, 12, 25))
    sample = pick(y, np.arange(len(y)))
    assert y[sample.indices].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert len(set(sample.indices.tolist())) == 15  # without replacement
    assert sample.manifest["counts"] == {"a": 5, "b": 5, "c": 5}
    assert sample.manifest["available"] == {"a": 40, "b": 12, "c": 25}
    assert sample.manifest["short_classes"] == {}
    assert sample.manifest["rule"] == RULE
    assert sample.manifest["indices_sha256"] == indices_sha256(sample.indices)


def test_the_same_seed_gives_the_same_rows_and_another_seed_others() -> None:
    y = labels_with((40, 40, 40))
    train = np.arange(len(y))
    first, again, other = pick(y, train), pick(y, train), pick(y, train, seed=8)
    assert np.array_equal(first.indices, again.indices)
    assert first.manifest == again.manifest
    assert not np.array_equal(first.indices, other.indices)
    assert first.manifest["indices_sha256"] != other.manifest["indices_sha256"]


def test_the_rule_is_plain_pcg64_choice_per_class() -> None:
    """Stated in the docstring and the cards: anyone can redo it with three lines of numpy."""
    y = labels_with((30, 30, 30))
    train = np.flatnonzero(np.arange(len(y)) % 3 != 0)
    rng = np.random.default_rng(11)
    expected = np.concatenate(
        [rng.choice(train[y[train] == c], 4, replace=False) for c in range(3)]
    )
    assert np.array_equal(pick(y, train, per_class=4, seed=11).indices, expected)


def test_only_training_rows_are_drawn() -> None:
    y = labels_with((50, 50, 50))
    train = np.flatnonzero(np.arange(len(y)) < 100)
    for seed in range(20):
        chosen = pick(y, train, per_class=8, seed=seed).indices
        assert set(chosen.tolist()) <= set(train.tolist())
    with pytest.raises(ValueError, match="outside"):
        pick(y, np.array([0, len(y)]))


def test_a_short_class_is_refused_unless_allowed_and_then_recorded() -> None:
    y = labels_with((40, 3, 40))
    with pytest.raises(ValueError, match=r"class 'b' has 3 training rows, fewer than per_class=5"):
        pick(y, np.arange(len(y)))
    sample = pick(y, np.arange(len(y)), allow_short=True)
    assert sample.manifest["counts"] == {"a": 5, "b": 3, "c": 5}
    assert sample.manifest["short_classes"] == {"b": 3}
    assert (
        sorted(sample.indices[y[sample.indices] == 1].tolist()) == np.flatnonzero(y == 1).tolist()
    )


def test_a_class_absent_from_the_training_rows_is_always_an_error() -> None:
    y = labels_with((40, 40, 40))
    train = np.flatnonzero(y != 2)
    with pytest.raises(ValueError, match="class 'c' has no training row"):
        pick(y, train, allow_short=True)


# ----------------------------------------------------------------- the shipped models' records


def expression_manifest() -> dict[str, Any]:
    evaluation = json.loads((models_dir() / "fer_mini_xception_int8_eval.json").read_text())
    sidecar = json.loads((models_dir() / "fer_mini_xception_int8.json").read_text())
    assert evaluation["representative"] == sidecar["representative"]
    return evaluation["representative"]


def voice_manifests() -> dict[str, dict[str, Any]]:
    sidecar = json.loads((models_dir() / "voice_prosody_int8.json").read_text())
    folds = json.loads((models_dir() / "voice_prosody_folds" / "folds.json").read_text())
    evaluation = json.loads((models_dir() / "voice_prosody_int8_eval.json").read_text())
    manifests = {"shipped": sidecar["representative"]} | {
        speaker: entry["representative"] for speaker, entry in folds["folds"].items()
    }
    assert evaluation["representative"]["shipped"] == manifests["shipped"]
    assert evaluation["representative"]["folds"] == {
        k: v for k, v in manifests.items() if k != "shipped"
    }
    return manifests


def assert_balanced(manifest: dict[str, Any], classes: list[str]) -> None:
    assert manifest["rule"] == RULE and manifest["split"] == "train"
    assert manifest["classes"] == classes
    assert manifest["short_classes"] == {}
    assert set(manifest["counts"].values()) == {manifest["per_class"]}
    assert manifest["n"] == manifest["per_class"] * len(classes)
    assert all(manifest["available"][c] >= manifest["per_class"] for c in classes)


def test_the_shipped_models_record_a_balanced_sample_of_the_rule() -> None:
    from sensekit.types import EXPRESSION_LABELS, VOICE_EMOTION_LABELS

    assert_balanced(expression_manifest(), list(EXPRESSION_LABELS))
    manifests = voice_manifests()
    assert len(manifests) == 11  # 10 LOSO folds and the shipped model
    for manifest in manifests.values():
        assert_balanced(manifest, list(VOICE_EMOTION_LABELS))
        assert manifest["rows_fed"] == 2 * manifest["n"]  # both views of every drawn clip


@pytest.mark.shared_data
def test_the_expression_sample_recomputed_from_fer2013_matches_the_record() -> None:
    if not FER2013.is_file():
        pytest.skip(f"FER2013 absent: {FER2013} (the shared data folder beside the repository)")
    from tools.models.representative import representative_rows as rule

    manifest = expression_manifest()
    with np.load(FER2013) as data:
        y_train = data["y_train"]
    sample = rule(
        y_train,
        np.arange(len(y_train)),
        range(len(manifest["classes"])),
        manifest["classes"],
        manifest["per_class"],
        manifest["seed"],
    )
    assert sample.manifest == manifest


@pytest.mark.shared_data
def test_the_voice_samples_recomputed_from_emodb_match_the_records() -> None:
    """Each fold drew only from its 9 training speakers; the shipped model from all 10."""
    if not (EMODB / "labels.csv").is_file():
        pytest.skip(f"EmoDB absent: {EMODB} (the shared data folder beside the repository)")
    from tools.models import build_voice_model as build

    rows = build.read_labels(EMODB)
    speakers = np.array([r["speaker"] for r in rows])
    manifests = voice_manifests()
    classes = manifests["shipped"]["classes"]
    emotion = np.array([classes.index(build.EMODB_TO_EMOTION[r["emotion"]]) for r in rows])
    for name, manifest in manifests.items():
        train = np.flatnonzero(speakers != name)  # "shipped" is no speaker: every clip
        sample = representative_rows(
            emotion, train, range(len(classes)), classes, manifest["per_class"], manifest["seed"]
        )
        assert not np.isin(sample.indices, np.flatnonzero(speakers == name)).any()
        recorded = {k: v for k, v in manifest.items() if k in sample.manifest}
        assert sample.manifest == recorded, name


def test_the_voice_build_feeds_both_views_of_each_drawn_training_clip() -> None:
    """build_voice_model.calibration_rows: clip i's per-speaker row, then its pooled row."""
    from sensekit.types import VOICE_AROUSAL_LABELS, VOICE_EMOTION_LABELS
    from tools.models import build_voice_model as build

    rng = np.random.default_rng(0)
    emotions = np.array(list(build.EMODB_TO_EMOTION) * 6)  # 6 clips per class
    speakers = np.array(["a", "b", "c"] * 14)
    data = build.Dataset(
        features=rng.normal(size=(42, 4)).astype(np.float32),
        files=tuple(f"{i}.wav" for i in range(42)),
        speakers=speakers,
        emotions=emotions,
        feature_names=("f0", "f1", "f2", "f3"),
        feature_version="test",
        arousal_labels=VOICE_AROUSAL_LABELS,
        emotion_labels=VOICE_EMOTION_LABELS,
    )
    train = speakers != "c"
    views = build.training_views(data.features[train], speakers[train])
    rows, sample = build.calibration_rows(data, train, views, per_class=3, seed=5)
    assert not np.isin(sample.indices, np.flatnonzero(~train)).any()
    assert sample.manifest["counts"] == dict.fromkeys(VOICE_EMOTION_LABELS, 3)
    assert sample.manifest["rows_fed"] == len(rows) == 2 * 21
    position = np.searchsorted(np.flatnonzero(train), sample.indices)
    np.testing.assert_array_equal(rows[0::2], views[position])  # per-speaker view
    np.testing.assert_array_equal(rows[1::2], views[train.sum() + position])  # pooled view
    with pytest.raises(ValueError, match="fewer than per_class=5"):
        build.calibration_rows(data, train, views, per_class=5, seed=5)
