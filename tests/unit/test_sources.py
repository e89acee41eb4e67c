"""Sources: the bounded hand-off, replay time bases, image folders."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensekit.errors import SourceError
from sensekit.sources.capture import CaptureSource
from sensekit.sources.frame_queue import FrameQueue
from sensekit.sources.kinds import describe_source, is_live_source
from sensekit.sources.readers import open_reader
from sensekit.types import VideoFrame


def frame(index: int) -> VideoFrame:
    return VideoFrame("cam", index, float(index), np.zeros((2, 2, 3), np.uint8))


def test_a_full_live_queue_drops_the_oldest_and_counts_it() -> None:
    queue = FrameQueue(2, drop_oldest=True)
    for i in range(5):
        queue.put(frame(i))
    assert queue.dropped == 3
    assert [queue.get(0).index, queue.get(0).index] == [3, 4]
    assert queue.get(0.01) is None


def test_a_replay_queue_blocks_the_reader_instead_of_dropping() -> None:
    queue = FrameQueue(1, drop_oldest=False)
    queue.put(frame(0))
    done = threading.Event()
    threading.Thread(target=lambda: (queue.put(frame(1)), done.set()), daemon=True).start()
    assert not done.wait(0.2)  # blocked while full
    assert queue.get(1).index == 0
    assert done.wait(2) and queue.get(1).index == 1 and queue.dropped == 0


def test_source_kinds_and_safe_labels() -> None:
    assert is_live_source(0) and is_live_source("2") and is_live_source("/dev/video0")
    assert is_live_source("rtsp://cam/stream") and is_live_source("picamera2")
    assert not is_live_source("clips/door.mp4")
    assert describe_source("rtsp://admin:secret@10.0.0.5/s1") == "rtsp://***@10.0.0.5/s1"


def write_video(path: Path, frames: int, fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.release()


def drain(source: CaptureSource) -> list[VideoFrame]:
    frames = []
    deadline = time.monotonic() + 20
    while not source.finished and time.monotonic() < deadline:
        item = source.read(0.1)
        if item is not None:
            frames.append(item)
    return frames


def test_a_fast_replay_delivers_every_frame_on_the_media_time_base(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_video(video, 25, 5.0)
    source = CaptureSource(
        "cam",
        lambda: open_reader("cam", str(video)),
        queue_size=2,
        realtime=False,
        start_time=1000.0,
    )
    source.start()
    frames = drain(source)
    source.stop()
    assert len(frames) == 25
    np.testing.assert_allclose(
        [f.timestamp for f in frames], 1000.0 + np.arange(25) / 5.0, atol=1e-3
    )
    assert source.end_timestamp == pytest.approx(1005.0, abs=1e-3)
    assert source.error is None


def test_an_image_folder_replays_in_name_order(tmp_path: Path) -> None:
    for name, level in (("b.png", 20), ("a.png", 10), ("c.jpg", 30)):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), level, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    source = CaptureSource(
        "cam",
        lambda: open_reader("cam", str(tmp_path), image_fps=2.0),
        realtime=False,
        start_time=0.0,
    )
    source.start()
    frames = drain(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30]
    assert [f.timestamp for f in frames] == [0.0, 0.5, 1.0]


def test_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        open_reader("cam", str(tmp_path))


def test_picamera2_without_the_library_says_how_to_get_it() -> None:
    pytest.importorskip("sensekit.sources.picamera")
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match="python3-picamera2"):
            open_reader("cam", "picamera2")
    else:
        pytest.skip("picamera2 is installed: covered by the hardware tests")
