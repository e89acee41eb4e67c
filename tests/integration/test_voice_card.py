"""The voice model card's leave-one-speaker-out numbers, re-measured from EmoDB's audio.

For a few held-out speakers, features are extracted from the wavs with the current code and
scored by that speaker's committed int8 fold model, uncalibrated and calibrated, through the
daemon's VoiceClassifier. The per-fold accuracy and UAR must be those in
models/voice_prosody_int8_eval.json: features are deterministic, so at most one clip may move
(float rounding on another machine). A change to the features or the model that alters the
card's numbers fails here until the model is rebuilt.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from sensekit.audio.prosody import FEATURE_VERSION
from sensekit.audio.voice import VoiceClassifier, VoiceModelInfo
from sensekit.runtime import models_dir
from tests.conftest import SHARED_DATA
from tools.models import build_voice_model as build

EMODB = SHARED_DATA / "emodb"
SPEAKERS = ("03", "10", "12")
"""The three smallest speakers (49, 38 and 35 clips): the whole check takes a few seconds."""

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(
        not (EMODB / "labels.csv").is_file(),
        reason=f"EmoDB is not at {EMODB} (the shared data folder beside the repository)",
    ),
]


@pytest.fixture(scope="module")
def card() -> dict[str, Any]:
    data = json.loads((models_dir() / "voice_prosody_int8_eval.json").read_text())
    assert data["feature_version"] == FEATURE_VERSION, (
        "the card was measured on other features: run tools/models/build_voice_model.sh"
    )
    return data


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_a_held_out_speaker_scores_as_the_card_says(speaker: str, card: dict[str, Any]) -> None:
    rows = [r for r in build.read_labels(EMODB) if r["speaker"] == speaker]
    features = build.extract_features(EMODB, [r["file"] for r in rows], progress=False)
    labels = card["labels"]
    truth = {
        "arousal": np.array(
            [labels["arousal"].index(card["arousal_mapping"][r["emotion"]]) for r in rows]
        ),
        "emotion": np.array(
            [labels["emotion"].index(build.EMODB_TO_EMOTION[r["emotion"]]) for r in rows]
        ),
    }
    folds = models_dir() / build.FOLDS_DIR
    info = VoiceModelInfo.load(folds / build.FOLDS_JSON, fold=speaker)
    classifier = VoiceClassifier(folds / f"fold_{speaker}.tflite", info=info)
    views = build.test_views(features, info.training_mean, info.training_std)
    for condition, standardised in views.items():
        arousal, emotion = classifier.probabilities(standardised)
        for head, probabilities in (("arousal", arousal), ("emotion", emotion)):
            got = build.scores(truth[head], probabilities.argmax(axis=1), len(labels[head]))
            expected = card["folds"][speaker]["int8"][condition][head]
            where = f"speaker {speaker}, {condition}, {head}"
            assert got["n"] == expected["n"], where
            moved = np.abs(np.subtract(got["confusion"], expected["confusion"])).sum()
            assert moved <= 2, f"{where}: {moved // 2} clips moved in the confusion matrix"
            assert got["accuracy"] == pytest.approx(expected["accuracy"], abs=1 / got["n"] + 1e-9)
            if moved == 0:
                assert got["uar"] == pytest.approx(expected["uar"], abs=1e-9), where
