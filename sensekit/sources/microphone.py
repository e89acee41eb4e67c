"""A live microphone through PortAudio (sounddevice), stamped with the clock.

The PortAudio callback runs on PortAudio's real-time thread: it only copies the block into a
preallocated ring and notes the time. Everything that can block or allocate (logging, drift
checks, building chunks) happens in `read()`, on the consumer's thread.

sounddevice is imported when the source starts, never at import of sensekit: a machine without
PortAudio can still replay files and check configs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sensekit.errors import SourceError
from sensekit.sources.audio import describe_audio_source, is_default_microphone, microphone_index
from sensekit.types import AudioChunk

if TYPE_CHECKING:
    import sounddevice

log = logging.getLogger(__name__)

DRIFT_LIMIT_S = 0.5
"""Sample-count time may wander this far from the clock before it is re-anchored."""
DRIFT_WINDOW_S = 1.0
"""Drift is judged on the least-delayed callback of this much audio, so one late callback
(a busy CPU) does not move the time base but lost samples or a clock step do."""
WARN_EVERY_S = 60.0


class SampleRing:
    """The newest `capacity` samples, addressed by absolute sample index.

    When full, the oldest unread samples are overwritten and counted in `dropped`: a reader that
    falls behind loses the past, never the present. Not thread-safe: the owner holds a lock.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._buffer = np.zeros(capacity, np.float32)
        self.written = 0  # absolute index one past the newest sample
        self.start = 0  # absolute index of the oldest unread sample
        self.dropped = 0

    def __len__(self) -> int:
        return self.written - self.start

    def write(self, samples: npt.NDArray[np.float32]) -> None:
        end = self.written + len(samples)
        keep = samples[-self.capacity :]
        pos = (end - len(keep)) % self.capacity
        head = min(len(keep), self.capacity - pos)
        self._buffer[pos : pos + head] = keep[:head]
        self._buffer[: len(keep) - head] = keep[head:]
        self.written = end
        oldest = end - self.capacity
        if self.start < oldest:
            self.dropped += oldest - self.start
            self.start = oldest

    def read(self, max_samples: int) -> tuple[int, npt.NDArray[np.float32]]:
        """The absolute index of the first sample and a copy of up to `max_samples`."""
        count = min(len(self), max_samples)
        out = np.empty(count, np.float32)
        pos = self.start % self.capacity
        head = min(count, self.capacity - pos)
        out[:head] = self._buffer[pos : pos + head]
        out[head:] = self._buffer[: count - head]
        first = self.start
        self.start += count
        return first, out


def import_sounddevice(microphone: str) -> Any:
    """sounddevice, or a SourceError that says which package to install."""
    try:
        import sounddevice
    except OSError:  # raised by sounddevice when ctypes cannot find or load libportaudio
        raise SourceError(
            f"microphone {microphone}: the PortAudio library is missing "
            "(install it: sudo apt-get install libportaudio2)"
        ) from None
    except ImportError:
        raise SourceError(
            f"microphone {microphone}: the Python package sounddevice is missing "
            "(install it: pip install sounddevice)"
        ) from None
    return sounddevice


def list_input_devices(sd: Any) -> list[str]:
    """One line per device that can record, as an operator would configure it."""
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except Exception as exc:  # PortAudio itself failed: say so rather than list nothing
        return [f"  (cannot list devices: {exc})"]
    lines = []
    for index, info in enumerate(devices):
        if info["max_input_channels"] > 0:
            api = hostapis[info["hostapi"]]["name"]
            lines.append(
                f'  #{index} "{info["name"]}" ({api}, {info["max_input_channels"]} input '
                f"channels, default {info['default_samplerate']:.0f} Hz)"
            )
    return lines


