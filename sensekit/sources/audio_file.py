"""Replay of a WAV/FLAC/OGG file as if it were a microphone, in the file's own time base.

Chunks are decoded block by block on the caller's thread, inside `read()`: decoding a tenth of a
second costs far less than the pacing wait, so no reader thread or queue is needed. Timestamps
are the replay's start plus the media time, so a file gives the same windows however fast it is
read.

In real time, a consumer that falls further behind than `buffer_s` loses the oldest audio, as
it would with a live microphone, and the loss is counted. Flat out, nothing is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from sensekit.errors import SourceError
from sensekit.types import AudioChunk

log = logging.getLogger(__name__)


class FileAudioSource:
    """An AudioSource over an audio file: mixed down to mono, resampled to `sample_rate`."""

    live = False

    def __init__(
        self,
        name: str,
        path: str | Path,
        sample_rate: int = 16000,
        *,
        realtime: bool = True,
        start_time: float | None = None,
        clock: Callable[[], float] = time.time,
        block_s: float = 0.1,
        buffer_s: float = 10.0,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.realtime = realtime
        self._start_time = start_time
        self._clock = clock
        self._block_s = block_s
        self._buffer_s = buffer_s
        self._lock = threading.Lock()  # the decoder: read() against stop()
        self._stop = threading.Event()
        self._file: soundfile.SoundFile | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._in_block = 1
        self._position = 0  # frames decoded from the file
        self._produced = 0  # samples produced at `sample_rate`, delivered or dropped
        self._pending: AudioChunk | None = None
        self._eof = False
        self._error: str | None = None
        self._end_timestamp: float | None = None
        self._wall_start = 0.0
        self._delivered = 0  # samples
        self._dropped = 0  # samples

    def _cannot_read(self, reason: str) -> str:
        return f"microphone {self.name}: cannot read audio file {self.path}: {reason}"

    def start(self) -> None:
        if not self.path.exists():
            raise SourceError(self._cannot_read("no such file"))
        if not self.path.is_file():
            raise SourceError(self._cannot_read("not a regular file"))
        if self.path.stat().st_size == 0:
            raise SourceError(self._cannot_read("the file is empty"))
        try:
            handle = soundfile.SoundFile(str(self.path))
        except (soundfile.SoundFileError, OSError) as exc:
            raise SourceError(self._cannot_read(_reason(exc))) from None
        if handle.frames <= 0 or handle.samplerate <= 0:
            handle.close()
            raise SourceError(self._cannot_read("it holds no audio"))
        self._file = handle
        self._in_block = max(1, round(self._block_s * handle.samplerate))
        if handle.samplerate != self.sample_rate:
            self._resampler = soxr.ResampleStream(
                handle.samplerate, self.sample_rate, 1, dtype="float32"
            )
        if self._start_time is None:
            self._start_time = self._clock()
        self._end_timestamp = self._start_time + handle.frames / handle.samplerate
        try:  # decode the first block now, so that an undecodable file fails at start-up
            self._pending = self._decode()
        except (soundfile.SoundFileError, OSError) as exc:
            self._close()
            raise SourceError(self._cannot_read(_reason(exc))) from None
        self._wall_start = time.monotonic()
        log.info(
            "microphone %s: replaying %s (%.1f s, %d Hz, %d channel(s))%s",
            self.name,
            self.path,
            handle.frames / handle.samplerate,
            handle.samplerate,
            handle.channels,
            "" if self.realtime else ", as fast as it is read",
        )

    def _decode(self) -> AudioChunk | None:
        """The next non-empty chunk, or None at the end of the file. Called from start() or
        under `_lock`."""
        handle = self._file
        assert handle is not None and self._start_time is not None
        while not self._eof:
            block = handle.read(self._in_block, dtype="float32", always_2d=True)
            self._position += len(block)
            self._eof = len(block) < self._in_block or self._position >= handle.frames
            mono: npt.NDArray[np.float32] = np.ascontiguousarray(
                block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            )
            if self._resampler is not None:
                mono = self._resampler.resample_chunk(mono, last=self._eof)
            if len(mono) == 0:
                continue
            np.clip(mono, -1.0, 1.0, out=mono)
            timestamp = self._start_time + self._produced / self.sample_rate
            self._produced += len(mono)
            return AudioChunk(self.name, timestamp, self.sample_rate, mono)
        return None

    def _next(self) -> AudioChunk | None:
        """The pending chunk, decoding it if needed; a decoding failure ends the replay."""
        with self._lock:
            if self._pending is None and not self._eof and not self._stop.is_set():
                try:
                    self._pending = self._decode()
                except (soundfile.SoundFileError, OSError) as exc:
                    self._error = self._cannot_read(_reason(exc))
                    self._eof = True
                    log.error("%s", self._error)
            return self._pending

    def read(self, timeout: float) -> AudioChunk | None:
        chunk = self._next()
        if chunk is None or self._stop.is_set():
            return None
        if self.realtime:
            assert self._start_time is not None
            due = self._wall_start + (chunk.end - self._start_time)
            wait = due - time.monotonic()
            if wait > timeout:
                self._stop.wait(timeout)
                return None
            if wait > 0 and self._stop.wait(wait):
                return None
            chunk = self._skip_what_a_microphone_would_have_dropped(chunk)
            if chunk is None:
                return None
        with self._lock:
            self._pending = None
        self._delivered += len(chunk.samples)
        return chunk

    def _skip_what_a_microphone_would_have_dropped(self, chunk: AudioChunk) -> AudioChunk | None:
        assert self._start_time is not None
        current: AudioChunk | None = chunk
        while current is not None:
            started = self._wall_start + (current.timestamp - self._start_time)
            if time.monotonic() - started <= self._buffer_s:
                break
            self._dropped += len(current.samples)
            with self._lock:
                self._pending = None
            current = self._next()
        return current

    @property
    def finished(self) -> bool:
        with self._lock:
            return (self._eof or self._stop.is_set()) and self._pending is None

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def end_timestamp(self) -> float | None:
        return self._end_timestamp

    def stats(self) -> dict[str, float]:
        return {
            "audio_s": self._delivered / self.sample_rate,
            "overflows": 0.0,
            "dropped_s": self._dropped / self.sample_rate,
        }

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._pending = None
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _reason(exc: BaseException) -> str:
    """libsndfile's own words, without the path it repeats."""
    text = str(getattr(exc, "error_string", "") or exc)
    text = " ".join(text.removeprefix("Error : ").split()).rstrip(".")
    return text or type(exc).__name__
