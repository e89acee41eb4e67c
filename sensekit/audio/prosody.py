"""Prosody features of one analysis window: our own eGeMAPS-inspired set, not openSMILE.

openSMILE's licence forbids use in products, so nothing here depends on it or copies it. The
set follows the *ideas* of eGeMAPS (Eyben et al., IEEE Trans. Affective Computing 2016): a
small, interpretable set of pitch, loudness, voice quality, spectral balance, MFCC and rhythm
statistics, which is what carries arousal and is least tied to what is said.

Every feature is a statistic over the 10 ms frame tracks of `FrameAnalysis`:

- pitch (voiced frames), in semitones above 27.5 Hz: mean, standard deviation, 20th/50th/80th
  percentiles, the 20–80 range, mean rising and falling slope (semitones per second between
  consecutive voiced frames);
- loudness (sounding frames), the sum of mel-band powers raised to 0.3 (a Stevens-law
  approximation of perceived loudness), divided by the window's own 95th percentile: the same
  eight statistics, the mean over voiced and over unvoiced frames, and loudness peaks per
  second (a syllable-rate proxy);
- perturbation: a jitter-like relative period change and a shimmer-like level change (dB)
  between consecutive voiced 10 ms frames (frame-level, not cycle-to-cycle: a microphone in a
  shop gives no reliable glottal cycles), the harmonics-to-noise ratio from YIN's aperiodicity
  (mean and standard deviation), and the level differences of the first and second and of the
  first and third harmonic, H1–H2 (mean, standard deviation) and H1–H3 (mean) — eGeMAPS's
  glottal-source proxies, here read off the 25 ms spectrum at multiples of the YIN pitch, so for
  low voices they are coarse (harmonics of a 100 Hz voice are only just resolved);
- spectral balance: alpha ratio (50–1000 Hz over 1–5 kHz, dB), Hammarberg index (strongest
  peak 0–2 kHz over 2–5 kHz, dB), spectral slopes 0–500 Hz and 500–1500 Hz (dB per kHz), for
  voiced frames, and the first, second and fourth for unvoiced sounding frames; spectral
  centroid and flux; and the spectral envelope of voiced frames as 13 band levels (pairs of
  the 26 mel bands from 20 Hz to 8 kHz), each in dB relative to the frame's total mel power;
- MFCC 1–4 over voiced frames and over all sounding frames (mean and standard deviation);
- rhythm: the voiced fraction, voiced segments per second, the mean and standard deviation of
  voiced-segment and of gap lengths, and the silent fraction.

No feature depends on the input's gain: loudness is relative to the window's own level and
every other feature is a ratio, a difference of dB values, a frequency, a duration or an MFCC
above c0. A microphone's gain or a speaker's distance then cannot shift a feature, and EmoDB,
whose clips are each normalised to full scale, teaches nothing about absolute level that a shop
would contradict. What the microphone's frequency response, the room and the speaker do shift
(band levels, spectral slopes, pitch) is for site normalisation to remove.

A statistic over an empty set (no voiced frame) is 0: the voiced fraction tells the model why.
`FEATURE_VERSION` changes whenever a feature's definition changes, so a model trained on other
features is refused at load time instead of silently mis-scoring.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.fft import dct

from sensekit.audio.frames import EPS, FloatArray, FrameAnalyser, FrameAnalysis
from sensekit.audio.mel import mel_filter_bank

FEATURE_VERSION = "sensekit-prosody/2"
N_MELS = 26
N_BANDS = N_MELS // 2
N_MFCC = 4
LOUDNESS_EXPONENT = 0.3
LOUDNESS_REFERENCE_PERCENTILE = 95.0
SEMITONE_REFERENCE_HZ = 27.5
HARMONIC_SEARCH = 0.25
"""A harmonic's level is the strongest bin within ±this fraction of F0 around k × F0."""

_STATS = ("mean", "std", "p20", "p50", "p80", "range20_80", "rise_mean", "fall_mean")

