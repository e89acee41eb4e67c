"""One still picture to draw zones on: from an image file, a video file, or the camera itself.

The snapshot lives in memory only. It is handed to the zone editor and the preview renderer
and then dropped: nothing here writes a file, and the daemon never calls this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from sensekit.config import CameraConfig
from sensekit.errors import SourceError
from sensekit.sources.kinds import describe_source
from sensekit.sources.readers import open_reader

log = logging.getLogger(__name__)

WARMUP_FRAMES = 15
"""Frames a live camera delivers before the one kept: auto-exposure and white balance settle
over the first half second or so, and a dark or green first frame is a poor picture to draw
zones on (and hides faces from the preview's detector)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    image: npt.NDArray[np.uint8] = field(repr=False)  # BGR, H x W x 3
    origin: str  # where it came from, for messages and the preview's title

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def _colour(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """BGR whatever the file held (grey, BGRA): the detector and the drawing expect 3 channels."""
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    return np.ascontiguousarray(image)


def from_image(path: Path) -> Snapshot:
    if not path.is_file():
        raise SourceError(f"{path}: no such image file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{path}: cannot decode it as an image (JPEG, PNG, BMP, WebP...)")
    return Snapshot(_colour(image), str(path))


def from_video(path: Path, at_s: float = 0.0) -> Snapshot:
    """The frame at `at_s` seconds (the first one when 0)."""
    if not path.is_file():
        raise SourceError(f"{path}: no such video file")
    if at_s < 0:
        raise SourceError(f"{path}: --at must be 0 or more seconds, got {at_s:g}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise SourceError(f"{path}: cannot open it as a video OpenCV can decode")
        if at_s > 0:
            capture.set(cv2.CAP_PROP_POS_MSEC, at_s * 1000.0)
        ok, frame = capture.read()
        if not ok or frame is None:
            fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
            frames = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
            length = f" (it is {frames / fps:.1f} s long)" if fps > 0 and frames > 0 else ""
            raise SourceError(f"{path}: no frame at {at_s:g} s{length}")
        return Snapshot(_colour(frame), f"{path} at {at_s:g} s")
    finally:
        capture.release()


def from_camera(camera: CameraConfig, warmup_frames: int = WARMUP_FRAMES) -> Snapshot:
    """One frame from the camera's configured source, opened with the daemon's own readers
    (same device, resolution and backend as in operation) and closed straight after.

    A live camera first drops `warmup_frames`; a replayed file or image folder gives its
    first frame.
    """
    label = describe_source(camera.source)
    reader = open_reader(
        camera.name, camera.source, camera.width, camera.height, camera.fps, camera.image_fps
    )
    try:
        skip = warmup_frames if reader.live else 0
        frame = None
        for _ in range(skip + 1):
            got = reader.read()
            if got is None:
                break
            frame = got[0]
        if frame is None:
            raise SourceError(f"camera {camera.name}: {label} opened but gave no frame")
        log.info("snapshot from camera %s (%s): %dx%d", camera.name, label, *frame.shape[1::-1])
        return Snapshot(_colour(frame), f"camera {camera.name} ({label})")
    finally:
        reader.close()
