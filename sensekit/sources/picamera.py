"""Raspberry Pi camera through picamera2; imported only when a config asks for `picamera2`.

picamera2 and libcamera come from the Raspberry Pi archive, not PyPI, so they cannot be a
dependency; this adapter is exercised on hardware only (tests marked `hardware`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sensekit.errors import SourceError
from sensekit.sources.readers import Frame


class PiCameraReader:
    live = True

    def __init__(self, camera: str, width: int, height: int, fps: float | None) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SourceError(
                f"camera {camera}: source 'picamera2' needs the picamera2 package "
                "(sudo apt install python3-picamera2, and create the venv with "
                "--system-site-packages)"
            ) from exc
        try:
            self._camera: Any = Picamera2()
            controls = {"FrameRate": fps} if fps else {}
            config = self._camera.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"}, controls=controls
            )
            self._camera.configure(config)
            self._camera.start()
        except Exception as exc:  # libcamera raises many types; all mean "no usable camera"
            raise SourceError(f"camera {camera}: picamera2 could not start: {exc}") from exc
        self.nominal_fps = float(fps or 0.0)

    def read(self) -> tuple[Frame, float | None] | None:
        # capture_array copies out of the camera's buffer and releases it; "RGB888" is BGR
        # byte order in memory, which is what OpenCV and the rest of sensekit expect.
        frame = self._camera.capture_array("main")
        return np.ascontiguousarray(frame[:, :, :3]), None

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()
