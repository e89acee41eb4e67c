"""A virtual live camera for tests on machines without one: MJPEG written into a named pipe.

A camera process on a device can hand its stream to sensekit through a FIFO (`ffmpeg ... -f
mpjpeg /run/cam.fifo`; `rpicam-vid --codec mjpeg -o /run/cam.fifo` writes bare JPEGs). A FIFO
is live the way a camera is: it delivers frames, it can go quiet while staying open, its
writer can go away (end of stream) and come back. FifoCamera plays that writer.

What OpenCV 4.14's FFmpeg backend does with a FIFO, measured with 640x480 frames at 10 fps:
- Opening blocks in open(2) until a writer opens the other end (OpenCV's open timeout does
  not help), then until probing has enough data. The format decides how much: multipart
  MJPEG ("mpjpeg", the framing MJPEG-over-HTTP cameras use) and YUV4MPEG2 open after the
  first frame, a few ms after it was written; bare concatenated JPEGs are probed until 5 MB
  have arrived (11 s here) unless OPENCV_FFMPEG_CAPTURE_OPTIONS="probesize;32" (two frames).
  Multipart MJPEG is written here: it opens at once, each part carries its length, and a
  frame is a 45 kB JPEG instead of 450 kB of raw YUV.
- While the writer writes nothing, read() blocks for as long as that lasts; when the writer
  closes its end, read() returns False at once.

How the writer stays robust (a loaded 2-core machine, readers that come and go):
- Its end is non-blocking: opening it fails with ENXIO until a reader exists (retried every
  few ms), and no write ever waits for a reader, so pause, hang-up and stop act within one
  polling step.
- A frame is written only into an empty pipe that can hold all of it (the pipe is grown to
  fit), so one write puts the whole frame in at once: the pipe holds at most one frame, a
  reader that lags behind makes the camera drop frames (as a real one does) rather than see
  stale ones, and a reader that leaves between frames leaves whole frames behind, so the
  next reader starts on a frame boundary.
- A reader that leaves is noticed by poll() (POLLERR) or by a write failing with EPIPE
  (Python ignores SIGPIPE, so that is BrokenPipeError rather than death); the writer closes
  its end and waits for the next reader, as a camera that is still plugged in would.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import signal
import termios
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt

BGRImage = npt.NDArray[np.uint8]

BOUNDARY = b"ffmpeg"
"""The part boundary FFmpeg's own mpjpeg muxer uses."""

STEP_S = 0.005
"""The writer's polling step: how fast it notices a reader, a departed reader or a command."""