FEATURE_NAMES: tuple[str, ...] = (
    *(f"f0_st_{s}" for s in _STATS),
    *(f"loudness_rel_{s}" for s in _STATS),
    "loudness_rel_voiced_mean",
    "loudness_rel_unvoiced_mean",
    "loudness_peaks_per_s",
    "jitter_rel",
    "shimmer_db",
    "hnr_db_mean",
    "hnr_db_std",
    "h1_h2_db_mean",
    "h1_h2_db_std",
    "h1_h3_db_mean",
    "alpha_ratio_voiced",
    "hammarberg_voiced",
    "slope_0_500_voiced",
    "slope_500_1500_voiced",
    "alpha_ratio_unvoiced",
    "hammarberg_unvoiced",
    "slope_500_1500_unvoiced",
    "centroid_hz_mean",
    "centroid_hz_std",
    "flux_mean",
    "flux_std",
    *(f"band{b:02d}_rel_db_voiced" for b in range(1, N_BANDS + 1)),
    *(f"mfcc{i}_{s}" for i in range(1, N_MFCC + 1) for s in ("mean", "std")),
    *(f"mfcc{i}_sounding_{s}" for i in range(1, N_MFCC + 1) for s in ("mean", "std")),
    "voiced_fraction",
    "voiced_segments_per_s",
    "voiced_segment_s_mean",
    "voiced_segment_s_std",
    "gap_s_mean",
    "gap_s_std",
    "silent_fraction",
)


def _safe_mean(values: FloatArray) -> float:
    return float(np.mean(values)) if values.size else 0.0


def _safe_std(values: FloatArray) -> float:
    return float(np.std(values)) if values.size > 1 else 0.0


def _contour_stats(values: FloatArray, present: npt.NDArray[np.bool_], hop_s: float) -> list[float]:
    """The eight statistics of a contour over the frames where it is present.

    Slopes are taken between consecutive frames that are both present, so a pause does not
    count as a jump.
    """
    selected = values[present]
    if selected.size == 0:
        return [0.0] * len(_STATS)
    p20, p50, p80 = np.percentile(selected, (20, 50, 80))
    pairs = present[1:] & present[:-1]
    slopes = (np.diff(values)[pairs]) / hop_s
    return [
        float(np.mean(selected)),
        _safe_std(selected),
        float(p20),
        float(p50),
        float(p80),
        float(p80 - p20),
        _safe_mean(slopes[slopes > 0]),
        _safe_mean(slopes[slopes < 0]),
    ]


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Lengths (in frames) of the runs of True, and of the gaps of False between two runs."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return ends - starts, starts[1:] - ends[:-1]


