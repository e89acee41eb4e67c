"""A capture thread per source: read, copy, stamp, hand over through a FrameQueue.

Live sources are stamped with the capture time; replays with the media's own position plus the
replay's start, so a file gives the same windows however fast it is read.

A live source that goes silent without an error (an RTSP stream or a pipe whose writer hangs,
a driver stuck in a read) is declared stalled after `stall_s` and abandoned: its thread may stay
blocked in the driver, but the inference loop never waits for it, and the daemon opens a new
source in its place.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from sensekit.errors import SourceError
from sensekit.sources.frame_queue import FrameQueue
from sensekit.sources.readers import FrameReader
from sensekit.types import VideoFrame

log = logging.getLogger(__name__)


class CaptureSource:
    """A FrameSource over any FrameReader. The reader is opened by the caller (so opening
    errors surface at start-up, in the caller's thread) and owned by this object after."""

    def __init__(
        self,
        name: str,
        reader_factory: Callable[[], FrameReader],
        queue_size: int = 2,
        realtime: bool = True,
        start_time: float | None = None,
        clock: Callable[[], float] = time.time,
        stall_s: float = 10.0,
    ) -> None:
        self.name = name
        self._stall_s = stall_s
        self._factory = reader_factory
        self._realtime = realtime
        self._start_time = start_time
        self._clock = clock
        self._queue_size = queue_size
        self.queue = FrameQueue(queue_size)
        self._reader: FrameReader | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._end_timestamp: float | None = None
        self._error: str | None = None
        self._captured = 0
        self._recent = deque[float](maxlen=60)
        self._opened = threading.Event()
        self._last_frame = time.monotonic()
        self._abandoned = False

    def start(self) -> None:
        """Open now, in the caller's thread, so a wrong source fails at start-up, clearly."""
        reader, first = self._open()
        self._begin(reader, first)

    def start_in_background(self) -> None:
        """Open in the capture thread: a reopen must never block the inference loop (an RTSP
        connect can take half a minute, a pipe blocks until its writer is back). A failure ends
        the source with an error, as a failure while reading would."""
        self.queue = FrameQueue(self._queue_size, drop_oldest=True)
        self._thread = threading.Thread(
            target=self._open_and_run, name=f"capture-{self.name}", daemon=True
        )
        self._thread.start()

    def _open(self) -> tuple[FrameReader, tuple[np.ndarray, float | None]]:
        reader = self._factory()
        first = reader.read()
        if first is None:
            reader.close()
            kind = "camera" if reader.live else "media"
            raise SourceError(f"camera {self.name}: the {kind} opened but gave no frame")
        return reader, first

    def _begin(self, reader: FrameReader, first: tuple[np.ndarray, float | None]) -> None:
        self._prepare(reader)
        self._thread = threading.Thread(
            target=self._run, args=(first,), name=f"capture-{self.name}", daemon=True
        )
        self._thread.start()

    def _prepare(self, reader: FrameReader) -> None:
        self._reader = reader
        if not self._opened.is_set():
            self.queue = FrameQueue(self._queue_size, drop_oldest=reader.live or self._realtime)
        if self._start_time is None:
            self._start_time = self._clock()
        self._last_frame = time.monotonic()
        self._opened.set()

    def _open_and_run(self) -> None:
        try:
            reader, first = self._open()
        except SourceError as exc:
            self._error = str(exc)
        except Exception as exc:  # a driver failure while opening must not end the process
            self._error = f"camera {self.name}: cannot open: {exc}"
        else:
            if not self._stop.is_set():
                self._prepare(reader)
                self._run(first)
                return
            reader.close()
        self._finished.set()

    def _run(self, first: tuple[np.ndarray, float | None]) -> None:
        reader = self._reader
        assert reader is not None and self._start_time is not None
        item: tuple[np.ndarray, float | None] | None = first
        wall_start = time.monotonic()
        last_media_time = 0.0
        index = 0
        try:
            while not self._stop.is_set():
                if item is None:
                    item = reader.read()
                    if item is None:
                        break
                image, media_time = item
                item = None
                if media_time is None:
                    timestamp = self._clock()
                else:
                    last_media_time = media_time
                    timestamp = self._start_time + media_time
                    ahead = media_time - (time.monotonic() - wall_start)
                    if self._realtime and ahead > 0 and self._stop.wait(ahead):
                        break
                frame = VideoFrame(self.name, index, timestamp, np.ascontiguousarray(image))
                index += 1
                self._captured += 1
                self._last_frame = time.monotonic()
                self._recent.append(self._last_frame)
                if not self.queue.put(frame):
                    break
        except SourceError as exc:
            self._error = str(exc)
        except (
            Exception
        ) as exc:  # a decoder or driver failure must end this source, not the process
            self._error = f"camera {self.name}: capture failed: {exc}"
        finally:
            if not reader.live:
                step = 1.0 / reader.nominal_fps if reader.nominal_fps > 0 else 0.0
                self._end_timestamp = self._start_time + last_media_time + step
            elif not self._stop.is_set() and self._error is None:
                self._error = f"camera {self.name}: the camera stopped delivering frames"
            if self._error and not self._abandoned:
                log.error("%s", self._error)
            reader.close()
            self._finished.set()

    def read(self, timeout: float) -> VideoFrame | None:
        return self.queue.get(timeout)

    @property
    def opening(self) -> bool:
        """Opening in the background: not expected to deliver frames yet."""
        return not self._opened.is_set() and not self._finished.is_set()

    def _check_stalled(self) -> None:
        """A live source silent for `stall_s` is abandoned: the stop flag ends its thread
        whenever the driver lets go, and nothing waits for that."""
        if (
            self._reader is None
            or not self._reader.live
            or self._finished.is_set()
            or self._stop.is_set()
            or len(self.queue)
            or time.monotonic() - self._last_frame <= self._stall_s
        ):
            return
        self._error = f"camera {self.name}: no frame for {self._stall_s:.0f} s (the stream stalled)"
        log.error("%s", self._error)
        self._abandoned = True
        self._stop.set()
        self.queue.close()
        self._finished.set()

    @property
    def finished(self) -> bool:
        self._check_stalled()
        return self._finished.is_set() and len(self.queue) == 0

    @property
    def end_timestamp(self) -> float | None:
        return self._end_timestamp

    @property
    def error(self) -> str | None:
        return self._error

    def stats(self) -> dict[str, float]:
        recent = list(self._recent)
        span = recent[-1] - recent[0] if len(recent) > 1 else 0.0
        return {
            "frames_captured": float(self._captured),
            "frames_dropped": float(self.queue.dropped),
            "camera_fps": round((len(recent) - 1) / span, 2) if span > 0 else 0.0,
        }

    def stop(self) -> None:
        self._stop.set()
        self.queue.close()
        if self._thread is not None and not self._abandoned:
            self._thread.join(timeout=5.0)
