"""Readers: the device-specific part of a source. Each yields (frame, media time) pairs.

A reader is used from the capture thread only. Live readers return media time None (the
capture thread stamps them with the clock); replay readers return the media's own time.
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from sensekit.errors import SourceError
from sensekit.sources.kinds import describe_source, is_fifo, is_live_source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

FIFO_WRITER_TIMEOUT_S = 5.0
"""How long opening a named pipe waits for a camera process to write into it. Opening a FIFO
for reading blocks until a writer opens it, and OpenCV's open timeout cannot interrupt that
system call, so without this bound a dead camera process would hang the caller for good."""

Frame = npt.NDArray[np.uint8]


class FrameReader(Protocol):
    live: bool
    nominal_fps: float

    def read(self) -> tuple[Frame, float | None] | None:
        """The next frame and its media time in seconds, or None at the end / on failure."""

    def close(self) -> None: ...


def _await_fifo_writer(camera: str, path: str, timeout_s: float) -> int:
    """Wait until something writes into the named pipe `path`; return a read end that keeps
    the pipe connected until the caller closes it.

    A non-blocking read end opens at once and reports POLLIN when the first bytes arrive, so
    the wait is bounded. POLLHUP without data means a writer came and went: that read end
    would report it forever, so it is reopened to wait for the next writer."""
    deadline = time.monotonic() + timeout_s
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            remaining = deadline - time.monotonic()
            events = poller.poll(max(0, round(remaining * 1000)))
            if any(mask & select.POLLIN for _, mask in events):
                return fd
            if remaining <= 0:
                raise SourceError(
                    f"camera {camera}: nothing wrote into the pipe {path} within "
                    f"{timeout_s:g} s (is the camera process running?)"
                )
            if events:  # POLLHUP: the writer left before writing anything
                os.close(fd)
                fd = -1
                time.sleep(0.01)
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


class VideoCaptureReader:
    """cv2.VideoCapture: a camera index, /dev/videoN, an RTSP URL, a named pipe carrying a
    live stream, or a video file.

    A named pipe is opened only once a writer has sent data (see FIFO_WRITER_TIMEOUT_S). What
    OpenCV 4.14's FFmpeg backend then does with it, measured with a 640x480 stream at 10 fps:
    - MJPEG in multipart framing (`ffmpeg -f mpjpeg`) and YUV4MPEG2 open after the first
      frame (a few ms). Bare concatenated JPEGs (`rpicam-vid --codec mjpeg -o FIFO`) are
      probed until 5 MB have arrived (11 s here) unless OPENCV_FFMPEG_CAPTURE_OPTIONS sets a
      small probesize ("probesize;32": two frames).
    - While the writer stalls, read() blocks for as long as the stall lasts: a read timeout
      (CAP_PROP_READ_TIMEOUT_MSEC) cannot interrupt the blocked read and only breaks the
      stream once data flows again. A stall is therefore visible as frames stopping, not as
      an error.
    - When the writer closes the pipe, read() returns False at once (end of stream).
    """

    def __init__(
        self,
        camera: str,
        source: str | int,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fifo_timeout_s: float = FIFO_WRITER_TIMEOUT_S,
    ) -> None:
        self.live = is_live_source(source)
        target: str | int = source
        if isinstance(source, str) and source.strip().isdigit():
            target = int(source)
        if not self.live and not Path(str(source)).is_file():
            raise SourceError(f"camera {camera}: media file not found: {source}")
        pipe_fd = (
            _await_fifo_writer(camera, source.strip(), fifo_timeout_s)
            if isinstance(source, str) and is_fifo(source)
            else -1
        )
        try:
            capture = cv2.VideoCapture(target)
        finally:
            # Held until OpenCV has its own read end: had the pipe no reader in between, the
            # writer would see a broken pipe.
            if pipe_fd >= 0:
                os.close(pipe_fd)
        if not capture.isOpened():
            capture.release()
            hint = (
                "is the camera connected and the user in the 'video' group?"
                if self.live
                else "is it a video file OpenCV can decode?"
            )
            raise SourceError(f"camera {camera}: cannot open {describe_source(source)} ({hint})")
        if self.live:
            for prop, value in (
                (cv2.CAP_PROP_FRAME_WIDTH, width),
                (cv2.CAP_PROP_FRAME_HEIGHT, height),
                (cv2.CAP_PROP_FPS, fps),
            ):
                if value:
                    capture.set(prop, value)
        self.nominal_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._capture = capture

    def read(self) -> tuple[Frame, float | None] | None:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        media_time = None if self.live else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        return frame, media_time

    def close(self) -> None:
        self._capture.release()


class ImageFolderReader:
    """A folder of still images, in name order, at a fixed frame rate."""

    live = False

    def __init__(self, camera: str, folder: Path, fps: float) -> None:
        self._paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._paths:
            raise SourceError(
                f"camera {camera}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}"
            )
        self.nominal_fps = fps
        self._camera = camera
        self._next = 0

    def read(self) -> tuple[Frame, float | None] | None:
        if self._next >= len(self._paths):
            return None
        path = self._paths[self._next]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"camera {self._camera}: cannot decode image {path}")
        media_time = self._next / self.nominal_fps
        self._next += 1
        return image, media_time

    def close(self) -> None:
        self._next = len(self._paths)


def open_reader(
    camera: str,
    source: str | int,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    image_fps: float = 10.0,
) -> FrameReader:
    """The reader for a configured source string: folder, picamera2, or OpenCV."""
    if isinstance(source, str) and source.strip() == "picamera2":
        from sensekit.sources.picamera import PiCameraReader

        return PiCameraReader(camera, width or 640, height or 480, fps)
    if isinstance(source, str) and Path(source).is_dir():
        return ImageFolderReader(camera, Path(source), image_fps)
    return VideoCaptureReader(camera, source, width, height, fps)
