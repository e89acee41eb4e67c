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


def test_people_per_zone_and_window_match_the_known_content(
    broker: LocalBroker, subscriber: Subscriber, truth: dict, tmp_path: Path
) -> None:
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
        assert faces["people"] == exp["people"], (key, window, exp)
        assert window["window_end"] == iso(exp["end_s"])
        assert window["complete"] is True
        assert faces["suppressed"] == (exp["people"] < 5)
        if not faces["suppressed"]:
            classified = sum(faces["expressions"].values())
            assert classified + faces["unclassified"] == faces["people"]
    assert daemon.windows_published == len(expected)
    # Some windows show a breakdown and some are withheld: the demo shows both.
    assert {w["faces"]["suppressed"] for w in received.values()} == {True, False}


def test_voice_per_window_matches_the_known_sound(
    broker: LocalBroker, subscriber: Subscriber, truth: dict, sound_truth: dict, tmp_path: Path
) -> None:
    """Speech is found where it was placed (not in the clicks or the air-conditioning), joins
    the camera's "inside" windows, and its breakdown appears only above both thresholds."""
    run_pipeline(broker, tmp_path)
    subscriber.wait_for(
        lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
    )
    received = {(w["zone"], w["window_start"]): w for w in subscriber.windows()}
    people = {(e["zone"], iso(e["start_s"])): e["people"] for e in truth["expected_windows"]}
    for exp in sound_truth["expected_voice"]:
        key = (exp["zone"], iso(exp["start_s"]))
        window = received[key]
        voice = window["voice"]
        assert voice is not None and voice["microphones"] == ["counter"], window
        assert voice["audio_s"] == pytest.approx(20.0, abs=0.05)
        assert exp["min_windows"] <= voice["windows"] <= exp["max_windows"], (exp, voice)
        shown = voice["windows"] >= voice["k_windows"] and people[key] >= window["k_threshold"]
        assert voice["suppressed"] is not shown, (exp, voice)
        if shown:
            assert sum(voice["arousal"].values()) == voice["windows"]
            assert sum(voice["emotions"].values()) == voice["windows"]
    # The camera-only zone carries no voice part.
    assert all(w["voice"] is None for (zone, _), w in received.items() if zone == "outside")
    assert {
        received[(e["zone"], iso(e["start_s"]))]["voice"]["suppressed"]
        for e in sound_truth["expected_voice"]
    } == {True, False}


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
    assert any(p["schema"] == "sensekit.stats/2" for p in payloads)  # the final health message
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