class ProsodyExtractor:
    """Turns a window of mono float32 audio into `FEATURE_NAMES`-ordered float32 features."""

    def __init__(self, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self.analyser = FrameAnalyser(sample_rate)
        n_fft = self.analyser.n_fft
        self._hop_s = self.analyser.hop / sample_rate
        self._mel = mel_filter_bank(sample_rate, n_fft, N_MELS, 20.0, sample_rate / 2)
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
        self._freqs = freqs
        self._bin_hz = float(freqs[1])
        self._band_low = (freqs >= 50) & (freqs < 1000)
        self._band_high = (freqs >= 1000) & (freqs < 5000)
        self._band_0_2k = freqs < 2000
        self._band_2k_5k = (freqs >= 2000) & (freqs < 5000)
        self._slope_0_500 = self._slope_weights(freqs, 0.0, 500.0)
        self._slope_500_1500 = self._slope_weights(freqs, 500.0, 1500.0)
        # Bin offsets searched around a harmonic: wide enough for ±HARMONIC_SEARCH × F0_MAX.
        reach = int(np.ceil(HARMONIC_SEARCH * 3 * 500.0 / self._bin_hz))
        self._offsets = np.arange(-reach, reach + 1)

    @staticmethod
    def _slope_weights(freqs: FloatArray, low: float, high: float) -> FloatArray:
        """Least-squares slope of dB against kHz as one dot product per frame."""
        band = (freqs >= low) & (freqs <= high)
        centred = np.where(band, freqs / 1000.0, 0.0)
        centred[band] -= centred[band].mean()
        return (centred / np.sum(centred[band] ** 2)).astype(np.float32)

    @property
    def min_samples(self) -> int:
        return self.analyser.min_samples

    def extract(self, window: FloatArray) -> FloatArray:
        return self.from_analysis(self.analyser.analyse(window))

    def from_analysis(self, frames: FrameAnalysis) -> FloatArray:
        """The features of an already analysed window (VAD and features share one analysis)."""
        hop_s = self._hop_s
        voiced, sounding = frames.voiced, frames.sounding
        unvoiced = sounding & ~voiced
        power = frames.power
        duration = frames.frames * hop_s

        f0_st = np.where(
            voiced, 12.0 * np.log2(np.nan_to_num(frames.f0_hz, nan=1.0) / SEMITONE_REFERENCE_HZ), 0
        ).astype(np.float32)
        mel = power @ self._mel.T
        loudness = self._loudness(mel)
        reference = (
            float(np.percentile(loudness[sounding], LOUDNESS_REFERENCE_PERCENTILE))
            if sounding.any()
            else 1.0
        )
        loudness_rel = loudness / max(reference, EPS)

        features: list[float] = []
        features += _contour_stats(f0_st, voiced, hop_s)
        features += _contour_stats(loudness_rel, sounding, hop_s)
        features += [_safe_mean(loudness_rel[voiced]), _safe_mean(loudness_rel[unvoiced])]
        features.append(self._peaks_per_s(loudness, sounding, duration))
        features += self._perturbation(frames, voiced)

        db = 10.0 * np.log10(power + EPS)
        features += self._harmonics(db, frames.f0_hz, voiced)
        low = np.sum(power[:, self._band_low], axis=1)
        high = np.sum(power[:, self._band_high], axis=1)
        alpha = 10.0 * np.log10((low + EPS) / (high + EPS))
        hammarberg = np.max(db[:, self._band_0_2k], axis=1) - np.max(
            db[:, self._band_2k_5k], axis=1
        )
        slope_low = db @ self._slope_0_500
        slope_mid = db @ self._slope_500_1500
        features += [
            _safe_mean(alpha[voiced]),
            _safe_mean(hammarberg[voiced]),
            _safe_mean(slope_low[voiced]),
            _safe_mean(slope_mid[voiced]),
            _safe_mean(alpha[unvoiced]),
            _safe_mean(hammarberg[unvoiced]),
            _safe_mean(slope_mid[unvoiced]),
        ]
        total = np.sum(power, axis=1) + EPS
        centroid = (power @ self._freqs) / total
        normalised = power / total[:, None]
        flux = np.sqrt(np.sum(np.square(np.diff(normalised, axis=0)), axis=1))
        flux_present = sounding[1:] & sounding[:-1]
        features += [
            _safe_mean(centroid[sounding]),
            _safe_std(centroid[sounding]),
            _safe_mean(flux[flux_present]),
            _safe_std(flux[flux_present]),
        ]
        voiced_mel = mel[voiced]
        if voiced_mel.size:
            bands = voiced_mel[:, 0::2] + voiced_mel[:, 1::2]
            relative = 10.0 * np.log10((bands + EPS) / (np.sum(voiced_mel, axis=1) + EPS)[:, None])
            features += [float(v) for v in np.mean(relative, axis=0)]
        else:
            features += [0.0] * N_BANDS
        mfcc = dct(10.0 * np.log10(mel + EPS), type=2, norm="ortho", axis=1)[:, 1 : N_MFCC + 1]
        for present in (voiced, sounding):
            for i in range(N_MFCC):
                features += [_safe_mean(mfcc[present, i]), _safe_std(mfcc[present, i])]
        features += self._rhythm(voiced, sounding, duration)
        return np.asarray(features, dtype=np.float32)

    @staticmethod
    def _loudness(mel: FloatArray) -> FloatArray:
        return np.sum(np.power(mel + EPS, LOUDNESS_EXPONENT), axis=1).astype(np.float32)

    def loudness_contour(self, frames: FrameAnalysis) -> FloatArray:
        """Absolute loudness per frame (it follows the input gain). The features use it only
        relative to the window's own level; this is for tests and diagnostics."""
        return self._loudness(frames.power @ self._mel.T)

    def _peaks_per_s(
        self, loudness: FloatArray, sounding: npt.NDArray[np.bool_], duration: float
    ) -> float:
        """Local maxima of the (3-frame smoothed) loudness above its mean: syllable nuclei."""
        if loudness.size < 3:
            return 0.0
        smooth = np.convolve(loudness, np.ones(3, dtype=np.float32) / 3.0, mode="same")
        mean = float(np.mean(smooth[sounding])) if sounding.any() else float(np.mean(smooth))
        peaks = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:]) & (smooth[1:-1] > mean)
        return float(np.count_nonzero(peaks)) / duration

    @staticmethod
    def _perturbation(frames: FrameAnalysis, voiced: npt.NDArray[np.bool_]) -> list[float]:
        pairs = voiced[1:] & voiced[:-1]
        period = 1.0 / np.nan_to_num(frames.f0_hz, nan=1.0)
        jitter = 0.0
        shimmer = 0.0
        if pairs.any():
            jitter = float(np.mean(np.abs(np.diff(period))[pairs]) / np.mean(period[voiced]))
            shimmer = float(np.mean(np.abs(np.diff(frames.energy_db))[pairs]))
        aperiodicity = np.clip(frames.aperiodicity[voiced], 1e-3, 1.0 - 1e-3)
        hnr = 10.0 * np.log10((1.0 - aperiodicity) / aperiodicity)
        return [jitter, shimmer, _safe_mean(hnr), _safe_std(hnr)]

    def _harmonics(
        self, db: FloatArray, f0_hz: FloatArray, voiced: npt.NDArray[np.bool_]
    ) -> list[float]:
        """H1–H2 (mean, std) and H1–H3 (mean) in dB over voiced frames.

        A harmonic's level is the strongest bin within ±HARMONIC_SEARCH × F0 of k × F0: YIN's
        pitch is accurate to a few Hz, the bins are 31 Hz apart, so the peak search is what
        finds the harmonic's actual maximum.
        """
        if not voiced.any():
            return [0.0, 0.0, 0.0]
        spectrum = db[voiced]
        f0 = f0_hz[voiced].astype(np.float32)
        offsets = self._offsets
        reach = (HARMONIC_SEARCH * f0 / self._bin_hz)[:, None]
        allowed = np.abs(offsets)[None, :] <= np.maximum(reach, 0.5)
        last = spectrum.shape[1] - 1
        levels = []
        for k in (1, 2, 3):
            centre = np.rint(k * f0 / self._bin_hz).astype(np.int64)
            columns = np.clip(centre[:, None] + offsets[None, :], 0, last)
            values = np.take_along_axis(spectrum, columns, axis=1)
            levels.append(np.max(np.where(allowed, values, -np.inf), axis=1))
        h1_h2 = levels[0] - levels[1]
        return [_safe_mean(h1_h2), _safe_std(h1_h2), _safe_mean(levels[0] - levels[2])]

    def _rhythm(
        self, voiced: npt.NDArray[np.bool_], sounding: npt.NDArray[np.bool_], duration: float
    ) -> list[float]:
        hop_s = self._hop_s
        runs, gaps = _runs(voiced)
        runs_s, gaps_s = runs * hop_s, gaps * hop_s
        return [
            float(np.mean(voiced)),
            len(runs) / duration,
            _safe_mean(runs_s),
            _safe_std(runs_s),
            _safe_mean(gaps_s),
            _safe_std(gaps_s),
            float(np.mean(~sounding)),
        ]
