"""Voice activity detection and cutting speech into analysis windows, on a stream.

Why not an energy gate: a fan, an air-conditioner or a till's beep is loud but is not speech.
A frame is *speech evidence* only when it is both periodic (YIN finds a pitch between 65 and
500 Hz) and well above the noise floor, the floor being a low percentile of the last seconds
of frame energies: steady noise raises the floor to its own level and stops counting. Speech
evidence is then bridged over short pauses (consonants, breaths) into segments, and a segment
is kept only if it is long enough, periodic often enough and modulated like speech (syllables
make the level rise and fall by many dB; a hum does not). Clicks are too short and aperiodic.

Segments are cut into windows of `window_s` every `hop_s` as the speech arrives, so a long
conversation is analysed while it goes on; a segment shorter than a window but at least
`min_speech_s` long gets one window centred on it (with the surrounding quiet, much as the
training clips have).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensekit.audio.frames import VOICING_APERIODICITY, FrameAnalyser
from sensekit.types import AudioChunk

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class VadOptions:
    window_s: float = 2.0
    hop_s: float = 1.0
    min_speech_s: float = 1.0
    """Shorter segments are ignored (a word, a cough)."""
    snr_db: float = 10.0
    """How far above the noise floor a periodic frame must be to count as speech."""
    max_pause_s: float = 0.4
    """Pauses up to this long stay inside one segment."""
    min_speech_fraction: float = 0.2
    """A window needs at least this share of speech-evidence frames."""
    min_modulation_db: float = 3.0
    """A window's frame levels must vary at least this much (standard deviation)."""
    floor_history_s: float = 5.0
    floor_percentile: float = 10.0


@dataclass(frozen=True, slots=True)
class SpeechWindow:
    """A window of speech ready for the features; lives only in memory, never stored."""

    microphone: str
    start: float
    sample_rate: int
    samples: FloatArray

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / self.sample_rate


