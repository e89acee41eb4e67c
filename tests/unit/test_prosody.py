"""Prosody features move the right way on controlled speech and known signals.

espeak-ng lets one parameter change at a time: the same sentence at a higher pitch must have a
higher F0 mean, louder must be louder, faster must have more syllables per second.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensekit.audio.frames import FrameAnalyser
from sensekit.audio.prosody import FEATURE_NAMES, ProsodyExtractor
from sensekit.audio.voice import VoiceClassifier
from tools.media.speech import SENTENCES, have_espeak, synthesise

RATE = 16000
needs_espeak = pytest.mark.skipif(
    not have_espeak(), reason="espeak-ng is not installed: run the README's install command"
)


@pytest.fixture(scope="module")
def extractor() -> ProsodyExtractor:
    return ProsodyExtractor(RATE)


def two_seconds(signal: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(signal) > 1e-3)
    signal = signal[loud[0] :]
    out = np.zeros(2 * RATE, dtype=np.float32)
    out[: min(len(signal), len(out))] = signal[: len(out)]
    return out


def feature(extractor: ProsodyExtractor, signal: np.ndarray, name: str) -> float:
    return float(extractor.extract(two_seconds(signal))[FEATURE_NAMES.index(name)])


@pytest.mark.parametrize("f0", [80.0, 120.0, 220.0, 400.0])
def test_yin_finds_the_pitch_of_a_harmonic_tone(f0: float) -> None:
    t = np.arange(RATE) / RATE
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3)).astype(np.float32) * 0.2
    frames = FrameAnalyser(RATE).analyse(tone)
    assert frames.voiced.mean() > 0.95
    assert np.nanmedian(frames.f0_hz) == pytest.approx(f0, rel=0.01)


def test_white_noise_is_not_voiced() -> None:
    noise = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)
    assert FrameAnalyser(RATE).analyse(noise).voiced.mean() < 0.02


def test_features_are_finite_and_complete(extractor: ProsodyExtractor) -> None:
    rng = np.random.default_rng(1)
    for signal in (np.zeros(2 * RATE), rng.normal(0, 0.1, 2 * RATE)):
        values = extractor.extract(signal.astype(np.float32))
        assert values.shape == (len(FEATURE_NAMES),)
        assert np.all(np.isfinite(values))


@needs_espeak
@pytest.mark.parametrize("text", SENTENCES[:3])
def test_higher_pitch_raises_the_f0_mean(extractor: ProsodyExtractor, text: str) -> None:
    low = feature(extractor, synthesise(text, pitch=20), "f0_st_mean")
    high = feature(extractor, synthesise(text, pitch=80), "f0_st_mean")
    assert high > low + 2.0  # semitones


@needs_espeak
@pytest.mark.parametrize("text", SENTENCES[:3])
def test_louder_raises_the_loudness(extractor: ProsodyExtractor, text: str) -> None:
    def mean_loudness(signal: np.ndarray) -> float:
        frames = extractor.analyser.analyse(two_seconds(signal))
        return float(np.mean(extractor.loudness_contour(frames)[frames.sounding]))

    quiet = mean_loudness(synthesise(text, amplitude=40))
    loud = mean_loudness(synthesise(text, amplitude=160))
    assert loud > quiet * 1.3


@needs_espeak
def test_the_model_features_do_not_depend_on_the_microphone_gain(
    extractor: ProsodyExtractor,
) -> None:
    """Loudness enters the features only relative to the window's own level (see the
    module docstring): a hotter microphone must not look like a more aroused customer."""
    window = two_seconds(synthesise(SENTENCES[1]))
    quiet = extractor.extract(window * 0.25)
    loud = extractor.extract(window)
    # In units of each feature's spread over the training data: a 12 dB gain change moves no
    # feature by more than a few hundredths (log floors on near-silent mel bands).
    spread = VoiceClassifier().training_std
    assert float(np.max(np.abs(quiet - loud) / spread)) < 0.05
    f0 = FEATURE_NAMES.index("f0_st_mean")
    higher = extractor.extract(two_seconds(synthesise(SENTENCES[1], pitch=85)))
    assert higher[f0] > loud[f0] + 2.0


def test_the_mel_filter_bank_is_librosas() -> None:
    """Our numpy filter bank replaces librosa's at run time (110 MB less memory); the features
    the model was trained on must not change."""
    import librosa

    from sensekit.audio.mel import mel_filter_bank

    for rate, n_fft in ((16000, 512), (22050, 1024)):
        expected = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=26, fmin=20.0, fmax=rate / 2)
        ours = mel_filter_bank(rate, n_fft, 26, 20.0, rate / 2)
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-8)
