"""On a real device only (SENSEKIT_HARDWARE=1): the Pi camera and a USB camera deliver frames."""

from __future__ import annotations

import os

import pytest

from sensekit.sources.capture import CaptureSource
from sensekit.sources.readers import open_reader

pytestmark = pytest.mark.hardware


@pytest.mark.parametrize("source", ["picamera2", os.environ.get("SENSEKIT_TEST_CAMERA", "0")])
def test_a_live_camera_delivers_stamped_frames(source: str) -> None:
    camera = CaptureSource("hw", lambda: open_reader("hw", source, 640, 480, 15))
    camera.start()
    try:
        frames = [camera.read(2.0) for _ in range(10)]
    finally:
        camera.stop()
    assert all(f is not None for f in frames)
    stamps = [f.timestamp for f in frames if f is not None]
    assert stamps == sorted(stamps)
    assert frames[0] is not None and frames[0].image.shape[2] == 3