class SpeechSegmenter:
    """Feed contiguous chunks of one source in order; get speech windows back.

    Memory is bounded: a few seconds of audio and of frame levels, whatever the stream's
    length. A gap in the chunks' timestamps (dropped audio) closes the current segment.
    """

    def __init__(self, sample_rate: int = 16000, options: VadOptions | None = None) -> None:
        self.options = options or VadOptions()
        self.sample_rate = sample_rate
        self.analyser = FrameAnalyser(sample_rate)
        self.hop = self.analyser.hop
        opts = self.options
        self._window = round(opts.window_s * sample_rate)
        self._window_hop = round(opts.hop_s * sample_rate)
        self._max_pause = round(opts.max_pause_s * sample_rate / self.hop)
        self._keep = self._window + round((opts.max_pause_s + opts.hop_s + 1.0) * sample_rate)
        self._floor_frames = round(opts.floor_history_s * sample_rate / self.hop)
        self.windows_emitted = 0
        self.segments = 0
        self._reset(None)

    def _reset(self, start: float | None) -> None:
        self._origin = start  # timestamp of absolute sample 0
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_start = 0  # absolute index of self._audio[0]
        self._pending_start = 0  # absolute index of the first sample not yet framed
        self._levels: deque[float] = deque(maxlen=self._floor_frames)
        # Per-frame level and speech evidence, for frames _frame_base, _frame_base + 1, ...
        self._frame_base = 0
        self._frame_level: list[float] = []
        self._frame_speech: list[bool] = []
        self._segment_start: int | None = None  # absolute frame indices
        self._last_speech = 0
        self._next_window: int | None = None  # absolute sample index
        self._windows_in_segment = 0
        self._last_window_end = 0

    @property
    def _expected_next(self) -> float | None:
        if self._origin is None:
            return None
        return self._origin + (self._audio_start + len(self._audio)) / self.sample_rate

    def push(self, chunk: AudioChunk) -> list[SpeechWindow]:
        if chunk.sample_rate != self.sample_rate:
            raise ValueError(f"expected {self.sample_rate} Hz audio, got {chunk.sample_rate} Hz")
        out: list[SpeechWindow] = []
        expected = self._expected_next
        if expected is None or abs(chunk.timestamp - expected) > 0.05:
            if expected is not None:
                log.debug(
                    "microphone %s: %.2f s gap in audio",
                    chunk.microphone,
                    chunk.timestamp - expected,
                )
                out += self.finish(chunk.microphone)
            self._reset(chunk.timestamp)
        self._audio = np.concatenate([self._audio, np.asarray(chunk.samples, dtype=np.float32)])
        out += self._analyse(chunk.microphone)
        self._trim()
        return out

    def finish(self, microphone: str) -> list[SpeechWindow]:
        """End of stream: close the open segment with what has been heard."""
        if self._segment_start is None:
            return []
        return self._close_segment(microphone)

    # -- framing -----------------------------------------------------------------------

    def _analyse(self, microphone: str) -> list[SpeechWindow]:
        offset = self._pending_start - self._audio_start
        pending = self._audio[offset:]
        count = self.analyser.frame_count(len(pending))
        if count == 0:
            return []
        frames = self.analyser.analyse(
            pending[: (count - 1) * self.hop + self.analyser.min_samples], spectrum=False
        )
        first = self._pending_start // self.hop
        self._pending_start += count * self.hop
        # YIN only searches periods between F0_MIN_HZ and F0_MAX_HZ, so a deep dip means a
        # pitch in the voice range.
        periodic = frames.aperiodicity < VOICING_APERIODICITY
        levels = frames.energy_db.tolist()
        self._levels.extend(levels)
        # One floor per block: blocks are a fraction of a second, the history is seconds.
        floor = float(np.percentile(self._levels, self.options.floor_percentile))
        speech = (periodic & (frames.energy_db > floor + self.options.snr_db)).tolist()
        if not self._frame_level:
            self._frame_base = first
        self._frame_level += levels
        self._frame_speech += speech
        out: list[SpeechWindow] = []
        for i in range(count):
            out += self._step(microphone, first + i, speech[i])
        return out

    def _step(self, microphone: str, index: int, speech: bool) -> list[SpeechWindow]:
        if self._segment_start is None:
            if not speech:
                return []
            self._segment_start = index
            self._last_speech = index
            self._next_window = index * self.hop
            self._windows_in_segment = 0
            return []
        if speech:
            self._last_speech = index
        if index - self._last_speech > self._max_pause:
            return self._close_segment(microphone)
        return self._emit_ready(microphone)

    # -- windows -----------------------------------------------------------------------

    def _speech_end_sample(self) -> int:
        return (self._last_speech + 1) * self.hop + self.analyser.spectral_length

    def _emit_ready(self, microphone: str) -> list[SpeechWindow]:
        out: list[SpeechWindow] = []
        assert self._next_window is not None
        while self._next_window + self._window <= self._speech_end_sample():
            window = self._cut(microphone, self._next_window)
            self._windows_in_segment += 1
            self._last_window_end = self._next_window + self._window
            self._next_window += self._window_hop
            if window is not None:
                out.append(window)
        return out

    def _close_segment(self, microphone: str) -> list[SpeechWindow]:
        assert self._segment_start is not None
        start = self._segment_start * self.hop
        end = min(self._speech_end_sample(), self._audio_start + len(self._audio))
        out = self._emit_ready(microphone)
        length = end - start
        if self._windows_in_segment == 0:
            if length >= self.options.min_speech_s * self.sample_rate:
                centre = (start + end) // 2
                window = self._cut(microphone, centre - self._window // 2)
                if window is not None:
                    out.append(window)
        elif end - self._last_window_end >= self._window_hop // 2:
            window = self._cut(microphone, end - self._window)
            if window is not None:
                out.append(window)
        self.segments += 1
        self._segment_start = None
        self._next_window = None
        return out

    def _cut(self, microphone: str, start: int) -> SpeechWindow | None:
        """The window's audio, if it is still buffered and looks like speech."""
        assert self._origin is not None
        available_end = self._audio_start + len(self._audio)
        start = max(self._audio_start, min(start, available_end - self._window))
        if start < self._audio_start or start + self._window > available_end:
            return None
        first_frame = max(-(-start // self.hop) - self._frame_base, 0)
        last_frame = (start + self._window - self.analyser.spectral_length) // self.hop
        last_frame -= self._frame_base
        if last_frame < first_frame:
            return None
        levels = np.array(self._frame_level[first_frame : last_frame + 1])
        speech = np.array(self._frame_speech[first_frame : last_frame + 1])
        if levels.size == 0:
            return None
        if speech.mean() < self.options.min_speech_fraction:
            return None
        if float(np.std(levels)) < self.options.min_modulation_db:
            return None
        offset = start - self._audio_start
        samples = self._audio[offset : offset + self._window].copy()
        self.windows_emitted += 1
        return SpeechWindow(
            microphone, self._origin + start / self.sample_rate, self.sample_rate, samples
        )

    def _trim(self) -> None:
        """Keep only the audio and frame levels that a future window can still need."""
        excess = len(self._audio) - self._keep
        if excess > 0:
            self._audio = self._audio[excess:]
            self._audio_start += excess
        stale = self._audio_start // self.hop - 1 - self._frame_base
        if stale > 0:
            del self._frame_level[:stale]
            del self._frame_speech[:stale]
            self._frame_base += stale
