"""Opening hours under a real `sensekit run` with a live camera (MJPEG through a named pipe):
outside the hours the camera is not opened at all, and at closing time it is closed."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sensekit.broker import LocalBroker
from tests.integration.daemon_process import DaemonProcess
from tests.mqtt_client import Subscriber
from tests.virtual_camera import FifoCamera, fifo_camera
from tools.media.scene import scene_with_faces

pytestmark = pytest.mark.timeout(300)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[FifoCamera]:
    image, _ = scene_with_faces(5, 150, seed=3)
    with fifo_camera(tmp_path, image, fps=10.0) as running:
        yield running


def config(tmp_path: Path, broker: LocalBroker, camera: FifoCamera, schedule: str) -> Path:
    path = tmp_path / "sensekit.yaml"
    path.write_text(
        f"""site: lab
device: pi-7
mqtt:
  url: {broker.url}
cameras:
  - name: door
    source: {str(camera.path)!r}
aggregation:
  window_s: 5
stats:
  interval_s: 1
{schedule}"""
    )
    return path


def closed_around_today() -> str:
    today = datetime.now(UTC).date()
    dates = ", ".join(str(today + timedelta(days=d)) for d in (-1, 0, 1))
    return f"schedule:\n  timezone: UTC\n  closed_dates: [{dates}]\n"


def camera_states(subscriber: Subscriber) -> list[str]:
    return [
        m.payload["cameras"]["door"]["state"]
        for m in subscriber.messages
        if m.topic.endswith("/stats")
    ]


def test_outside_the_hours_the_camera_is_never_opened(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, camera: FifoCamera
) -> None:
    daemon = DaemonProcess(config(tmp_path, broker, camera, closed_around_today()))
    try:
        daemon.wait_for_line("outside opening hours: cameras and microphones stay closed")
        subscriber.wait_for(
            lambda m: m.topic.endswith("/stats") and len(camera_states(subscriber)) >= 3,
            timeout=30,
        )
        assert set(camera_states(subscriber)) == {"closed"}
        assert camera.connections == 0  # nobody ever opened the pipe for reading
        assert camera.frames_written == 0
        assert subscriber.windows() == []
        stats = [m.payload for m in subscriber.messages if m.topic.endswith("/stats")]
        assert stats[-1]["degraded"] == []  # closed by design is not a fault
        # The hours are lifted by a reload: now the camera opens and frames are read.
        config(tmp_path, broker, camera, "")
        daemon.signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while camera.frames_written < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert camera.connections >= 1 and camera.frames_written >= 20
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_at_closing_time_the_camera_is_closed_and_the_window_published(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, camera: FifoCamera
) -> None:
    now = datetime.now(UTC)
    if now.second > 45:  # leave time to start before the minute ends
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    closing = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    close = "24:00" if closing.date() != now.date() else closing.strftime("%H:%M")
    schedule = (
        "schedule:\n  timezone: UTC\n  hours:\n"
        f"    - days: [{DAYS[now.weekday()]}]\n"
        f'      open: "{now.strftime("%H:%M")}"\n      close: "{close}"\n'
    )
    daemon = DaemonProcess(config(tmp_path, broker, camera, schedule))
    try:
        daemon.wait_for_line("opening hours: ")
        deadline = time.monotonic() + 30
        while camera.frames_written < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert camera.frames_written >= 10, daemon.output
        daemon.wait_for_line("opening hours end: closing the cameras", timeout=90)
        assert datetime.now(UTC) >= closing
        deadline = time.monotonic() + 10
        while camera.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not camera.connected  # the reader closed the pipe
        written = camera.frames_written
        subscriber.wait_for(
            lambda m: (
                m.topic.endswith("/stats") and m.payload["cameras"]["door"]["state"] == "closed"
            ),
            timeout=10,
        )
        time.sleep(3)
        assert camera.frames_written == written  # nothing is read any more
        # The window open at closing time went out, closed early.
        assert any(not w["complete"] for w in subscriber.windows())
        assert daemon.stop() == 0
    finally:
        daemon.kill()
