"""`sensekit calibrate audio` end to end, as an installer runs it: self-made backgrounds and
espeak-ng speech written as WAV/FLAC files (and once through a virtual microphone), the real
CLI in a subprocess, the config file checked byte for byte."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sensekit.config import load_config
from tests.conftest import ROOT
from tests.virtual_mic import DEVICE, virtual_microphone
from tools.media.backgrounds import music, under_speech, white_noise
from tools.media.speech import SENTENCES, concat, have_espeak, mix, room_tone, silence, synthesise

RATE = 16000

pytestmark = pytest.mark.skipif(
    not have_espeak(), reason="espeak-ng is not installed: run the README's install command"
)

CONFIG = """\
# Kiosk at the bakery counter.
site: lab
device: kiosk-3
mqtt:
  url: mqtt://127.0.0.1:1883
microphones:
  - name: counter
    source: {source}
    zone: till   # the till's camera zone
voice:
  vad:
    snr_db: 10   # to be calibrated at the site
    max_pause_s: 0.4
  k_windows: 3
"""


def write_config(tmp_path: Path, source: str = "default") -> Path:
    path = tmp_path / "kiosk.yaml"
    path.write_text(CONFIG.format(source=source))
    return path


def calibrate(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sensekit", "calibrate", "audio", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def sentences() -> np.ndarray:
    return concat(
        silence(1.0), synthesise(SENTENCES[0]), silence(2.0), synthesise(SENTENCES[1]), silence(1.0)
    )


def test_music_background_raises_the_threshold_and_is_written_with_comments_kept(
    tmp_path: Path, sentences: np.ndarray
) -> None:
    background = tmp_path / "shop.flac"
    sf.write(background, music(30.0, -30.0), RATE)
    speech = tmp_path / "staff.wav"
    sf.write(speech, under_speech(sentences, music(30.0, -30.0, seed=14), 12.0), RATE)
    config = write_config(tmp_path)
    before = config.read_text()

    done = calibrate(config, "--input", str(background), "--speech", str(speech))

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "noise floor" in out and "periodic frames" in out
    assert "set voice.vad.snr_db: 10 -> " in out
    assert "why: periodic background sound (hum, music, beeps)" in out
    assert "finds no speech window in the background" in out
    share = int(out.split(f"check: {speech}: ")[1].split("%")[0])
    assert share >= 70, out
    snr = load_config(config).voice.vad.snr_db
    assert 10.0 < snr <= 25.0
    # Only the value changed: every comment and every other line is as the installer left it.
    after = config.read_text()
    assert after == before.replace("snr_db: 10   #", f"snr_db: {snr:g}   #"), after
    assert f"wrote voice.vad.snr_db: {snr:g} to {config}" in out


def test_dry_run_prints_and_writes_nothing(tmp_path: Path) -> None:
    background = tmp_path / "quiet.wav"
    sf.write(background, white_noise(20.0, -50.0), RATE)
    config = write_config(tmp_path)
    before = config.read_bytes()

    done = calibrate(config, "--input", str(background), "--dry-run")

    assert done.returncode == 0, done.stderr
    assert "set voice.vad.snr_db: 10 -> 6 dB" in done.stdout
    assert "softer speech is heard" in done.stdout
    assert "dry run: nothing written" in done.stdout
    assert config.read_bytes() == before


def test_a_background_of_talking_is_refused_and_nothing_written(
    tmp_path: Path, sentences: np.ndarray
) -> None:
    background = tmp_path / "talking.wav"
    sf.write(background, mix(np.resize(sentences, 30 * RATE) * 0.5, room_tone(30.0)), RATE)
    config = write_config(tmp_path)
    before = config.read_bytes()

    done = calibrate(config, "--input", str(background))

    assert done.returncode == 1
    assert "the background itself looks like speech" in done.stderr
    assert "nothing written" in done.stderr
    assert config.read_bytes() == before


def test_speech_that_the_threshold_would_miss_is_refused(
    tmp_path: Path, sentences: np.ndarray
) -> None:
    """Speech barely above loud music: the music's threshold would lose it, so it says so."""
    background = tmp_path / "shop.wav"
    sf.write(background, music(30.0, -30.0), RATE)
    speech = tmp_path / "far.wav"
    sf.write(speech, under_speech(sentences, music(30.0, -30.0, seed=14), 3.0), RATE)
    config = write_config(tmp_path)
    before = config.read_bytes()

    done = calibrate(config, "--input", str(background), "--speech", str(speech))

    assert done.returncode == 1, done.stdout
    assert str(speech) in done.stderr and "nothing written" in done.stderr
    assert config.read_bytes() == before


@pytest.mark.parametrize(
    ("which", "content", "reason"),
    [
        ("--input", b"RIFF\x00\x00 this is no wave file", "Format not recognised"),
        ("--speech", None, "no such file"),
    ],
)
def test_an_unreadable_file_is_a_clear_error(
    tmp_path: Path, which: str, content: bytes | None, reason: str
) -> None:
    broken = tmp_path / "broken.wav"
    if content is not None:
        broken.write_bytes(content)
    background = tmp_path / "quiet.wav"
    sf.write(background, white_noise(12.0, -50.0), RATE)
    config = write_config(tmp_path)
    before = config.read_bytes()
    args = ["--input", str(broken)] if which == "--input" else ["--input", str(background)]
    if which == "--speech":
        args += ["--speech", str(broken)]

    done = calibrate(config, *args)

    assert done.returncode == 4, done.stderr
    assert f"cannot read audio file {broken}" in done.stderr
    assert reason.lower() in done.stderr.lower()
    assert "Traceback" not in done.stderr
    assert config.read_bytes() == before


def test_a_too_short_background_is_refused(tmp_path: Path) -> None:
    background = tmp_path / "short.wav"
    sf.write(background, white_noise(4.0, -50.0), RATE)
    config = write_config(tmp_path)
    done = calibrate(config, "--input", str(background))
    assert done.returncode == 1
    assert "only 4.0 s of background" in done.stderr


def test_an_unknown_microphone_is_a_usage_error(tmp_path: Path) -> None:
    done = calibrate(write_config(tmp_path), "--microphone", "door", "--seconds", "10")
    assert done.returncode == 2
    assert "no microphone named 'door' (configured: counter)" in done.stderr


@pytest.mark.skipif(
    ctypes.util.find_library("portaudio") is None,
    reason="needs the system's PortAudio (apt-get install libportaudio2)",
)
def test_listening_to_the_configured_microphone(tmp_path: Path) -> None:
    """The live path: the configured microphone (a virtual one fed with room noise) is heard
    for --seconds and measured like a file."""
    config = write_config(tmp_path, source=DEVICE)
    noise = white_noise(20.0, -45.0)
    pcm = np.round(noise * 32767).astype(np.int16)
    with virtual_microphone(tmp_path, pcm) as mic:
        done = calibrate(
            config, "--microphone", "counter", "--seconds", "12", "--dry-run", env=mic.env
        )
    assert done.returncode == 0, done.stderr
    heard = float(done.stdout.split("background counter: ")[1].split(" s")[0])
    assert 11.0 <= heard <= 13.0
    assert "set voice.vad.snr_db: 10 -> 6 dB" in done.stdout
