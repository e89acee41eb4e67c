"""A live camera behind a named pipe: frames, a stall, a hang-up and a return, seen through
the real readers and capture thread (tests/virtual_camera.py writes real MJPEG)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sensekit.errors import SourceError
from sensekit.sources.capture import CaptureSource
from sensekit.sources.kinds import is_live_source
from sensekit.sources.readers import VideoCaptureReader, open_reader
from sensekit.types import VideoFrame
from sensekit.vision.detector import DetectorOptions, FaceDetector
from tests.virtual_camera import BGRImage, FifoCamera, fifo_camera
from tools.media.scene import PixelBox, match, scene_with_faces

# A hang here would otherwise wait for the suite's 10-minute limit.
pytestmark = pytest.mark.timeout(60)

FPS = 20.0


@pytest.fixture(scope="module")
def scene() -> tuple[BGRImage, list[PixelBox]]:
    return scene_with_faces(5, 150, seed=3)


@pytest.fixture
def camera(tmp_path: Path, scene: tuple[BGRImage, list[PixelBox]]) -> Iterator[FifoCamera]:
    with fifo_camera(tmp_path, scene[0], fps=FPS) as running:
        yield running


def capture(camera: FifoCamera) -> CaptureSource:
    source = CaptureSource("cam", lambda: open_reader("cam", str(camera.path)))
    source.start()
    return source


def frames_for(source: CaptureSource, seconds: float) -> list[VideoFrame]:
    """Everything the source delivers in the next `seconds`."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        item = source.read(min(left, 0.1))
        if item is not None:
            frames.append(item)
    return frames


def wait_finished(source: CaptureSource, timeout: float) -> bool:
    """Drain the queue until the source reports finished; False on timeout."""
    deadline = time.monotonic() + timeout
    while not source.finished:
        if time.monotonic() > deadline:
            return False
        source.read(0.05)
    return True


def test_a_named_pipe_is_a_live_source(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "cam.fifo")
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert is_live_source(str(tmp_path / "cam.fifo"))
    assert is_live_source(f" {tmp_path / 'cam.fifo'} ")
    assert not is_live_source(str(tmp_path / "clip.mp4"))
    assert not is_live_source(str(tmp_path / "missing.fifo"))
    assert not is_live_source("bad\0path")


def test_frames_arrive_live_and_decoded_with_every_face(
    camera: FifoCamera, scene: tuple[BGRImage, list[PixelBox]]
) -> None:
    image, truth = scene
    started = time.monotonic()
    reader = open_reader("cam", str(camera.path))
    try:
        opened_s = time.monotonic() - started
        items = [reader.read() for _ in range(3)]
    finally:
        reader.close()
    assert reader.live
    assert opened_s < 2.0  # multipart MJPEG opens after the first frame, not after 5 MB
    for item in items:
        assert item is not None
        frame, media_time = item
        assert media_time is None  # live: the capture thread stamps it with the clock
        assert frame.shape == image.shape
        assert np.abs(frame.astype(np.int16) - image).mean() < 4.0  # JPEG at quality 90
    frame = items[-1][0]  # type: ignore[index]
    height, width = frame.shape[:2]
    faces = FaceDetector(DetectorOptions()).detect(frame)
    boxes = [
        (f.box.xmin * width, f.box.ymin * height, f.box.xmax * width, f.box.ymax * height)
        for f in faces
    ]
    assert None not in match(truth, boxes)


def test_a_capture_source_over_a_pipe_stamps_frames_with_the_clock(camera: FifoCamera) -> None:
    source = capture(camera)
    try:
        frames = frames_for(source, 1.0)
    finally:
        source.stop()
    assert len(frames) >= 5  # 20 written per second; a loaded machine may drop some
    now = time.time()
    assert all(now - 3.0 < f.timestamp <= now for f in frames)
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert source.error is None


def test_a_stalled_camera_delivers_nothing_but_stays_open(camera: FifoCamera) -> None:
    source = capture(camera)
    try:
        assert frames_for(source, 0.5)
        camera.pause()
        frames_for(source, 0.3)  # what was already in the pipe and the queue
        assert frames_for(source, 1.0) == []
        assert not source.finished and source.error is None
        camera.resume()
        assert frames_for(source, 1.0)  # the blocked read carries on
    finally:
        source.stop()
    assert source.error is None


def test_a_hang_up_ends_the_source_with_an_error(camera: FifoCamera) -> None:
    source = capture(camera)
    try:
        assert frames_for(source, 0.5)
        started = time.monotonic()
        camera.hang_up()
        assert wait_finished(source, 3.0)
        ended_s = time.monotonic() - started
    finally:
        source.stop()
    assert ended_s < 1.0  # the end of the stream is immediate, not a timeout
    assert source.error is not None and "stopped delivering" in source.error


def test_after_a_reconnect_a_new_reader_gets_frames_again(camera: FifoCamera) -> None:
    first = capture(camera)
    try:
        camera.hang_up()
        assert wait_finished(first, 3.0)
    finally:
        first.stop()
    written = camera.frames_written
    camera.reconnect()
    second = capture(camera)
    try:
        frames = frames_for(second, 1.0)
    finally:
        second.stop()
    assert frames and second.error is None
    assert camera.frames_written > written and camera.connections == 2


def test_readers_may_come_and_go_while_the_camera_runs(camera: FifoCamera) -> None:
    """A reader that leaves mid-stream leaves the pipe on a frame boundary for the next."""
    for _ in range(4):
        reader = open_reader("cam", str(camera.path))
        try:
            assert all(reader.read() is not None for _ in range(2))
        finally:
            reader.close()


def test_opening_a_pipe_nobody_writes_to_fails_in_bounded_time(
    tmp_path: Path, scene: tuple[BGRImage, list[PixelBox]]
) -> None:
    camera = FifoCamera(tmp_path, scene[0], fps=FPS)  # the pipe exists; no process writes
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match="nothing wrote into the pipe"):
            VideoCaptureReader("cam", str(camera.path), fifo_timeout_s=0.3)
        assert time.monotonic() - started < 2.0
        camera.start()
        camera.hang_up()  # a camera that came, and went before anyone read
        with pytest.raises(SourceError, match="nothing wrote into the pipe"):
            VideoCaptureReader("cam", str(camera.path), fifo_timeout_s=0.3)
    finally:
        camera.stop()


def test_a_stalled_camera_is_abandoned_and_a_new_source_takes_over(camera: FifoCamera) -> None:
    """The daemon's answer to a stall: give up on the source whose read is blocked and open
    another. The old reader is still blocked on the pipe when the new one opens; the camera
    writing whole frames into an empty pipe keeps the two from tearing a frame apart."""
    stalled = CaptureSource("cam", lambda: open_reader("cam", str(camera.path)), stall_s=1.0)
    stalled.start()
    try:
        assert frames_for(stalled, 0.3)
        camera.pause()
        assert wait_finished(stalled, 3.0)
    finally:
        stalled.stop()  # returns at once: the thread is abandoned, still blocked in read()
    assert stalled.error is not None and "stalled" in stalled.error
    timer = threading.Timer(0.5, camera.resume)  # the new reader opens while nothing flows
    timer.start()
    try:
        fresh = capture(camera)
        try:
            assert frames_for(fresh, 1.0)
        finally:
            fresh.stop()
    finally:
        timer.cancel()
    assert fresh.error is None
