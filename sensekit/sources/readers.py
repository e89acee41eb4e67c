"""Readers: the device-specific part of a source. Each yields (frame, media time) pairs.

A reader is used from the capture thread only. Live readers return media time None (the
capture thread stamps them with the clock); replay readers return the media's own time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from sensekit.errors import SourceError
from sensekit.sources.kinds import describe_source, is_live_source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

Frame = npt.NDArray[np.uint8]


class FrameReader(Protocol):
    live: bool
    nominal_fps: float

    def read(self) -> tuple[Frame, float | None] | None:
        """The next frame and its media time in seconds, or None at the end / on failure."""

    def close(self) -> None: ...


class VideoCaptureReader:
    """cv2.VideoCapture: a camera index, /dev/videoN, an RTSP URL, or a video file."""

    def __init__(
        self,
        camera: str,
        source: str | int,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
    ) -> None:
        self.live = is_live_source(source)
        target: str | int = source
        if isinstance(source, str) and source.strip().isdigit():
            target = int(source)
        if not self.live and not Path(str(source)).is_file():
            raise SourceError(f"camera {camera}: media file not found: {source}")
        capture = cv2.VideoCapture(target)
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
