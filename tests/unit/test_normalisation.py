"""Site normalisation: training statistics until the site is learned, then the site's own;
persisted atomically, never before enough windows, and refused when stale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sensekit.audio.normalisation import (
    NormalisationMode,
    NormalisationOptions,
    RunningStats,
    SiteNormaliser,
)
from sensekit.errors import ConfigError

NAMES = ("a", "b", "c")
TRAIN_MEAN = np.array([0.0, 10.0, -5.0], np.float32)
TRAIN_STD = np.array([1.0, 2.0, 4.0], np.float32)


def normaliser(tmp_path: Path, mode: NormalisationMode, min_windows: int = 50) -> SiteNormaliser:
    options = NormalisationOptions(
        mode=mode,
        state_file=tmp_path / "state" / "voice-normalisation.json",
        min_windows=min_windows,
        half_life_windows=float("inf"),
        save_every_windows=10,
    )
    return SiteNormaliser(NAMES, "v1", TRAIN_MEAN, TRAIN_STD, options)


def site_rows(n: int, seed: int = 0) -> np.ndarray:
    """A site whose microphone is 6 dB hotter: every level feature shifted."""
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1, (n, 3)) * [3.0, 1.0, 0.5] + [5.0, 20.0, 0.0]).astype(np.float32)


def test_running_stats_match_numpy() -> None:
    rows = site_rows(500)
    stats = RunningStats(3, float("inf"))
    stats.update(rows)
    assert np.allclose(stats.mean, rows.mean(axis=0), atol=1e-6)
    assert np.allclose(stats.std, rows.std(axis=0), atol=1e-6)


def test_adapting_stats_follow_a_change_but_slowly() -> None:
    stats = RunningStats(1, half_life=100.0)
    stats.update(np.zeros((1000, 1)))
    stats.update(np.full((100, 1), 10.0))
    assert 4.0 < stats.mean[0] < 6.0  # half-way after one half-life


def test_training_statistics_until_enough_site_speech(tmp_path: Path) -> None:
    norm = normaliser(tmp_path, NormalisationMode.LEARN)
    x = site_rows(1)
    assert np.allclose(norm.standardise(x), (x - TRAIN_MEAN) / TRAIN_STD)
    norm.observe(site_rows(49))
    assert not norm.calibrated
    assert not (tmp_path / "state").exists(), "nothing is written before min_windows"
    norm.observe(site_rows(11, seed=1))
    assert norm.calibrated
    norm.observe(site_rows(2000, seed=3))
    z = norm.standardise(site_rows(2000, seed=2))
    assert np.allclose(z.mean(axis=0), 0.0, atol=0.1)
    assert np.allclose(z.std(axis=0), 1.0, atol=0.1)


def test_learned_statistics_survive_a_restart(tmp_path: Path) -> None:
    first = normaliser(tmp_path, NormalisationMode.LEARN)
    first.observe(site_rows(60))
    first.save()
    saved = json.loads((tmp_path / "state" / "voice-normalisation.json").read_text())
    assert saved["feature_version"] == "v1" and saved["stats"]["count"] == 60
    # Only statistics are stored: one mean and one scatter per feature, no window.
    assert set(saved["stats"]) == {"count", "weight", "mean", "scatter"}
    frozen = normaliser(tmp_path, NormalisationMode.FROZEN)
    assert frozen.calibrated
    x = site_rows(3, seed=5)
    assert np.allclose(frozen.standardise(x), first.standardise(x))
    frozen.observe(site_rows(100))  # frozen: learns nothing
    assert frozen.stats.count == 60


def test_off_ignores_the_site(tmp_path: Path) -> None:
    learn = normaliser(tmp_path, NormalisationMode.LEARN)
    learn.observe(site_rows(60))
    learn.save()
    off = normaliser(tmp_path, NormalisationMode.OFF)
    x = site_rows(1)
    assert not off.calibrated
    assert np.allclose(off.standardise(x), (x - TRAIN_MEAN) / TRAIN_STD)


def test_stale_state_is_relearned_or_refused(tmp_path: Path) -> None:
    learn = normaliser(tmp_path, NormalisationMode.LEARN)
    learn.observe(site_rows(60))
    learn.save()
    state = tmp_path / "state" / "voice-normalisation.json"
    document = json.loads(state.read_text())
    document["feature_version"] = "v0"
    state.write_text(json.dumps(document))
    assert not normaliser(tmp_path, NormalisationMode.LEARN).calibrated  # learns afresh
    with pytest.raises(ConfigError, match="v0"):
        normaliser(tmp_path, NormalisationMode.FROZEN)
    state.write_text("{ not json")
    with pytest.raises(ConfigError, match=r"voice-normalisation\.json"):
        normaliser(tmp_path, NormalisationMode.FROZEN)
