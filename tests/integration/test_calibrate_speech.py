"""`sensekit calibrate speech` (formerly `calibrate-audio`) learns site statistics from speech.

It runs the daemon's own VAD and features over a recording and saves only per-feature
statistics, and only once enough speech windows were heard.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sensekit.cli import main
from tools.media.speech import SAMPLE_RATE, SENTENCES, have_espeak, room_tone, silence, synthesise

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


def _config(tmp_path: Path, min_windows: int) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        "site: shop\n"
        "microphones:\n"
        "  - name: counter\n"
        "    zone: counter\n"
        f"voice:\n  normalisation:\n    min_windows: {min_windows}\n"
        f"state_dir: {tmp_path / 'state'}\n"
    )
    return path


def _recording(tmp_path: Path, repeats: int) -> Path:
    parts = []
    for i in range(repeats):
        for j, sentence in enumerate(SENTENCES):
            parts += [synthesise(sentence, pitch=35 + 10 * ((i + j) % 4)), silence(0.4)]
    speech = np.concatenate(parts)
    speech = speech + room_tone(len(speech) / SAMPLE_RATE, seed=3)[: len(speech)]
    path = tmp_path / "counter.flac"
    sf.write(path, speech, SAMPLE_RATE)
    return path


def test_enough_speech_saves_only_feature_statistics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = _recording(tmp_path, repeats=4)
    config = _config(tmp_path, min_windows=50)
    code = main(["calibrate", "speech", "-c", str(config), "--input", str(recording)])
    out = capsys.readouterr().out
    assert code == 0, out
    # The numba compile cache may sit beside it; no other file appears.
    saved = [p for p in (tmp_path / "state").iterdir() if p.name != "numba-cache"]
    assert [p.name for p in saved] == ["voice-normalisation.json"]
    stats = json.loads(saved[0].read_text())
    assert "learned from" in out and str(saved[0]) in out

    # Statistics only: no array as long as a window of audio anywhere in the file.
    def longest(value: object) -> int:
        if isinstance(value, dict):
            return max((longest(v) for v in value.values()), default=0)
        if isinstance(value, list):
            return max(len(value), *(longest(v) for v in value))
        return 0

    assert longest(stats) < 200


def test_too_little_speech_saves_nothing_and_says_how_much_is_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = _recording(tmp_path, repeats=1)
    config = _config(tmp_path, min_windows=300)
    code = main(["calibrate-audio", "-c", str(config), "--input", str(recording)])
    err = capsys.readouterr().err
    assert code == 1
    assert "300 are needed" in err
    assert not (tmp_path / "state" / "voice-normalisation.json").exists()
