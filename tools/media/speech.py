"""Self-made audio: speech synthesised with espeak-ng, and the noises of a shop, in numpy.

No recorded voice is shipped or needed: espeak-ng (Debian's `espeak-ng`, GPL-3.0 program; its
output is ours) takes pitch, speed and amplitude as parameters, which is exactly what the
feature tests need (higher pitch must raise the F0 mean, louder must raise the loudness).
Noises are generated from seeded random numbers, so every fixture is the same on every run.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

FloatArray = npt.NDArray[np.float32]

SAMPLE_RATE = 16000

SENTENCES = (
    "Good morning, could you tell me where I can find the fresh bread today?",
    "I have been waiting here for twenty minutes and nobody has helped me at all.",
    "That is wonderful, thank you so much, this is exactly what I was looking for.",
    "Excuse me, do you have these shoes in a larger size, maybe in black?",
    "We would like to pay by card, and could we have a bag for the bottles please?",
)


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesise(
    text: str,
    *,
    pitch: int = 50,
    speed: int = 160,
    amplitude: int = 100,
    voice: str = "en-us",
    sample_rate: int = SAMPLE_RATE,
) -> FloatArray:
    """espeak-ng speech as float32 mono. pitch 0–99, speed in words per minute, amplitude
    0–200 (espeak-ng's own scales)."""
    command = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed)]
    command += ["-a", str(amplitude), "--stdout", text]
    wav = subprocess.run(command, check=True, capture_output=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(samples, rate, sample_rate).astype(np.float32)


def silence(seconds: float, sample_rate: int = SAMPLE_RATE) -> FloatArray:
    return np.zeros(round(seconds * sample_rate), dtype=np.float32)


def room_tone(seconds: float, level_db: float = -60.0, seed: int = 0) -> FloatArray:
    """Very quiet white noise: the self-noise of a microphone in a quiet room."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(round(seconds * SAMPLE_RATE))
    return _at_level(noise, level_db)


def fan_noise(seconds: float, level_db: float = -30.0, seed: int = 1) -> FloatArray:
    """A fan or air-conditioner: low-pass (brown-ish) noise plus a steady 100 Hz motor hum
    with harmonics. Loud, steady and partly periodic: what an energy gate mistakes for
    speech."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spectrum /= np.maximum(freqs, 50.0) / 50.0
    broadband = np.fft.irfft(spectrum, n)
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 100.0 * k * t) / k for k in (1, 2, 3))
    mixed = broadband / np.std(broadband) + 0.5 * hum / np.std(hum)
    return _at_level(mixed, level_db)


def clicks(
    seconds: float, level_db: float = -10.0, every_s: float = 0.7, seed: int = 2
) -> FloatArray:
    """Sharp 5 ms clicks (a till, a door latch, a dropped coin) on silence."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float64)
    length = round(0.005 * SAMPLE_RATE)
    decay = np.exp(-np.arange(length) / (length / 5))
    for start in np.arange(0.1, seconds - 0.01, every_s):
        i = round(start * SAMPLE_RATE)
        out[i : i + length] += rng.standard_normal(length)[: len(out) - i] * decay[: len(out) - i]
    peak = 10 ** (level_db / 20)
    return (out / np.max(np.abs(out)) * peak).astype(np.float32)


def _at_level(signal: npt.NDArray[np.float64], level_db: float) -> FloatArray:
    rms = float(np.sqrt(np.mean(np.square(signal)))) or 1.0
    return (signal / rms * 10 ** (level_db / 20)).astype(np.float32)


def rms_db(signal: FloatArray) -> float:
    return float(10 * np.log10(np.mean(np.square(signal.astype(np.float64))) + 1e-12))


def mix(*parts: FloatArray) -> FloatArray:
    """Sum signals of different lengths (shorter ones are zero-padded at the end)."""
    length = max(len(p) for p in parts)
    out = np.zeros(length, dtype=np.float32)
    for part in parts:
        out[: len(part)] += part
    return np.clip(out, -1.0, 1.0)


def concat(*parts: FloatArray) -> FloatArray:
    return np.concatenate(parts).astype(np.float32)
