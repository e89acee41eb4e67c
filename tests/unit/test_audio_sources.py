"""Audio sources: file replay (time base, resampling, mixdown, bad files), the microphone's ring,
and how configured sources are classified. The live microphone path runs against a virtual ALSA
device in tests/integration/test_virtual_microphone.py."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sensekit.errors import SourceError
from sensekit.sources.audio import (
    describe_audio_source,
    is_audio_file,
    open_audio_source,
)
from sensekit.sources.audio_file import FileAudioSource
from sensekit.sources.microphone import MicrophoneSource, SampleRing
from sensekit.types import AudioChunk

START = 1_700_000_000.0


def tone(rate: int, seconds: float, freq: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    soundfile.write(str(path), samples, rate, subtype=subtype)
    return path


def drain(source: FileAudioSource) -> list[AudioChunk]:
    chunks = []
    deadline = time.monotonic() + 30  # a safety net, not a measurement
    while not source.finished and time.monotonic() < deadline:
        chunk = source.read(1.0)
        if chunk is not None:
            chunks.append(chunk)
    assert source.finished
    return chunks


def replay(path: Path) -> tuple[FileAudioSource, list[AudioChunk]]:
    """Flat out, from START."""
    source = FileAudioSource("mic", path, 16000, realtime=False, start_time=START)
    source.start()
    try:
        return source, drain(source)
    finally:
        source.stop()


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1.0 / rate)[np.argmax(spectrum)])


@pytest.fixture
def stereo_44k(tmp_path: Path) -> Path:
    left = tone(44100, 2.0, 440.0)
    return write_audio(tmp_path / "stereo.wav", np.stack([left, left], axis=1), 44100)


def test_a_resampled_file_gives_contiguous_chunks_from_its_start_time(stereo_44k: Path) -> None:
    source, chunks = replay(stereo_44k)
    assert chunks[0].timestamp == START
    for before, after in itertools.pairwise(chunks):
        assert after.timestamp == pytest.approx(before.end, abs=1e-6)  # float64 epoch ulp
    for chunk in chunks:
        assert chunk.sample_rate == 16000 and chunk.microphone == "mic"
        assert chunk.samples.dtype == np.float32 and chunk.samples.ndim == 1
        assert np.abs(chunk.samples).max() <= 1.0
    assert source.end_timestamp == pytest.approx(START + 2.0)
    assert source.error is None


def test_resampling_keeps_the_duration_and_the_pitch(stereo_44k: Path) -> None:
    source, chunks = replay(stereo_44k)
    samples = np.concatenate([c.samples for c in chunks])
    assert abs(len(samples) - 2 * 16000) <= len(chunks)  # at most a sample per block
    assert chunks[-1].end == pytest.approx(source.end_timestamp, abs=len(chunks) / 16000)
    assert peak_frequency(samples, 16000) == pytest.approx(440.0, abs=1.0)
    rms = float(np.sqrt(np.mean(samples[1000:-1000] ** 2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert source.stats() == {"audio_s": len(samples) / 16000, "overflows": 0.0, "dropped_s": 0.0}


def test_a_flac_at_the_target_rate_is_delivered_sample_for_sample(tmp_path: Path) -> None:
    content = np.random.default_rng(1).integers(-20000, 20000, 16000 * 3 + 123, dtype=np.int16)
    path = write_audio(tmp_path / "speech.flac", content, 16000)
    source, chunks = replay(path)
    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_array_equal(samples, content.astype(np.float32) / 32768)
    assert source.stats()["dropped_s"] == 0.0
    assert source.end_timestamp == pytest.approx(START + len(content) / 16000)


def test_stereo_is_mixed_down_to_mono(tmp_path: Path) -> None:
    left, right = tone(16000, 1.0, 440.0, 0.4), tone(16000, 1.0, 1000.0, 0.2)
    path = write_audio(tmp_path / "two.wav", np.stack([left, right], 1), 16000, "FLOAT")
    _, chunks = replay(path)
    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-6)


def test_an_ogg_file_replays_too(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "tone.ogg", tone(22050, 1.0, 600.0), 22050, "VORBIS")
    _, chunks = replay(path)
    samples = np.concatenate([c.samples for c in chunks])
    assert abs(len(samples) - 16000) <= len(chunks)
    assert peak_frequency(samples, 16000) == pytest.approx(600.0, abs=1.0)


def test_a_real_time_replay_waits_for_its_media_time(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "slow.wav", tone(16000, 1.0, 440.0), 16000)
    source = FileAudioSource("mic", path, 16000, start_time=START, block_s=0.5)
    source.start()
    try:
        assert source.read(0.0) is None  # its first half second has not been "recorded" yet
        chunks = drain(source)
    finally:
        source.stop()
    assert [c.timestamp for c in chunks] == [START, START + 0.5]
    assert source.stats()["dropped_s"] == 0.0


def test_a_real_time_replay_drops_what_a_slow_reader_missed(tmp_path: Path) -> None:
    """As a live microphone would: beyond `buffer_s` behind, the oldest audio is gone."""
    path = write_audio(tmp_path / "late.wav", tone(16000, 1.5, 440.0), 16000)
    source = FileAudioSource("mic", path, 16000, start_time=START, buffer_s=0.2)
    source.start()
    try:
        time.sleep(1.0)  # a consumer that is at least a second late
        chunks = drain(source)
    finally:
        source.stop()
    dropped = source.stats()["dropped_s"]
    assert dropped >= 0.5
    assert chunks[0].timestamp == pytest.approx(START + dropped)
    for before, after in itertools.pairwise(chunks):
        assert after.timestamp == pytest.approx(before.end)
    assert source.stats()["audio_s"] + dropped == pytest.approx(1.5)


def test_stop_ends_a_replay(stereo_44k: Path) -> None:
    source = FileAudioSource("mic", stereo_44k, 16000, realtime=False)
    source.start()
    assert source.read(1.0) is not None and not source.finished
    source.stop()
    source.stop()
    assert source.finished and source.read(0.0) is None


def test_start_time_defaults_to_the_clock(stereo_44k: Path) -> None:
    source = FileAudioSource("mic", stereo_44k, 16000, realtime=False, clock=lambda: 42.0)
    source.start()
    try:
        chunk = source.read(1.0)
    finally:
        source.stop()
    assert chunk is not None and chunk.timestamp == 42.0
    assert source.end_timestamp == pytest.approx(44.0)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "Format not recognised"),
        (lambda p: soundfile.write(str(p), np.zeros(0, np.float32), 16000), "holds no audio"),
        (lambda p: p.mkdir(), "not a regular file"),
    ],
    ids=["missing", "empty", "corrupt", "no-samples", "directory"],
)
def test_an_unreadable_file_fails_at_start_naming_the_path(tmp_path: Path, make, reason) -> None:
    path = tmp_path / "bad.wav"
    make(path)
    source = open_audio_source("door", str(path))
    with pytest.raises(SourceError) as failure:
        source.start()
    message = str(failure.value)
    assert message.startswith(f"microphone door: cannot read audio file {path}: ")
    assert reason in message


def test_a_file_that_breaks_midway_ends_with_an_error(tmp_path: Path) -> None:
    content = np.random.default_rng(2).uniform(-0.5, 0.5, 16000 * 3).astype(np.float32)
    whole = write_audio(tmp_path / "whole.flac", content, 16000).read_bytes()
    path = tmp_path / "truncated.flac"
    path.write_bytes(whole[: len(whole) // 2])
    source, chunks = replay(path)
    assert chunks  # what decoded before the damage was delivered
    assert source.error is not None
    assert source.error.startswith(f"microphone mic: cannot read audio file {path}: ")


def test_sources_are_classified_and_described() -> None:
    assert is_audio_file("clips/door.wav") and is_audio_file(" Door.FLAC ")
    assert is_audio_file("a.ogg") and not is_audio_file("a.mp4")
    assert not is_audio_file(2) and not is_audio_file("USB") and not is_audio_file("default")
    assert describe_audio_source("clips/door.wav") == "audio file clips/door.wav"
    assert describe_audio_source("default") == "default microphone"
    assert describe_audio_source("USB") == 'microphone "USB"'
    assert describe_audio_source(2) == "microphone #2"
    assert describe_audio_source("2") == "microphone #2"


def test_open_audio_source_picks_the_adapter_without_opening_anything() -> None:
    replay_source = open_audio_source("door", "clips/missing.wav", realtime=False)
    assert isinstance(replay_source, FileAudioSource) and not replay_source.live
    for configured in (None, "default", 1, "USB"):
        microphone = open_audio_source("door", configured)
        assert isinstance(microphone, MicrophoneSource) and microphone.live
        assert microphone.sample_rate == 16000


def test_the_ring_hands_out_samples_in_order_across_its_end() -> None:
    ring = SampleRing(8)
    ring.write(np.arange(5, dtype=np.float32))
    assert ring.read(3) == (0, pytest.approx([0, 1, 2]))
    ring.write(np.arange(5, 10, dtype=np.float32))  # wraps around the end of the buffer
    first, samples = ring.read(100)
    assert first == 3 and samples.tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert ring.dropped == 0 and len(ring) == 0


def test_a_full_ring_drops_the_oldest_samples_and_counts_them() -> None:
    ring = SampleRing(4)
    ring.write(np.arange(3, dtype=np.float32))
    ring.write(np.arange(3, 6, dtype=np.float32))
    assert ring.dropped == 2
    first, samples = ring.read(10)
    assert first == 2 and samples.tolist() == [2, 3, 4, 5]
    ring.write(np.arange(6, 16, dtype=np.float32))  # one write larger than the ring
    first, samples = ring.read(10)
    assert first == 12 and samples.tolist() == [12, 13, 14, 15]
    assert ring.dropped == 2 + 6
