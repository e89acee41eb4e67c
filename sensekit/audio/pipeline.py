"""The voice path for one device: chunks → speech windows → features → site normalisation →
int8 model → `VoiceResult`s. No audio leaves this object; only scores and timestamps do.

Windows found in one chunk go through the model in one call. Each stage's cost per analysed
window is kept (exponential moving average) for the stats message and the benchmark.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import soxr

from sensekit.audio.normalisation import SiteNormaliser
from sensekit.audio.prosody import ProsodyExtractor
from sensekit.audio.vad import SpeechSegmenter, SpeechWindow, VadOptions
from sensekit.types import AudioChunk, VoiceResult, VoiceScores

log = logging.getLogger(__name__)

_SMOOTHING = 0.1
ANALYSIS_RATE = 16000
"""The voice model's features are defined at 16 kHz; other capture rates are resampled."""


class VoiceModel(Protocol):
    """What the pipeline needs of the classifier (sensekit.audio.voice.VoiceClassifier)."""

    def classify(self, standardised: npt.NDArray[np.float32]) -> list[VoiceScores]: ...


@dataclass(slots=True)
class VoiceTimes:
    """Moving averages, in milliseconds per analysed 2 s window (VAD: per second of audio)."""

    vad_ms_per_s: float = 0.0
    features_ms: float = 0.0
    model_ms: float = 0.0
    windows: int = 0
    audio_s: float = 0.0

    @staticmethod
    def _blend(old: float, new: float, first: bool) -> float:
        return new if first else (1.0 - _SMOOTHING) * old + _SMOOTHING * new


class VoicePipeline:
    def __init__(
        self,
        model: VoiceModel,
        normaliser: SiteNormaliser,
        sample_rate: int = ANALYSIS_RATE,
        vad: VadOptions | None = None,
    ) -> None:
        self.model = model
        self.normaliser = normaliser
        self.sample_rate = sample_rate
        self.vad_options = vad or VadOptions()
        self.extractor = ProsodyExtractor(sample_rate)
        self.times = VoiceTimes()
        self._segmenters: dict[str, SpeechSegmenter] = {}
        self._resamplers: dict[tuple[str, int], soxr.ResampleStream] = {}

    def segmenter(self, microphone: str) -> SpeechSegmenter:
        segmenter = self._segmenters.get(microphone)
        if segmenter is None:
            segmenter = SpeechSegmenter(self.sample_rate, self.vad_options)
            self._segmenters[microphone] = segmenter
        return segmenter

    def _at_analysis_rate(self, chunk: AudioChunk) -> AudioChunk:
        if chunk.sample_rate == self.sample_rate:
            return chunk
        key = (chunk.microphone, chunk.sample_rate)
        stream = self._resamplers.get(key)
        if stream is None:
            stream = soxr.ResampleStream(chunk.sample_rate, self.sample_rate, 1, dtype="float32")
            self._resamplers[key] = stream
        samples = stream.resample_chunk(np.asarray(chunk.samples, dtype=np.float32))
        return AudioChunk(chunk.microphone, chunk.timestamp, self.sample_rate, samples)

    def process(self, chunk: AudioChunk) -> list[VoiceResult]:
        chunk = self._at_analysis_rate(chunk)
        started = time.perf_counter()
        windows = self.segmenter(chunk.microphone).push(chunk)
        vad_ms = (time.perf_counter() - started) * 1000.0
        if chunk.duration > 0:
            self.times.vad_ms_per_s = VoiceTimes._blend(
                self.times.vad_ms_per_s, vad_ms / chunk.duration, self.times.audio_s == 0
            )
        self.times.audio_s += chunk.duration
        return self.analyse(windows)

    def finish(self, microphone: str) -> list[VoiceResult]:
        """End of a stream (end of file, device gone): the open speech segment is analysed."""
        for key in [k for k in self._resamplers if k[0] == microphone]:
            del self._resamplers[key]
        segmenter = self._segmenters.pop(microphone, None)
        return self.analyse(segmenter.finish(microphone)) if segmenter else []

    def analyse(self, windows: list[SpeechWindow]) -> list[VoiceResult]:
        if not windows:
            return []
        started = time.perf_counter()
        features = np.stack([self.extractor.extract(w.samples) for w in windows])
        extracted = time.perf_counter()
        standardised = self.normaliser.standardise(features)
        scores = self.model.classify(standardised)
        finished = time.perf_counter()
        # Learn after scoring, so a window never normalises itself.
        self.normaliser.observe(features)
        first = self.times.windows == 0
        per_window = 1000.0 / len(windows)
        self.times.features_ms = VoiceTimes._blend(
            self.times.features_ms, (extracted - started) * per_window, first
        )
        self.times.model_ms = VoiceTimes._blend(
            self.times.model_ms, (finished - extracted) * per_window, first
        )
        self.times.windows += len(windows)
        return [
            VoiceResult(w.microphone, w.start, w.end, s)
            for w, s in zip(windows, scores, strict=True)
        ]

    def warm_up(self) -> float:
        """Run one synthetic window through features and model now, so the first customer's
        speech is not the one that pays for lazy imports, JIT compilation and interpreter
        allocation. Returns the seconds it took. Learns nothing."""
        started = time.perf_counter()
        t = np.arange(round(self.vad_options.window_s * self.sample_rate)) / self.sample_rate
        pitch = 150.0 + 30.0 * np.sin(2 * np.pi * 0.5 * t)
        phase = 2 * np.pi * np.cumsum(pitch) / self.sample_rate
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
        signal = (0.1 * envelope * np.sin(phase)).astype(np.float32)
        features = self.extractor.extract(signal)[None, :]
        self.model.classify(self.normaliser.standardise(features))
        SpeechSegmenter(self.sample_rate, self.vad_options).push(
            AudioChunk("warm-up", 0.0, self.sample_rate, signal)
        )
        return time.perf_counter() - started