def mpjpeg_part(image: BGRImage, quality: int = 90) -> bytes:
    """One frame of a multipart MJPEG stream: boundary, headers, the JPEG, CRLF."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    jpeg = encoded.tobytes()
    head = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (
        BOUNDARY,
        len(jpeg),
    )
    return head + jpeg + b"\r\n"


class FifoCamera:
    """A live MJPEG camera behind the named pipe `directory/name`, written at `fps` by a thread.

    `frames` is one BGR image or a sequence of them, cycled. The FIFO exists from construction
    on (so the path is a live source at once) and is removed by stop(). Nothing is written
    until start(); then whichever reader opens the pipe gets frames, one after the other.
    """

    def __init__(
        self,
        directory: Path,
        frames: BGRImage | Sequence[BGRImage],
        fps: float = 10.0,
        name: str = "camera.fifo",
        quality: int = 90,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        images = [frames] if isinstance(frames, np.ndarray) else list(frames)
        if not images:
            raise ValueError("a camera needs at least one frame")
        self._parts = [mpjpeg_part(image, quality) for image in images]
        self.fps = fps
        # Python ignores SIGPIPE, so writing to a pipe without a reader raises BrokenPipeError.
        # Should an embedding program have restored the default, that write would kill the
        # process: restore Python's choice (only possible from the main thread, else ValueError).
        if signal.getsignal(signal.SIGPIPE) != signal.SIG_IGN:
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self._path = directory / name
        os.mkfifo(self._path)
        self._lock = threading.Condition()
        self._online = True  # False after hang_up(): the write end stays closed
        self._paused = False
        self._stopping = False
        self._in_write = False
        self._fd = -1
        self._frames_written = 0
        self._frames_dropped = 0
        self._connections = 0
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def frames_written(self) -> int:
        """Whole frames put into the pipe, over every connection."""
        with self._lock:
            return self._frames_written

    @property
    def frames_dropped(self) -> int:
        """Frames not written because the reader had not taken the previous one yet."""
        with self._lock:
            return self._frames_dropped

    @property
    def connections(self) -> int:
        """How many times the write end was opened to a reader."""
        with self._lock:
            return self._connections

    @property
    def connected(self) -> bool:
        """The write end is open (a reader was there when it was opened)."""
        with self._lock:
            return self._fd >= 0

    def start(self) -> None:
        """Start writing: the write end opens as soon as a reader opens the FIFO."""
        if self._thread is not None:
            raise RuntimeError("the camera is already started")
        self._thread = threading.Thread(target=self._write_loop, name="fifo-camera", daemon=True)
        self._thread.start()

    def pause(self, timeout: float = 5.0) -> None:
        """Stall: keep the pipe open, write nothing. A frame being written is finished first,
        so frames_written no longer changes once this returns."""
        with self._lock:
            self._paused = True
            if not self._lock.wait_for(lambda: not self._in_write, timeout):
                raise TimeoutError("the writer did not finish its frame")

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._lock.notify_all()

    def hang_up(self, timeout: float = 5.0) -> None:
        """Close the write end and keep it closed, as an unplugged camera would: the reader sees
        the end of the stream. Returns once the end is closed."""
        with self._lock:
            self._online = False
            self._lock.notify_all()
            if self._thread is not None and not self._lock.wait_for(lambda: self._fd < 0, timeout):
                raise TimeoutError("the writer did not close the pipe")

    def reconnect(self) -> None:
        """Come back: the write end opens again as soon as a reader opens the FIFO."""
        with self._lock:
            self._online = True
            self._lock.notify_all()

    def wait_for_frames(self, count: int, timeout: float) -> bool:
        """Wait until frames_written reaches `count`; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._frames_written >= count, timeout)

    def stop(self) -> None:
        """End the writer, close the pipe and remove it. A reader blocked opening the FIFO
        is released (it sees an empty stream) rather than left hanging."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(5.0)
            if self._thread.is_alive():
                raise TimeoutError("the camera writer did not stop")
        self._close()
        # A reader blocked in open(2) is waiting for any writer: let one come and go.
        with contextlib.suppress(OSError):
            os.close(os.open(self._path, os.O_WRONLY | os.O_NONBLOCK))
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    def __enter__(self) -> FifoCamera:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # The writer thread.

    def _write_loop(self) -> None:
        period = 1.0 / self.fps
        due = time.monotonic()
        index = 0
        while True:
            with self._lock:
                if self._stopping:
                    return
                if not self._online:
                    self._close_locked()
                    self._lock.wait(STEP_S)
                    continue
                paused = self._paused
            if self._fd < 0 and not self._open_write_end():
                time.sleep(STEP_S)
                due = time.monotonic()
                continue
            if self._reader_left():
                self._close()
                continue
            now = time.monotonic()
            if now < due:
                time.sleep(min(STEP_S, due - now))
                continue
            due += period
            if due < now:  # late by more than a frame (a loaded machine): no burst to catch up
                due = now + period
            if paused:
                continue
            if self._unread_bytes() > 0:
                with self._lock:
                    self._frames_dropped += 1
                continue
            with self._lock:
                if self._paused or not self._online or self._stopping:
                    continue
                self._in_write = True
            written = False
            try:
                written = self._write(self._parts[index % len(self._parts)])
            finally:
                with self._lock:
                    self._in_write = False
                    self._frames_written += written
                    self._lock.notify_all()
            index += written

    def _open_write_end(self) -> bool:
        """Open the write end if a reader is there (ENXIO otherwise)."""
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENOENT):
                return False
            raise
        largest = max(len(part) for part in self._parts)
        if fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < largest:
            # Up to /proc/sys/fs/pipe-max-size (1 MiB by default) needs no privilege.
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, largest)
        with self._lock:
            self._fd = fd
            self._connections += 1
        return True

    def _reader_left(self) -> bool:
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        return any(mask & select.POLLERR for _, mask in poller.poll(0))

    def _unread_bytes(self) -> int:
        count = array.array("i", [0])
        fcntl.ioctl(self._fd, termios.FIONREAD, count)
        return count[0]

    def _write(self, part: bytes) -> bool:
        """Write one frame; False when the reader went away (the end is then closed).

        Into an empty pipe large enough this is one write. Should the pipe be smaller (it
        could not be grown), the rest follows as the reader makes room, without blocking:
        hang_up() and stop() are still noticed between chunks."""
        view = memoryview(part)
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        try:
            while view:
                try:
                    view = view[os.write(self._fd, view) :]
                except BlockingIOError:
                    if self._stopping or not self._online:
                        return False
                    poller.poll(round(STEP_S * 1000))
        except BrokenPipeError:
            self._close()
            return False
        return True

    def _close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._lock.notify_all()


@contextlib.contextmanager
def fifo_camera(
    directory: Path,
    frames: BGRImage | Sequence[BGRImage],
    fps: float = 10.0,
    name: str = "camera.fifo",
) -> Iterator[FifoCamera]:
    """A started FifoCamera, stopped (and its FIFO removed) on exit."""
    camera = FifoCamera(directory, frames, fps, name)
    camera.start()
    try:
        yield camera
    finally:
        camera.stop()
