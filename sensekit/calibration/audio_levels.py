"""Fit the voice-activity thresholds to a site's background sound: measurement and fitting.

What the noise floor means for the VAD: the segmenter (sensekit.audio.vad) keeps a rolling
floor, the 10th percentile of the last 5 s of 25 ms frame levels, and counts a frame as speech
evidence only when YIN finds a pitch in it *and* it is `snr_db` above that floor; a 2 s window
is analysed only when at least `min_speech_fraction` (20 %) of its frames are evidence. Steady
noise (white, pink, a fan, a 50 Hz hum whose period is longer than any voice's) therefore
never counts, however loud: its frames sit a dB or two above its own floor and are rarely
periodic. What can count is a background that is periodic *and* rises and falls: music, a
radio, beeps, a hum that swells. So the one threshold a background decides is `snr_db`, and it
is measured, not guessed: replay the VAD's own frame analysis and rolling floor over the
background, find the smallest `snr_db` at which no 2 s stretch of it reaches the evidence share
that makes a window (`required_snr_db`), and add a 3 dB margin for moments the recording
missed. A lower `snr_db` is worth having: voiced frames of speech stand out from the floor by
about the speech-to-noise ratio, so a quiet, steady site can hear softer or more distant
speakers. It is never set below 6 dB (an unsampled squeak or chair that is twice the
background's amplitude must not pass as a voice, and prosody features are unreliable closer
to the noise than that) nor above 25 dB: speech at a counter is rarely more than 10–25 dB above
a shop's background, so a background that needs more than that contains talking or loud music
and cannot be told apart from the speech it should let through. The result is then checked by
running the real SpeechSegmenter over the background (it must produce no window) and, when
given, over a recording of speech at the site (most of its voiced sound must be found).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import soxr

from sensekit.audio.frames import HOP_S, VOICING_APERIODICITY, FrameAnalyser
from sensekit.audio.vad import SpeechSegmenter, SpeechWindow, VadOptions
from sensekit.types import AudioChunk

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

SAFETY_DB = 3.0
"""Added to the measured requirement, for louder moments the recording did not catch."""
MIN_FITTED_SNR_DB = 6.0
"""Never fitted lower: a periodic sound twice the background's amplitude is not yet a voice."""
MAX_FITTED_SNR_DB = 25.0
"""A background that needs more than this would hide the speech it should let through."""
MIN_BACKGROUND_S = 10.0
"""The rolling floor looks 5 s back; a shorter background shows too little of the site."""
MIN_SPEECH_SHARE = 0.5
"""A speech recording of which less is found says the thresholds do not fit the site."""
SPEECH_ABOVE_BACKGROUND_DB = 3.0
"""In a speech recording, voiced frames this far above the background's 99th-percentile level
are taken as the talker (nothing in the background was ever that loud)."""
DIGITAL_SILENCE_DB = -90.0
_STEP_DB = 0.1
_SEARCH_LIMIT_DB = 60.0
_CONTIGUOUS_S = 0.05  # as the segmenter: larger timestamp jumps are gaps


@dataclass(frozen=True, slots=True)
class LevelTrack:
    """The VAD's per-frame view of one contiguous stretch of audio (one value per 10 ms)."""

    level_db: FloatArray
    periodic: BoolArray
    floor_db: FloatArray

    @property
    def margin_db(self) -> FloatArray:
        """How far each frame is above the rolling floor: what `snr_db` is compared with."""
        return self.level_db - self.floor_db

    @property
    def seconds(self) -> float:
        return len(self.level_db) * HOP_S


