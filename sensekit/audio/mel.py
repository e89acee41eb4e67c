"""The mel filter bank, in plain numpy: the same matrix as `librosa.filters.mel` (Slaney's mel
scale and area normalisation, librosa's defaults), verified against librosa by a test.

Why not call librosa: importing `librosa.filters` pulls scipy.signal, numba and llvmlite and
costs about 110 MB of resident memory — on a Raspberry Pi, for one 26 × 257 matrix computed
once at start-up.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_F_SP = 200.0 / 3.0  # Hz per mel below 1 kHz (Slaney's linear part)
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    logarithmic = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mel: npt.ArrayLike) -> npt.NDArray[np.float64]:
    mel = np.asarray(mel, dtype=np.float64)
    linear = _F_SP * mel
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, logarithmic, linear)


def mel_filter_bank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> npt.NDArray[np.float32]:
    """Triangular filters, n_mels × (n_fft // 2 + 1), each normalised to unit area."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)
