"""The real PortAudio path of MicrophoneSource, against a virtual ALSA microphone.

No sound card is needed: tests/virtual_mic.py feeds known audio through ALSA's file plugin at
real-time pace, and tests/record_microphone.py records it through MicrophoneSource in a
subprocess (PortAudio reads the ALSA configuration once per process). Every test waits for
events (audio received, a line printed), never for a guessed duration.
"""

from __future__ import annotations

import ctypes.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.virtual_mic import DEVICE, virtual_microphone

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "tests" / "record_microphone.py"
RATE = 16000
BLOCK = 1600  # MicrophoneSource's default block: 0.1 s at 16 kHz

pytestmark = pytest.mark.skipif(
    ctypes.util.find_library("portaudio") is None or ctypes.util.find_library("asound") is None,
    reason="needs the system's PortAudio and ALSA libraries (apt-get install libportaudio2)",
)


def record(env: dict[str, str], out: Path, *args: str) -> dict[str, Any]:
    """Run the recorder to completion; return its .npz as a dict with `meta` decoded."""
    result = subprocess.run(
        [sys.executable, str(RECORDER), "--out", str(out), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode in (0, 3), result.stderr
    return load(out)


def load(out: Path) -> dict[str, Any]:
    with np.load(out) as saved:
        data = {key: saved[key] for key in saved.files}
    data["meta"] = json.loads(str(data["meta"]))
    return data


def chunk_starts(data: dict[str, Any]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(data["sizes"])[:-1]]).astype(int)


def assert_contiguous(data: dict[str, Any], skip: tuple[int, ...] = ()) -> None:
    """Each chunk starts where the previous one ended, except after chunks in `skip`."""
    ends = data["timestamps"] + data["sizes"] / RATE
    for index in range(1, len(data["sizes"])):
        if index - 1 not in skip:
            assert data["timestamps"][index] == pytest.approx(ends[index - 1], abs=1e-6)


def find_block_aligned(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Where `needle` starts in `haystack`, looking only at block boundaries."""
    for start in range(0, len(haystack) - len(needle) + 1, BLOCK):
        if np.array_equal(haystack[start : start + len(needle)], needle):
            return start
    raise AssertionError("the recorded audio does not contain the fed content")


def test_the_microphone_delivers_exactly_what_the_device_captured(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(int(1.5 * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.02 * rng.standard_normal(len(t))
    content = np.round(wave * 32767).astype(np.int16)
    before = time.time()
    with virtual_microphone(tmp_path, content) as mic:
        data = record(mic.env, tmp_path / "rec.npz", "--device", mic.device, "--seconds", "2.5")
    after = time.time()

    expected = content.astype(np.float32) / 32768  # ALSA's S16 → float conversion is exact
    start = find_block_aligned(data["samples"], expected)
    received = data["samples"][start : start + len(expected)]
    spectrum = np.abs(np.fft.rfft(received))
    assert np.fft.rfftfreq(len(received), 1 / RATE)[np.argmax(spectrum)] == pytest.approx(440.0)

    assert set(data["sizes"].tolist()) == {BLOCK}  # one callback block per read
    assert_contiguous(data)
    assert before <= data["timestamps"][0] <= after  # stamped with the epoch clock
    assert data["meta"]["stats"] == {
        "audio_s": pytest.approx(len(data["samples"]) / RATE),
        "overflows": 0.0,
        "dropped_s": 0.0,
        "reanchors": 0.0,
    }
    assert data["meta"]["error"] is None and not data["meta"]["finished"]


def test_a_slow_reader_loses_the_oldest_audio_and_the_timestamps_show_the_gap(
    tmp_path: Path,
) -> None:
    ramp = np.arange(1, 2 * RATE, dtype=np.int16)  # each sample says where it is in the feed
    with virtual_microphone(tmp_path, ramp) as mic:
        data = record(
            mic.env,
            tmp_path / "rec.npz",
            *("--device", mic.device, "--mode", "drop", "--buffer-s", "0.5"),
            *("--read-before-s", "0.8", "--drop-s", "0.3", "--seconds", "0.8"),
        )
    dropped = data["meta"]["stats"]["dropped_s"]
    assert dropped >= 0.3
    gap_after = data["meta"]["gap_after_chunk"]
    gap = data["timestamps"][gap_after + 1] - (
        data["timestamps"][gap_after] + data["sizes"][gap_after] / RATE
    )
    assert gap == pytest.approx(dropped, abs=1e-6)
    assert_contiguous(data, skip=(gap_after,))

    # Wherever the ramp was recorded, its position in the feed and its timestamp agree.
    values = np.round(data["samples"] * 32768).astype(int)
    starts = chunk_starts(data)
    positions = []
    for index, start in enumerate(starts):
        chunk = values[start : start + data["sizes"][index]]
        if chunk[0] > 0 and np.array_equal(np.diff(chunk), np.ones(len(chunk) - 1)):
            positions.append((chunk[0] / RATE, data["timestamps"][index]))
    assert len(positions) >= 5
    offsets = [timestamp - position for position, timestamp in positions]
    assert max(offsets) - min(offsets) == pytest.approx(0.0, abs=1e-6)


def test_a_device_that_stops_delivering_finishes_the_source_with_an_error(
    tmp_path: Path,
) -> None:
    with virtual_microphone(tmp_path, np.zeros(RATE, np.int16)) as mic:
        process = subprocess.Popen(
            [
                *(sys.executable, str(RECORDER), "--out", str(tmp_path / "rec.npz")),
                *("--device", mic.device, "--mode", "stall", "--stall-s", "0.5"),
            ],
            env=mic.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "recording"
            mic.pause()  # the device "unplugged": no more periods
            assert process.stdout.readline().strip() == "finished"
            mic.resume()  # lets PortAudio's blocked read return, so the stream closes
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == 0, stderr
    meta = load(tmp_path / "rec.npz")["meta"]
    assert meta["finished"]
    assert meta["error"] == "microphone test: the device stopped delivering audio (unplugged?)"
    assert "the device stopped delivering audio" in stderr  # logged once, as an error


def test_a_clock_step_re_anchors_the_timestamps_once(tmp_path: Path) -> None:
    with virtual_microphone(tmp_path, np.zeros(RATE, np.int16)) as mic:
        data = record(
            mic.env,
            tmp_path / "rec.npz",
            *("--device", mic.device, "--seconds", "3.5"),
            *("--clock-step-s", "5.0", "--clock-step-after-calls", "10"),
        )
    assert data["meta"]["stats"]["reanchors"] == 1.0
    ends = data["timestamps"][:-1] + data["sizes"][:-1] / RATE
    jumps = data["timestamps"][1:] - ends
    steps = np.flatnonzero(np.abs(jumps) > 1e-6)
    assert len(steps) == 1
    assert jumps[steps[0]] == pytest.approx(5.0, abs=0.25)  # less the callback latency


@pytest.mark.parametrize(
    ("device", "reason"),
    [
        ("no such microphone", "No input device matching 'no such microphone'"),
        ("99", "there is no device #99"),
    ],
)
def test_an_unknown_device_is_refused_with_the_devices_there_are(
    tmp_path: Path, device: str, reason: str
) -> None:
    with virtual_microphone(tmp_path, np.zeros(RATE, np.int16)) as mic:
        data = record(mic.env, tmp_path / "rec.npz", "--device", device)
    error = data["meta"]["error"]
    assert error.startswith("microphone test: cannot open ")
    assert reason in error
    assert "available input devices (configure one by index or by part of its name):" in error
    assert f'#0 "{DEVICE}" (ALSA,' in error


def test_a_missing_portaudio_library_is_named_with_the_package_to_install(
    tmp_path: Path,
) -> None:
    """A real missing library: in a private mount namespace the dynamic linker's cache is
    empty, so ctypes (and sounddevice through it) cannot find libportaudio, exactly as on a
    system without the libportaudio2 package."""
    unshare = shutil.which("unshare")
    namespace = [unshare or "unshare", "--mount", "--map-root-user"]
    if unshare is None or subprocess.run([*namespace, "true"], capture_output=True).returncode:
        pytest.skip("needs unshare and permission to create a mount namespace")
    empty = tmp_path / "ld.so.cache"
    empty.write_bytes(b"")
    out = tmp_path / "rec.npz"
    script = 'mount --bind "$1" /etc/ld.so.cache && shift && exec "$@"'
    recorder = [sys.executable, str(RECORDER), "--out", str(out)]
    result = subprocess.run(
        [*namespace, "sh", "-c", script, "sh", str(empty), *recorder],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert load(out)["meta"]["error"] == (
        "microphone test: the PortAudio library is missing "
        "(install it: sudo apt-get install libportaudio2)"
    )
