"""A live camera (MJPEG through a named pipe, tests/virtual_camera.py) that fails, stalls and
comes back, under a real `sensekit run`, watched through a real sd_notify socket."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensekit.broker import LocalBroker
from tests.integration.daemon_process import DaemonProcess
from tests.mqtt_client import Subscriber
from tests.virtual_camera import FifoCamera, fifo_camera
from tools.media.scene import scene_with_faces

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[FifoCamera]:
    image, _ = scene_with_faces(5, 150, seed=3)
    with fifo_camera(tmp_path, image, fps=10.0) as running:
        yield running


class NotifySocket:
    """What systemd's manager sees: every sd_notify datagram the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []

    def collect(self, seconds: float) -> list[str]:
        """Everything received in the next `seconds`."""
        deadline = time.monotonic() + seconds
        got = []
        while time.monotonic() < deadline:
            try:
                data = self._sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data))
            got.append(data)
        return got

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.collect(0.2):
                if text in message:
                    return message
        raise AssertionError(f"no {text!r} from the daemon; got {self.messages}")

    def close(self) -> None:
        self._sock.close()


def live_config(
    tmp_path: Path, broker: LocalBroker, camera: FifoCamera, stall_s: float, extra: str = ""
) -> Path:
    config = tmp_path / "sensekit.yaml"
    config.write_text(
        f"""site: lab
device: pi-7
mqtt:
  url: {broker.url}
cameras:
  - name: door
    source: {str(camera.path)!r}
    stall_timeout_s: {stall_s}
aggregation:
  window_s: 5
stats:
  interval_s: 1
{extra}"""
    )
    return config


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_camera_that_fails_mid_stream_is_reopened_and_counting_resumes(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, camera: FifoCamera
) -> None:
    http = "  http:\n    enabled: true\n    port: 0\n"
    daemon = DaemonProcess(live_config(tmp_path, broker, camera, stall_s=10, extra=http))
    try:
        subscriber.wait_for(lambda m: m.topic.endswith("/window"), timeout=60)
        subscriber.wait_for(lambda m: m.topic.endswith("/stats"), timeout=30)
        line = daemon.wait_for_line("health and metrics on http://127.0.0.1:")
        base = line.split("on ", 1)[1].removesuffix("/metrics")
        status, metrics = fetch(f"{base}/metrics")
        assert (
            status == 200
            and 'sensekit_camera_up{site="lab",device="pi-7",camera="door"} 1' in metrics
        )
        assert fetch(f"{base}/healthz")[0] == 200
        camera.hang_up()  # the camera is unplugged
        daemon.wait_for_line("stopped delivering frames", timeout=30)
        degraded = subscriber.wait_for(
            lambda m: m.topic.endswith("/stats") and m.payload["degraded"], timeout=30
        ).payload
        assert degraded["cameras"]["door"]["state"] in ("opening", "reopening")
        assert any("camera door" in problem for problem in degraded["degraded"])
        time.sleep(1.5)  # the endpoint serves the latest stats (1 s interval)
        status, body = fetch(f"{base}/healthz")
        assert status == 503 and "camera door" in body
        time.sleep(2.0)
        camera.reconnect()  # ... and plugged in again
        daemon.wait_for_line("camera door: reopened", timeout=90)
        before = len(daemon.window_ids())
        daemon.wait_for_line("window ", count=before + 1, timeout=30)
        healthy = subscriber.wait_for(
            lambda m: (
                m.topic.endswith("/stats")
                and m.payload["cameras"]["door"]["state"] == "ok"
                and m.payload["cameras"]["door"]["reopens"] >= 1
            ),
            timeout=30,
        ).payload
        assert healthy["degraded"] == []
        assert daemon.stop() == 0, daemon.output
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    windows = subscriber.windows()
    assert [w["seq"] for w in windows] == list(range(1, len(windows) + 1))
    assert "Traceback" not in daemon.output


def test_the_watchdog_is_fed_only_while_frames_are_processed(
    tmp_path: Path, broker: LocalBroker, camera: FifoCamera
) -> None:
    """A stall that the stall detector does not catch (its timeout is long) stops the
    watchdog pings, so systemd would restart the service; when frames return, so do pings."""
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    daemon = DaemonProcess(live_config(tmp_path, broker, camera, stall_s=120), env=env)
    try:
        ready = notify.wait_for("READY=1", timeout=60)
        assert "STATUS=counting: door" in ready
        assert sum("WATCHDOG=1" in m for m in notify.collect(3.0)) >= 2
        camera.pause()
        stalled = notify.wait_for("no progress", timeout=15)
        assert "WATCHDOG=1" not in stalled
        assert not any("WATCHDOG=1" in m for m in notify.collect(3.0))
        camera.resume()
        notify.wait_for("WATCHDOG=1", timeout=15)
        assert daemon.stop() == 0, daemon.output
        notify.wait_for("STOPPING=1", timeout=5)
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
        notify.close()


def test_a_stall_caught_by_the_stall_detector_is_recovered_without_a_restart(
    tmp_path: Path, broker: LocalBroker, camera: FifoCamera
) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "8000000"}
    daemon = DaemonProcess(live_config(tmp_path, broker, camera, stall_s=1), env=env)
    try:
        notify.wait_for("READY=1", timeout=60)
        camera.pause()
        daemon.wait_for_line("no frame for 1 s (the stream stalled)", timeout=30)
        pings = sum("WATCHDOG=1" in m for m in notify.collect(6.0))
        assert pings >= 2  # the loop is healthy: it is reopening the camera, not hung
        camera.resume()
        daemon.wait_for_line("camera door: reopened", timeout=90)
        assert daemon.stop() == 0, daemon.output
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
        notify.close()
    assert not any("no progress" in m for _, m in notify.messages)
