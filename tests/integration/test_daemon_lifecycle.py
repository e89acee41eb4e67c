"""`sensekit run` as a process against a real mosquitto: online, windows, stats, SIGTERM,
and the last will when it is killed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sensekit.broker import LocalBroker, free_port
from tests.integration.daemon_process import five_faces_video as make_five_faces_video
from tests.mqtt_client import Subscriber


@pytest.fixture(scope="module")
def five_faces_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s at 10 fps of five people standing still: made here, decoded by OpenCV."""
    return make_five_faces_video(tmp_path_factory.mktemp("media") / "five.mp4", seconds=30)


def start_daemon(tmp_path: Path, broker: LocalBroker, video: Path) -> subprocess.Popen[str]:
    config = tmp_path / "sensekit.yaml"
    config.write_text(
        f"""site: lab
device: pi-7
mqtt:
  url: {broker.url}
  keepalive_s: 5
cameras:
  - name: cam
    source: {str(video)!r}
    replay: realtime
    detector:
      model: full_range
aggregation:
  window_s: 5
  k_threshold: 5
stats:
  interval_s: 1
"""
    )
    return subprocess.Popen(
        [sys.executable, "-m", "sensekit", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sigterm_publishes_the_open_window_then_stopped(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, five_faces_video: Path
) -> None:
    daemon = start_daemon(tmp_path, broker, five_faces_video)
    try:
        subscriber.wait_for(
            lambda m: m.topic == "sensekit/lab/pi-7/status" and m.payload.get("state") == "online"
        )
        subscriber.wait_for(lambda m: m.topic.endswith("/stats"), timeout=30)
        first = subscriber.wait_for(lambda m: m.topic.endswith("/window"), timeout=30)
        assert first.topic == "sensekit/lab/pi-7/zones/cam/window"
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    subscriber.wait_for(
        lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
    )
    windows = subscriber.windows()
    assert windows[-1]["complete"] is False  # the window open at SIGTERM, closed early
    assert [w["seq"] for w in windows] == list(range(1, len(windows) + 1))
    # The five stand still for the whole video: their visits end only at SIGTERM, so the
    # complete windows count no one and the last one releases them (or holds those of an
    # expression shown by fewer than k of them, which the shutdown log line counts).
    complete = [w for w in windows if w["complete"]]
    assert complete and all(w["faces"]["people"] == 0 for w in complete)
    last = windows[-1]["faces"]
    held = re.search(r"not published: (\d+) visits", output)
    assert last["people"] + (int(held.group(1)) if held else 0) == 5, output
    assert sum(last["expressions"].values()) + last["unclassified"] == last["people"]
    assert subscriber.states() == ["online", "stopped"]
    assert "Traceback" not in output


def test_the_last_will_says_offline_when_the_daemon_is_killed(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, five_faces_video: Path
) -> None:
    daemon = start_daemon(tmp_path, broker, five_faces_video)
    try:
        subscriber.wait_for(
            lambda m: m.topic.endswith("/status") and m.payload.get("state") == "online"
        )
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10)
        offline = subscriber.wait_for(
            lambda m: m.topic.endswith("/status") and m.payload.get("state") == "offline",
            timeout=20,
        )
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert offline.payload["device"] == "pi-7"
    # Retained: a dashboard that connects now learns the device is offline.
    late = Subscriber(broker.host, broker.port, "sensekit/lab/pi-7/status")
    try:
        retained = late.wait_for(lambda m: True, timeout=5)
        assert retained.retain and retained.payload["state"] == "offline"
    finally:
        late.close()


def test_windows_counted_while_the_broker_was_down_arrive_when_it_comes_up(
    tmp_path: Path, five_faces_video: Path
) -> None:
    port = free_port()
    absent = LocalBroker(port=port)  # not started yet: the daemon meets a closed port
    daemon = start_daemon(tmp_path, absent, five_faces_video)
    try:
        time.sleep(11)  # at least one 5 s window is counted with no broker
        with LocalBroker(port=port) as broker:
            subscriber = Subscriber(broker.host, broker.port)
            try:
                subscriber.wait_for(
                    lambda m: m.topic.endswith("/status") and m.payload.get("state") == "online",
                    timeout=90,
                )
                subscriber.wait_for(lambda m: m.topic.endswith("/window"), timeout=30)
                daemon.send_signal(signal.SIGTERM)
                output, _ = daemon.communicate(timeout=60)
                subscriber.wait_for(
                    lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
                )
            finally:
                subscriber.close()
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    assert "not reachable" in output
    windows = subscriber.windows()
    assert [w["seq"] for w in windows] == list(range(1, len(windows) + 1))  # none lost
    assert len(windows) >= 3  # two or more from the outage, and the one closed at SIGTERM
