"""Self-made site backgrounds for the audio calibration tests: noise, mains hum and music.

Each is seeded, so a fixture is the same on every run, and scaled to an RMS level in dBFS.
They span what a voice detector meets in a shop: broadband noise that is never periodic
(white, pink: ventilation, traffic), a mains hum whose 20 ms period is longer than any voice's,
and tonal music, which is periodic in the voice's pitch range and rises and falls note by note,
the background most easily mistaken for a voice.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tools.media.speech import SAMPLE_RATE, rms_db

FloatArray = npt.NDArray[np.float32]


def _at_level(signal: npt.NDArray[np.float64], level_db: float) -> FloatArray:
    rms = float(np.sqrt(np.mean(np.square(signal)))) or 1.0
    return (signal / rms * 10 ** (level_db / 20)).astype(np.float32)


def white_noise(seconds: float, level_db: float = -40.0, seed: int = 10) -> FloatArray:
    rng = np.random.default_rng(seed)
    return _at_level(rng.standard_normal(round(seconds * SAMPLE_RATE)), level_db)


def pink_noise(seconds: float, level_db: float = -40.0, seed: int = 11) -> FloatArray:
    """Power falling 3 dB per octave, as ventilation and distant traffic do."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE), 20.0))
    return _at_level(np.fft.irfft(spectrum, n), level_db)


def mains_hum(
    seconds: float, level_db: float = -35.0, mains_hz: float = 50.0, seed: int = 12
) -> FloatArray:
    """A transformer or fridge: the mains frequency and six harmonics, over faint noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * mains_hz * k * t + k) / k for k in range(1, 8))
    return _at_level(hum + 0.1 * rng.standard_normal(len(t)), level_db)


def music(seconds: float, level_db: float = -30.0, seed: int = 13) -> FloatArray:
    """Background music: plucked notes of 0.15–0.5 s over 2½ octaves from 110 Hz (each with
    five harmonics and a decaying envelope) over a quiet bass drone."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    notes = [110.0 * 2 ** (k / 12) for k in range(30)]
    i = 0
    while i < n:
        length = round(rng.uniform(0.15, 0.5) * SAMPLE_RATE)
        t = np.arange(length) / SAMPLE_RATE
        f0 = float(rng.choice(notes))
        envelope = np.exp(-t * rng.uniform(2.0, 6.0)) * rng.uniform(0.4, 1.0)
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k**1.5 for k in range(1, 6))
        out[i : i + length] += (tone * envelope)[: n - i]
        i += length
    out += 0.2 * np.sin(2 * np.pi * 55.0 * np.arange(n) / SAMPLE_RATE)
    return _at_level(out, level_db)


def loop_to(signal: FloatArray, seconds: float) -> FloatArray:
    """`signal` repeated (or cut) to `seconds`."""
    n = round(seconds * SAMPLE_RATE)
    return np.resize(signal, n).astype(np.float32)


def under_speech(speech: FloatArray, background: FloatArray, snr_db: float) -> FloatArray:
    """`speech` over `background` (looped to its length), the background scaled so that the
    speech's active level (samples above -50 dBFS) is `snr_db` above the background's RMS."""
    active = speech[np.abs(speech) > 10 ** (-50 / 20)]
    noise = loop_to(background, len(speech) / SAMPLE_RATE)
    noise = noise * 10 ** ((rms_db(active) - snr_db - rms_db(noise)) / 20)
    return np.clip(speech + noise, -1.0, 1.0).astype(np.float32)
