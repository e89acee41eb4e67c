"""The bundled demo video and its sound through the whole pipeline to a real mosquitto.

The video's ground truth (media/demo/entrance.json) says how many people are in each zone in
each 20 s window, and the sound's (entrance_audio.json) how much speech the "inside"
microphone hears in each; the windows a subscriber receives must say the same.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sensekit.app import Daemon
from sensekit.broker import LocalBroker
from sensekit.config import load_config
from sensekit.demo import demo_config_path
from sensekit.publish.mqtt import Identity, MqttPublisher
from sensekit.publish.spool import SPOOL_FILE, Spool, SpoolLimits
from tests.conftest import DEMO_AUDIO_TRUTH, DEMO_TRUTH, DEMO_VIDEO
from tests.mqtt_client import Subscriber

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: a window boundary for 20 s windows


def iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(START + seconds, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@pytest.fixture(scope="module")
def truth() -> dict:
    assert DEMO_VIDEO.is_file() and DEMO_TRUTH.is_file(), "the demo media is part of the repo"
    return json.loads(DEMO_TRUTH.read_text())


@pytest.fixture(scope="module")
def sound_truth() -> dict:
    assert DEMO_AUDIO_TRUTH.is_file(), "the demo sound's ground truth is part of the repo"
    return json.loads(DEMO_AUDIO_TRUTH.read_text())


def run_pipeline(broker: LocalBroker, spool_dir: Path) -> Daemon:
    config = load_config(demo_config_path())
    config = config.model_copy(update={"mqtt": config.mqtt.model_copy(update={"url": broker.url})})
    spool = Spool(spool_dir / SPOOL_FILE, SpoolLimits())
    publisher = MqttPublisher(config.mqtt, Identity(config.site, config.device), spool)
    daemon = Daemon(config, publisher, replay_start=START)
    publisher.start()
    daemon.start_sources()
    assert daemon.run(threading.Event()) == 0  # every window acknowledged
    spool.close()
    return daemon


def truth_visits(truth: dict) -> dict[str, int]:
    """Visits per zone in the ground truth: one per appearance per zone it stood in."""
    visits: dict[str, int] = {"outside": 0, "inside": 0}
    for appearance in truth["appearances"]:
        for zone in appearance["zones"]:
            visits[zone] += 1
    return visits


def test_every_visit_is_released_or_held_and_no_cell_is_below_k(
    broker: LocalBroker, subscriber: Subscriber, truth: dict, tmp_path: Path
) -> None:
    """The video's 14 people make 7 visits outside and 10 inside (three walk through the
    door). Each is published once or still held below k at the end; nothing else."""
    daemon = run_pipeline(broker, tmp_path)
    subscriber.wait_for(
        lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
    )
    received = {(w["zone"], w["window_start"]): w for w in subscriber.windows()}
    expected = {(e["zone"], iso(e["start_s"])): e for e in truth["expected_windows"]}
    assert set(received) == set(expected)
    for key, exp in expected.items():
        window = received[key]
        faces = window["faces"]
        assert window["window_end"] == iso(exp["end_s"])
        assert window["complete"] is True
        cells = [*faces["expressions"].values(), faces["unclassified"]]
        assert all(c == 0 or c >= window["k_threshold"] for c in cells), window
        assert sum(cells) == faces["people"]
    assert daemon.windows_published == len(expected)
    for zone, visits in truth_visits(truth).items():
        published = sum(w["faces"]["people"] for (z, _), w in received.items() if z == zone)
        assert published + daemon.gate.held(zone).visits == visits, zone
    # The demo shows both: windows with a release and windows whose visits were held.
    people = [w["faces"]["people"] for w in received.values()]
    assert any(people) and daemon.gate.held().visits + people.count(0) > 0


def test_voice_is_released_only_beside_k_people_and_none_is_lost(
    broker: LocalBroker, subscriber: Subscriber, sound_truth: dict, tmp_path: Path
) -> None:
    """Speech is found where it was placed (not in the clicks or the air-conditioning) and
    joins the camera's "inside" windows; what is published is whole cells of k_windows,
    beside k people, and published + held = everything heard."""
    daemon = run_pipeline(broker, tmp_path)
    subscriber.wait_for(
        lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
    )
    received = {(w["zone"], w["window_start"]): w for w in subscriber.windows()}
    (mic,) = daemon.microphones
    low = sum(e["min_windows"] for e in sound_truth["expected_voice"])
    high = sum(e["max_windows"] for e in sound_truth["expected_voice"])
    assert low <= mic.speech_windows <= high
    released = 0
    for exp in sound_truth["expected_voice"]:
        window = received[(exp["zone"], iso(exp["start_s"]))]
        voice = window["voice"]
        assert voice is not None and voice["microphones"] == ["counter"], window
        assert voice["audio_s"] == pytest.approx(20.0, abs=0.05)
        assert sum(voice["arousal"].values()) == sum(voice["emotions"].values())
        assert voice["windows"] == sum(voice["arousal"].values())
        for count in [*voice["arousal"].values(), *voice["emotions"].values()]:
            assert count == 0 or count >= voice["k_windows"]
        if voice["windows"]:
            assert window["faces"]["people"] >= window["k_threshold"]
        released += voice["windows"]
    assert released + daemon.gate.held("inside").speech_windows == mic.speech_windows
    # The camera-only zone carries no voice part.
    assert all(w["voice"] is None for (zone, _), w in received.items() if zone == "outside")


def test_the_message_contract(
    broker: LocalBroker, subscriber: Subscriber, truth: dict, tmp_path: Path
) -> None:
    run_pipeline(broker, tmp_path)
    subscriber.wait_for(
        lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
    )
    base = "sensekit/demo-store/demo-entrance"
    topics = {m.topic for m in subscriber.messages}
    assert topics >= {
        f"{base}/status",
        f"{base}/zones/outside/window",
        f"{base}/zones/inside/window",
    }
    assert subscriber.states() == ["online", "stopped"]
    assert all(m.qos == 1 for m in subscriber.messages if not m.topic.endswith("/stats"))
    windows = subscriber.windows()
    assert [w["seq"] for w in windows] == list(range(1, len(windows) + 1))
    ids = [w["window_id"] for w in windows]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "demo-store/demo-entrance/outside/20260101T000000Z/20s"
    # Retained: a dashboard connecting afterwards gets the last window of each zone at once.
    late = Subscriber(broker.host, broker.port, f"{base}/zones/+/window")
    try:
        outside = late.wait_for(lambda m: m.topic.endswith("outside/window"), timeout=5)
        assert outside.retain and outside.payload["window_start"] == iso(40)
    finally:
        late.close()


def test_the_same_replay_gives_the_same_windows(
    broker: LocalBroker, subscriber: Subscriber, tmp_path: Path
) -> None:
    """Timestamps come from the media, not the clock: two runs publish identical windows."""
    run_pipeline(broker, tmp_path)
    run_pipeline(broker, tmp_path)
    # Delivery to the subscriber is asynchronous: wait for the second run's `stopped`.
    subscriber.wait_for(lambda m: subscriber.states().count("stopped") == 2)
    windows = subscriber.windows()
    assert len(windows) == 12
    half = len(windows) // 2
    strip = lambda w: {k: v for k, v in w.items() if k != "seq"}  # noqa: E731
    assert [strip(w) for w in windows[:half]] == [strip(w) for w in windows[half:]]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sensekit_demo_needs_no_camera_and_no_broker() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sensekit", "demo"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "started a private mosquitto on mqtt://127.0.0.1:" in result.stderr
    port = int(result.stderr.split("mqtt://127.0.0.1:")[1].split()[0])
    assert not port_open(port), "the private broker must be stopped after the demo"
    lines = result.stdout.splitlines()
    window_topics = [line for line in lines if "/zones/" in line and line.endswith("[qos=1]")]
    assert len(window_topics) == 6
    payloads = [json.loads(line) for line in lines if line.startswith("  {")]
    states = [p["state"] for p in payloads if p["schema"] == "sensekit.status/1"]
    assert states == ["online", "stopped"]
    assert any(p["schema"] == "sensekit.stats/3" for p in payloads)  # the final health message
    assert "Traceback" not in result.stderr


def test_sensekit_demo_with_a_given_broker(broker: LocalBroker, subscriber: Subscriber) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sensekit", "demo", "--broker", broker.url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "private mosquitto" not in result.stderr
    subscriber.wait_for(
        lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
    )
    assert len(subscriber.windows()) == 6
