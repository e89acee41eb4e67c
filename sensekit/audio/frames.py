"""Frame-level analysis shared by voice activity detection and the prosody features.

Everything is computed for all frames of a block at once (numpy over a frames × samples view),
never in a Python loop per frame: a 2 s block at 16 kHz is ~200 frames and costs a few
milliseconds on one core.

Pitch is YIN (de Cheveigné & Kawahara, JASA 2002): the cumulative mean normalised difference
function, the first dip under a threshold, parabolic refinement. Unlike pYIN it costs about as
much as two FFTs per frame, and it also yields the aperiodicity (the dip's depth) that the
voicing decision and the harmonics-to-noise estimate need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

HOP_S = 0.010
"""10 ms between frames, as in eGeMAPS."""
SPECTRAL_FRAME_S = 0.025
"""25 ms analysis frames for energy and spectrum."""
F0_MIN_HZ = 65.0
F0_MAX_HZ = 500.0
YIN_THRESHOLD = 0.15
"""The first lag whose normalised difference dips under this is the period (YIN's step 4)."""
VOICING_APERIODICITY = 0.25
"""Frames whose best dip is deeper than this (more periodic) count as voiced."""
SILENCE_BELOW_PEAK_DB = 40.0
"""Frames this far under the block's loudest frame are silence: no pitch, no spectrum."""
EPS = 1e-10


def _frame(signal: FloatArray, length: int, hop: int) -> FloatArray:
    """Frames as rows; a strided view, no copy. Needs len(signal) >= length."""
    return np.lib.stride_tricks.sliding_window_view(signal, length)[::hop]


@dataclass(frozen=True, slots=True)
class FrameAnalysis:
    """Per-frame tracks of one block, all of the same length (one value per 10 ms hop).

    `f0_hz` is NaN where the frame is unvoiced. `power` is the one-sided power spectrum of
    each 25 ms frame (Hann window), bins spaced `sample_rate / n_fft` apart.
    """

    sample_rate: int
    n_fft: int
    energy_db: FloatArray
    f0_hz: FloatArray
    aperiodicity: FloatArray
    voiced: npt.NDArray[np.bool_]
    sounding: npt.NDArray[np.bool_]
    power: FloatArray

    @property
    def frames(self) -> int:
        return len(self.energy_db)


class FrameAnalyser:
    """Precomputes windows and lag tables for one sample rate, then analyses blocks."""

    def __init__(self, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self.hop = round(HOP_S * sample_rate)
        self.spectral_length = round(SPECTRAL_FRAME_S * sample_rate)
        self.n_fft = 1 << (self.spectral_length - 1).bit_length()
        self.window = np.hanning(self.spectral_length).astype(np.float32)
        self.tau_min = max(2, int(sample_rate / F0_MAX_HZ))
        self.tau_max = int(np.ceil(sample_rate / F0_MIN_HZ))
        # YIN integrates over a window as long as the longest period it looks for.
        self.yin_window = self.tau_max
        self.yin_length = self.yin_window + self.tau_max + 1
        self.yin_fft = 1 << (2 * self.yin_length - 1).bit_length()
        self.min_samples = max(self.yin_length, self.spectral_length)

    def frame_count(self, samples: int) -> int:
        return 0 if samples < self.min_samples else 1 + (samples - self.min_samples) // self.hop

    def analyse(self, signal: FloatArray, spectrum: bool = True) -> FrameAnalysis:
        """All frame tracks of `signal` (mono float32); frames start every hop from sample 0.
        `spectrum=False` skips the power spectrum (`power` is then empty)."""
        signal = np.asarray(signal, dtype=np.float32)
        count = self.frame_count(len(signal))
        if count == 0:
            raise ValueError(
                f"a block needs at least {self.min_samples} samples "
                f"({self.min_samples / self.sample_rate * 1000:.0f} ms), got {len(signal)}"
            )
        spectral = _frame(signal, self.spectral_length, self.hop)[:count]
        energy = np.mean(np.square(spectral, dtype=np.float32), axis=1)
        energy_db = (10.0 * np.log10(energy + EPS)).astype(np.float32)
        if spectrum:
            power = np.square(np.abs(np.fft.rfft(spectral * self.window, n=self.n_fft, axis=1)))
        else:  # voice activity needs levels and pitch only
            power = np.zeros((count, 0), dtype=np.float32)
        sounding = energy_db > float(np.max(energy_db)) - SILENCE_BELOW_PEAK_DB
        f0, aperiodicity = self._yin(_frame(signal, self.yin_length, self.hop)[:count])
        voiced = sounding & (aperiodicity < VOICING_APERIODICITY)
        f0 = np.where(voiced, f0, np.nan).astype(np.float32)
        return FrameAnalysis(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            energy_db=energy_db,
            f0_hz=f0,
            aperiodicity=aperiodicity,
            voiced=voiced,
            sounding=sounding,
            power=power.astype(np.float32),
        )

    def _yin(self, frames: FloatArray) -> tuple[FloatArray, FloatArray]:
        """F0 (Hz) and aperiodicity (0 = perfectly periodic) of every frame."""
        w, tau_max = self.yin_window, self.tau_max
        frames = frames - frames.mean(axis=1, keepdims=True)
        # d(tau) = sum_j (x_j - x_{j+tau})^2 over j < w, expanded into energies and a
        # cross-correlation computed with one FFT pair per frame.
        spectrum = np.fft.rfft(frames, n=self.yin_fft, axis=1)
        head = np.fft.rfft(frames[:, :w], n=self.yin_fft, axis=1)
        cross = np.fft.irfft(spectrum * np.conj(head), n=self.yin_fft, axis=1)[:, : tau_max + 1]
        squares = np.cumsum(np.square(frames), axis=1)
        squares = np.concatenate([np.zeros((len(frames), 1), squares.dtype), squares], axis=1)
        lags = np.arange(tau_max + 1)
        energy_head = squares[:, w : w + 1]
        energy_shifted = squares[:, lags + w] - squares[:, lags]
        difference = np.maximum(energy_head + energy_shifted - 2.0 * cross, 0.0)
        cumulative = np.cumsum(difference[:, 1:], axis=1)
        cmnd = np.ones_like(difference)
        cmnd[:, 1:] = difference[:, 1:] * lags[1:] / np.maximum(cumulative, EPS)
        search = cmnd[:, self.tau_min : tau_max]
        # The first local minimum under the threshold, else the global minimum.
        is_min = np.zeros_like(search, dtype=bool)
        is_min[:, 1:-1] = (search[:, 1:-1] <= search[:, :-2]) & (search[:, 1:-1] < search[:, 2:])
        under = is_min & (search < YIN_THRESHOLD)
        first = np.argmax(under, axis=1)
        best = np.where(under.any(axis=1), first, np.argmin(search, axis=1))
        tau = best + self.tau_min
        rows = np.arange(len(frames))
        # Parabolic interpolation of the dip for sub-sample periods.
        left = cmnd[rows, np.maximum(tau - 1, 1)]
        centre = cmnd[rows, tau]
        right = cmnd[rows, np.minimum(tau + 1, tau_max)]
        curvature = left - 2.0 * centre + right
        safe = np.where(np.abs(curvature) > EPS, curvature, 1.0)
        shift = np.where(np.abs(curvature) > EPS, 0.5 * (left - right) / safe, 0.0)
        period = tau + np.clip(shift, -1.0, 1.0)
        return (
            (self.sample_rate / period).astype(np.float32),
            np.clip(centre, 0.0, 1.0).astype(np.float32),
        )
