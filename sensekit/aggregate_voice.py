"""Tumbling windows of voice results for one microphone: counts by arousal and by category.

Same windows as the faces (aligned to multiples of `window_s` since the epoch). A voice result
belongs to the window holding its midpoint. Speech is recognised a little after it is heard
(the segmenter waits for a pause or a full analysis window), so a window is closed only once
the audio stream has passed its end by `latency_s`; until then late results still land in it.

The counts leave here raw; sensekit.assemble merges the microphones of a zone, and the release
gate (sensekit.privacy.release) decides what of them may be published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sensekit.aggregate import window_start
from sensekit.types import VOICE_AROUSAL_LABELS, VOICE_EMOTION_LABELS, VoiceResult, VoiceTally

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Tally:
    audio_s: float = 0.0
    counts: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(
            (len(VOICE_AROUSAL_LABELS), len(VOICE_EMOTION_LABELS)), dtype=np.int64
        )
    )


class VoiceAggregator:
    """One microphone's windows. Pure bookkeeping over timestamps passed in."""

    def __init__(self, microphone: str, zone: str, window_s: int, latency_s: float) -> None:
        self.microphone, self.zone = microphone, zone
        self.window_s, self.latency_s = window_s, latency_s
        self._open: dict[float, _Tally] = {}

    @property
    def open_windows(self) -> list[float]:
        return sorted(self._open)

    def heard(self, start: float, end: float) -> list[VoiceTally]:
        """Record audio [start, end) as listened to; returns windows that are now final."""
        position = start
        while position < end:
            begin = window_start(position, self.window_s)
            stop = min(end, begin + self.window_s)
            self._tally(begin).audio_s += stop - position
            position = stop
        return self._close_before(end - self.latency_s)

    def add(self, results: list[VoiceResult]) -> None:
        for result in results:
            begin = window_start(result.midpoint, self.window_s)
            if begin not in self._open and self._open and begin < min(self._open):
                # Later than the latency allowed for (a stalled stream): count it in the
                # oldest open window rather than reopen a published one.
                log.debug("microphone %s: late voice result", self.microphone)
                begin = min(self._open)
            arousal = int(np.argmax(result.scores.arousal))
            self._tally(begin).counts[arousal, int(np.argmax(result.scores.emotion))] += 1

    def flush(self, end: float) -> list[VoiceTally]:
        """Close everything (end of media, shutdown); the last window ends at `end`."""
        out = []
        for begin in sorted(self._open):
            nominal = begin + self.window_s
            complete = end >= nominal
            out.append(self._summarise(begin, nominal if complete else max(end, begin), complete))
        self._open.clear()
        return out

    def _tally(self, begin: float) -> _Tally:
        tally = self._open.get(begin)
        if tally is None:
            tally = self._open[begin] = _Tally()
        return tally

    def _close_before(self, time: float) -> list[VoiceTally]:
        out = []
        for begin in sorted(self._open):
            if begin + self.window_s > time:
                break
            out.append(self._summarise(begin, begin + self.window_s, complete=True))
            del self._open[begin]
        return out

    def _summarise(self, begin: float, end: float, complete: bool) -> VoiceTally:
        tally = self._open[begin]
        return VoiceTally(
            zone=self.zone,
            microphones=(self.microphone,),
            window_start=begin,
            window_end=end,
            complete=complete,
            audio_s=round(tally.audio_s, 3),
            counts=tally.counts.copy(),
        )