class MicrophoneSource:
    """An AudioSource over a PortAudio input stream.

    `device` is None or "default" for the system's default input, a device index (int or a
    string of digits), or a substring of a device name as sounddevice matches it.
    """

    live = True

    def __init__(
        self,
        name: str,
        device: str | int | None = None,
        sample_rate: int = 16000,
        *,
        clock: Callable[[], float] = time.time,
        block_s: float = 0.1,
        buffer_s: float = 10.0,
        max_chunk_s: float = 1.0,
        stall_s: float = 3.0,
        close_timeout_s: float = 2.0,
    ) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self.device = device
        self._clock = clock
        self._block = max(1, round(block_s * sample_rate))
        self._max_chunk = max(1, round(max_chunk_s * sample_rate))
        self._stall_s = stall_s
        self._close_timeout_s = close_timeout_s
        self._cond = threading.Condition()
        self._ring = SampleRing(max(2 * self._block, round(buffer_s * sample_rate)))
        self._stream: sounddevice.InputStream | None = None
        self._stopping = False
        self._ended = False  # PortAudio finished the stream on its own (device gone)
        self._dead = False  # no more audio will come: ended, or stalled
        self._error: str | None = None
        # Time base: sample index `_anchor[0]` was captured at epoch time `_anchor[1]`.
        self._anchor: tuple[int, float] | None = None
        self._window_start = 0
        self._window_min_offset = float("inf")
        self._last_callback = 0.0  # time.monotonic() of the latest callback
        self._overflows = 0
        self._delivered = 0
        self._reanchors = 0
        self._warned_overflows = 0
        self._warned_dropped = 0
        self._last_warning = -float("inf")

    @property
    def label(self) -> str:
        return describe_audio_source(self.device)

    def start(self) -> None:
        sd = import_sounddevice(self.name)
        device: str | int | None = None
        if self.device is not None and not is_default_microphone(self.device):
            index = microphone_index(self.device)
            device = index if index is not None else str(self.device).strip()
        if isinstance(device, int):
            problem = _index_problem(sd, device)
            if problem:
                raise SourceError(self._cannot_open(sd, problem))
        try:
            stream = sd.InputStream(
                device=device,
                samplerate=self.sample_rate,
                channels=1,
                dtype="float32",
                blocksize=self._block,
                callback=self._callback,
                finished_callback=self._on_finished,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise SourceError(self._cannot_open(sd, str(exc))) from None
        try:
            stream.start()
        except sd.PortAudioError as exc:
            stream.close(ignore_errors=True)
            raise SourceError(self._cannot_open(sd, str(exc))) from None
        with self._cond:
            self._last_callback = max(self._last_callback, time.monotonic())
            self._stream = stream
        log.info(
            "microphone %s: recording from %s at %d Hz", self.name, self.label, self.sample_rate
        )

    def _cannot_open(self, sd: Any, problem: str) -> str:
        reason = " ".join(problem.split())
        if "sample rate" in reason.lower():
            reason += (
                f" (the device cannot record at {self.sample_rate} Hz: choose the 'default' or "
                "'sysdefault' device, which resample, or set PA_ALSA_PLUGHW=1 so that "
                "PortAudio opens sound cards through ALSA's plughw)"
            )
        devices = list_input_devices(sd)
        listing = (
            "available input devices (configure one by index or by part of its name):\n"
            + "\n".join(devices)
            if devices
            else "no input devices found: is a microphone connected, and may this user "
            "record audio (the 'audio' group)?"
        )
        return (
            f"microphone {self.name}: cannot open {self.label} at {self.sample_rate} Hz mono: "
            f"{reason}\n{listing}"
        )

    def _callback(
        self, indata: npt.NDArray[np.float32], frames: int, _time: Any, status: Any
    ) -> None:
        now = self._clock()
        with self._cond:
            if status.input_overflow:
                self._overflows += 1
            self._ring.write(indata[:, 0])
            end = self._ring.written
            if self._anchor is None:
                self._anchor = (0, now - end / self.sample_rate)
            offset = now - (self._anchor[1] + (end - self._anchor[0]) / self.sample_rate)
            self._window_min_offset = min(self._window_min_offset, offset)
            self._last_callback = time.monotonic()
            self._cond.notify_all()

    def _on_finished(self) -> None:
        with self._cond:
            if not self._stopping:
                self._ended = True
            self._cond.notify_all()

    def _check_alive(self) -> bool:
        """Mark the source dead when PortAudio ended the stream or callbacks stopped coming;
        True when it just died (the caller logs once the lock is released). Caller holds the
        lock."""
        if self._dead or self._stream is None or self._stopping:
            return False
        stalled = time.monotonic() - self._last_callback > self._stall_s
        if not (self._ended or stalled or not _is_active(self._stream)):
            return False
        self._dead = True
        self._error = f"microphone {self.name}: the device stopped delivering audio (unplugged?)"
        return True

    def read(self, timeout: float) -> AudioChunk | None:
        deadline = time.monotonic() + timeout
        died = False
        chunk: AudioChunk | None = None
        reanchored: float | None = None
        with self._cond:
            while len(self._ring) == 0:
                died = self._check_alive()
                remaining = deadline - time.monotonic()
                if self._dead or self._stopping or remaining <= 0:
                    break
                self._cond.wait(remaining)
            else:
                reanchored = self._update_time_base()
                chunk = self._take_chunk()
        if died:
            log.error("%s", self._error)
        if reanchored is not None:
            log.info(
                "microphone %s: the clock moved %+.2f s away from the audio's sample count "
                "(a clock step, or samples lost in the driver): timestamps re-anchored to it",
                self.name,
                reanchored,
            )
        if chunk is not None:
            self._warn_if_losing_audio()
        return chunk

    def _take_chunk(self) -> AudioChunk:
        """Everything buffered (up to max_chunk_s) as one chunk. Caller holds the lock."""
        first, samples = self._ring.read(self._max_chunk)
        assert self._anchor is not None
        index, epoch = self._anchor
        self._delivered += len(samples)
        return AudioChunk(
            self.name, epoch + (first - index) / self.sample_rate, self.sample_rate, samples
        )

    def _update_time_base(self) -> float | None:
        """Shift the time base when a whole window of callbacks says it is off. Returns the
        shift when it did. Caller holds the lock."""
        if self._ring.written - self._window_start < DRIFT_WINDOW_S * self.sample_rate:
            return None
        offset = self._window_min_offset
        self._window_start = self._ring.written
        self._window_min_offset = float("inf")
        if abs(offset) <= DRIFT_LIMIT_S or self._anchor is None:
            return None
        index, epoch = self._anchor
        self._anchor = (index, epoch + offset)
        self._reanchors += 1
        return offset

    def _warn_if_losing_audio(self) -> None:
        overflows, dropped = self._overflows, self._ring.dropped
        if overflows == self._warned_overflows and dropped == self._warned_dropped:
            return
        now = time.monotonic()
        first = self._warned_overflows == 0 and self._warned_dropped == 0
        if not first and now - self._last_warning < WARN_EVERY_S:
            return
        losses = []
        if overflows:
            losses.append(f"{overflows} input overflow(s) (the device's buffer overran)")
        if dropped:
            losses.append(
                f"{dropped / self.sample_rate:.1f} s dropped, oldest first (the pipeline fell "
                f"behind by more than {self._ring.capacity / self.sample_rate:.1f} s)"
            )
        log.warning("microphone %s: losing audio since start: %s", self.name, "; ".join(losses))
        self._warned_overflows, self._warned_dropped = overflows, dropped
        self._last_warning = now

    @property
    def finished(self) -> bool:
        with self._cond:
            died = self._check_alive()
            finished = (self._dead or self._stopping) and len(self._ring) == 0
        if died:
            log.error("%s", self._error)
        return finished

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def end_timestamp(self) -> float | None:
        return None

    def stats(self) -> dict[str, float]:
        with self._cond:
            return {
                "audio_s": self._delivered / self.sample_rate,
                "overflows": float(self._overflows),
                "dropped_s": self._ring.dropped / self.sample_rate,
                "reanchors": float(self._reanchors),
            }

    def stop(self) -> None:
        """Close the stream; a driver that hangs is left behind after `close_timeout_s` so
        that shutdown still completes."""
        with self._cond:
            self._stopping = True
            stream, self._stream = self._stream, None
            self._cond.notify_all()
        if stream is None:
            return
        closer = threading.Thread(
            target=_close, args=(stream,), name=f"close-mic-{self.name}", daemon=True
        )
        closer.start()
        closer.join(self._close_timeout_s)
        if closer.is_alive():
            log.warning(
                "microphone %s: the device did not close within %.0f s; leaving it",
                self.name,
                self._close_timeout_s,
            )


def _index_problem(sd: Any, index: int) -> str | None:
    """Why device `index` cannot record, in words an operator can act on."""
    try:
        info = sd.query_devices(index)
    except (ValueError, sd.PortAudioError):
        return f"there is no device #{index}"
    if info["max_input_channels"] <= 0:
        return f'device #{index} "{info["name"]}" has no input channels'
    return None


def _is_active(stream: Any) -> bool:
    try:
        return bool(stream.active)
    except Exception:  # PortAudio refuses to answer about a stream whose device vanished
        return False


def _close(stream: Any) -> None:
    try:
        stream.stop()
        stream.close()
    except Exception as exc:  # closing a vanished device may fail; nothing left to do
        log.debug("closing the input stream failed: %s", exc)