def level_track(
    samples: FloatArray, sample_rate: int, options: VadOptions, block_s: float = 0.1
) -> LevelTrack | None:
    """Frame levels, periodicity and the rolling floor exactly as SpeechSegmenter computes them
    (one floor per block of `block_s`, a low percentile of the last `floor_history_s`).
    None when the audio is shorter than one frame."""
    analyser = FrameAnalyser(sample_rate)
    if analyser.frame_count(len(samples)) == 0:
        return None
    frames = analyser.analyse(np.asarray(samples, dtype=np.float32), spectrum=False)
    levels = frames.energy_db.astype(np.float32)
    history = round(options.floor_history_s * sample_rate / analyser.hop)
    block = max(1, round(block_s * sample_rate / analyser.hop))
    floor = np.empty_like(levels)
    for start in range(0, len(levels), block):
        end = min(start + block, len(levels))
        recent = levels[max(0, end - history) : end]
        floor[start:end] = np.percentile(recent, options.floor_percentile)
    return LevelTrack(levels, frames.aperiodicity < VOICING_APERIODICITY, floor)


def _window_frames(options: VadOptions, sample_rate: int) -> int:
    analyser = FrameAnalyser(sample_rate)
    window = round(options.window_s * sample_rate)
    return max(1, (window - analyser.spectral_length) // analyser.hop + 1)


def worst_evidence_share(
    tracks: Sequence[LevelTrack], snr_db: float, window_frames: int
) -> tuple[float, int, float]:
    """The largest share of speech-evidence frames in any window of `window_frames` frames at
    `snr_db`, with the index of the track and the window's start (seconds into that track).

    Every window position is tried, not only those the segmenter would cut, so a background
    that stays under `min_speech_fraction` here cannot produce a window there."""
    best, where, when = 0.0, 0, 0.0
    for index, track in enumerate(tracks):
        evidence = track.periodic & (track.margin_db > snr_db)
        length = min(window_frames, len(evidence))
        if length == 0:
            continue
        counts = np.convolve(evidence.astype(np.int32), np.ones(length, np.int32), "valid")
        position = int(np.argmax(counts))
        share = float(counts[position]) / length
        if share > best:
            best, where, when = share, index, position * HOP_S
    return best, where, when


def required_snr_db(
    tracks: Sequence[LevelTrack], options: VadOptions, sample_rate: int
) -> float | None:
    """The smallest `snr_db` (to 0.1 dB) at which no window of the background reaches
    `min_speech_fraction` speech evidence; None if even 60 dB is not enough (digital silence
    between sounds, or talking). The worst share only falls as the threshold rises, so a
    bisection finds it."""
    frames = _window_frames(options, sample_rate)

    def quiet(snr: float) -> bool:
        return worst_evidence_share(tracks, snr, frames)[0] < options.min_speech_fraction

    if quiet(0.0):
        return 0.0
    if not quiet(_SEARCH_LIMIT_DB):
        return None
    low, high = 0, round(_SEARCH_LIMIT_DB / _STEP_DB)  # in steps: quiet(high), not quiet(low)
    while high - low > 1:
        middle = (low + high) // 2
        if quiet(middle * _STEP_DB):
            high = middle
        else:
            low = middle
    return round(high * _STEP_DB, 1)


@dataclass(frozen=True, slots=True)
class BackgroundLevels:
    """What the background sounds like to the VAD. Levels in dBFS of 25 ms frames."""

    seconds: float
    floor_db: float
    """10th percentile of frame levels: the level the VAD's rolling floor settles on."""
    median_db: float
    loud_db: float
    """99th percentile: a speech recording's voiced frames above it are taken as the talker."""
    spread_db: float
    """90th minus 10th percentile: 1–3 dB for steady noise, more for music or traffic."""
    periodic_share: float
    """Share of frames with a pitch in the voice range (hum above 65 Hz, music, beeps)."""
    periodic_margin_db: tuple[float, float, float] | None
    """Median, 95th percentile and maximum of (level − rolling floor) over periodic frames."""
    window_modulation_db: float
    """Median standard deviation of frame levels in 2 s windows (speech: about 8–15 dB)."""
    required_snr_db: float | None
    worst_share: float
    """Speech-evidence share of the most speech-like window at the options measured with."""
    worst_at_s: float
    """Where that window starts, seconds into the recording."""


def measure_background(
    tracks: Sequence[LevelTrack], options: VadOptions, sample_rate: int
) -> BackgroundLevels:
    if not tracks:
        raise ValueError("no background audio to measure")
    levels = np.concatenate([t.level_db for t in tracks]).astype(np.float64)
    periodic = np.concatenate([t.periodic for t in tracks])
    margins = np.concatenate([t.margin_db for t in tracks]).astype(np.float64)[periodic]
    p10, p50, p90, p99 = np.percentile(levels, [10, 50, 90, 99])
    frames = _window_frames(options, sample_rate)
    spreads = [
        float(np.median(np.lib.stride_tricks.sliding_window_view(t.level_db, frames).std(axis=1)))
        for t in tracks
        if len(t.level_db) >= frames
    ]
    worst, index, when = worst_evidence_share(tracks, options.snr_db, frames)
    offset = sum(t.seconds for t in tracks[:index])
    return BackgroundLevels(
        seconds=sum(t.seconds for t in tracks),
        floor_db=float(p10),
        median_db=float(p50),
        loud_db=float(p99),
        spread_db=float(p90 - p10),
        periodic_share=float(periodic.mean()),
        periodic_margin_db=(
            tuple(float(v) for v in np.percentile(margins, [50, 95, 100]))  # type: ignore[arg-type]
            if margins.size
            else None
        ),
        window_modulation_db=float(np.median(spreads)) if spreads else 0.0,
        required_snr_db=required_snr_db(tracks, options, sample_rate),
        worst_share=worst,
        worst_at_s=offset + when,
    )


@dataclass(frozen=True, slots=True)
class ThresholdFit:
    """The fitted `snr_db`, or None when the background cannot be told apart from speech."""

    snr_db: float | None
    reason: str


def fit_snr_db(
    levels: BackgroundLevels, options: VadOptions, allowed: tuple[float, float] = (3.0, 40.0)
) -> ThresholdFit:
    """The smallest safe `snr_db` for this background, clamped to `allowed` (the config's range)."""
    share = f"{options.min_speech_fraction:.0%}"
    window = f"{options.window_s:g} s"
    required = levels.required_snr_db
    limit = min(allowed[1], MAX_FITTED_SNR_DB)
    if required is None or required + SAFETY_DB > limit:
        needs = "more than 60" if required is None else f"{required:.1f}"
        return ThresholdFit(
            None,
            f"the background itself looks like speech: its periodic frames fill {share} of a "
            f"{window} window unless a frame must be {needs} dB above the floor (at "
            f"{levels.worst_at_s:.0f} s into the recording); with the {SAFETY_DB:g} dB margin "
            f"that is over the {limit:g} dB a voice at a counter can be expected to reach, so "
            "it holds talking or loud music",
        )
    fitted = max(required + SAFETY_DB, MIN_FITTED_SNR_DB, allowed[0])
    fitted = min(math.ceil(fitted * 2.0 - 1e-9) / 2.0, limit)  # up to a half dB
    if required == 0.0:
        why = (
            f"no {window} stretch of the background has {share} periodic frames at any "
            f"threshold: it cannot pass for speech; so the {MIN_FITTED_SNR_DB:g} dB minimum, "
            "and softer speech is heard"
        )
    elif required + SAFETY_DB <= MIN_FITTED_SNR_DB:
        why = (
            f"periodic background frames fill {share} of a {window} window only when frames "
            f"{required:.1f} dB above the floor count; + {SAFETY_DB:g} dB margin is under the "
            f"{MIN_FITTED_SNR_DB:g} dB minimum, so the minimum, and softer speech is heard"
        )
    else:
        why = (
            f"periodic background sound (hum, music, beeps) fills {share} of some {window} "
            f"window until frames must be {required:.1f} dB above the floor; "
            f"+ {SAFETY_DB:g} dB margin"
        )
    return ThresholdFit(fitted, why)


def segment(
    runs: Sequence[FloatArray], sample_rate: int, options: VadOptions
) -> list[list[SpeechWindow]]:
    """The real segmenter's windows for each contiguous run (a fresh segmenter per run, fed
    in 0.1 s chunks as a microphone delivers them). Window starts are seconds into the run."""
    step = round(0.1 * sample_rate)
    out: list[list[SpeechWindow]] = []
    for samples in runs:
        segmenter = SpeechSegmenter(sample_rate, options)
        windows: list[SpeechWindow] = []
        for i in range(0, len(samples), step):
            chunk = AudioChunk("calibration", i / sample_rate, sample_rate, samples[i : i + step])
            windows += segmenter.push(chunk)
        out.append(windows + segmenter.finish("calibration"))
    return out


def verified_snr_db(
    runs: Sequence[FloatArray], sample_rate: int, options: VadOptions, limit: float
) -> tuple[float | None, int]:
    """Raise `options.snr_db` by 1 dB steps until the real segmenter finds no window in the
    background (it should already: the fit tried every window position). Returns the threshold
    (None if `limit` is passed) and the windows found at the first one tried."""
    snr = options.snr_db
    first: int | None = None
    while snr <= limit:
        found = sum(len(w) for w in segment(runs, sample_rate, replace(options, snr_db=snr)))
        first = found if first is None else first
        if found == 0:
            return snr, first
        snr += 1.0
    return None, first or 0


@dataclass(frozen=True, slots=True)
class SpeechCheck:
    """How much of a speech recording's voiced sound falls inside the windows found."""

    voiced_s: float
    found_s: float
    windows: int

    @property
    def share(self) -> float:
        return self.found_s / self.voiced_s if self.voiced_s > 0 else 0.0


def check_speech(
    runs: Sequence[FloatArray],
    sample_rate: int,
    options: VadOptions,
    background: BackgroundLevels,
) -> SpeechCheck:
    """The talker's voiced frames are the periodic ones louder than anything in the background
    (its 99th-percentile level + 3 dB); the share found is how many of them the segmenter's
    windows cover. No transcript is needed, so any recording made at the site will do."""
    voiced = found = 0
    windows = segment(runs, sample_rate, options)
    hop = FrameAnalyser(sample_rate).hop
    for samples, found_windows in zip(runs, windows, strict=True):
        track = level_track(samples, sample_rate, options)
        if track is None:
            continue
        talker = track.periodic & (track.level_db > background.loud_db + SPEECH_ABOVE_BACKGROUND_DB)
        covered = np.zeros(len(talker), dtype=bool)
        for window in found_windows:
            first = math.ceil(window.start * sample_rate / hop)
            last = math.floor(window.end * sample_rate / hop)
            covered[max(first, 0) : max(last, 0)] = True
        voiced += int(talker.sum())
        found += int((talker & covered).sum())
    return SpeechCheck(voiced * HOP_S, found * HOP_S, sum(len(w) for w in windows))


@dataclass(slots=True)
class Recording:
    """Audio of one microphone held in memory (never written), as contiguous runs at the
    analysis rate: a gap in the timestamps (an overflow) starts a new run, as in the VAD."""

    sample_rate: int
    _runs: list[list[AudioChunk]] = field(default_factory=list)
    _expected: float | None = None

    def add(self, chunk: AudioChunk) -> None:
        if self._expected is None or abs(chunk.timestamp - self._expected) > _CONTIGUOUS_S:
            self._runs.append([])
        self._runs[-1].append(chunk)
        self._expected = chunk.timestamp + chunk.duration

    @property
    def seconds(self) -> float:
        return sum(c.duration for run in self._runs for c in run)

    def runs(self) -> list[FloatArray]:
        out: list[FloatArray] = []
        for run in self._runs:
            if not run:
                continue
            samples = np.concatenate([np.asarray(c.samples, dtype=np.float32) for c in run])
            rate = run[0].sample_rate
            if rate != self.sample_rate:
                samples = soxr.resample(samples, rate, self.sample_rate).astype(np.float32)
            out.append(samples)
        return out


def tracks_of(
    runs: Sequence[FloatArray], sample_rate: int, options: VadOptions
) -> list[LevelTrack]:
    tracks = [level_track(samples, sample_rate, options) for samples in runs]
    return [t for t in tracks if t is not None]
