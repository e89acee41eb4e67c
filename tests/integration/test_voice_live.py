"""`sensekit run` with a microphone and no sound card: the real sounddevice/PortAudio path fed
by an ALSA file-plugin virtual microphone (tests/virtual_mic.py), publishing to a real
mosquitto. The speech placed in the fed audio must come out as voice windows; nothing else.
"""

from __future__ import annotations

import ctypes.util
import math
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sensekit.broker import LocalBroker
from tests.mqtt_client import Subscriber
from tests.virtual_mic import DEVICE, virtual_microphone
from tools.media.speech import SENTENCES, concat, fan_noise, have_espeak, room_tone, synthesise

RATE = 16000

pytestmark = [
    pytest.mark.skipif(
        ctypes.util.find_library("portaudio") is None,
        reason="needs the system's PortAudio (apt-get install libportaudio2)",
    ),
    pytest.mark.skipif(not have_espeak(), reason="needs espeak-ng (run the install command)"),
]


def trimmed(text: str, **voice: int) -> np.ndarray:
    speech = synthesise(text, **voice)
    loud = np.flatnonzero(np.abs(speech) > 1e-3)
    return speech[loud[0] : loud[-1] + 1] * 0.5


def test_live_microphone_speech_becomes_voice_windows(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber
) -> None:
    first = trimmed(SENTENCES[2], pitch=80, speed=190, amplitude=180)
    second = trimmed(SENTENCES[3], pitch=30, speed=130, amplitude=80)
    # Room tone, speech, an air vent (no speech), speech, room tone.
    content = concat(room_tone(1.0), first, fan_noise(4.0, level_db=-40.0), second, room_tone(4.0))
    speech_s = [len(first) / RATE, len(second) / RATE]
    low = sum(max(0, math.floor(s) - 2) for s in speech_s)
    high = sum(math.ceil(s) + 1 for s in speech_s)
    config = tmp_path / "kiosk.yaml"
    config.write_text(
        f"""site: lab
device: kiosk-3
mqtt:
  url: {broker.url}
microphones:
  - name: counter
    source: {DEVICE}
    zone: till
voice:
  k_windows: 3
  normalisation:
    mode: learn
    min_windows: 50
aggregation:
  window_s: 5
  k_threshold: 3
stats:
  interval_s: 1
state_dir: {tmp_path / "state"}
"""
    )
    pcm = np.round(np.clip(content, -1, 1) * 32767).astype(np.int16)
    with virtual_microphone(tmp_path, pcm) as mic:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "sensekit", "run", "--config", str(config)],
            env=mic.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            # Everything fed (plus the analysis latency) has been heard once the windows
            # account for the content's length.
            subscriber.wait_for(
                lambda m: (
                    sum(w["voice"]["audio_s"] for w in subscriber.windows())
                    >= len(content) / RATE + 4.0
                ),
                timeout=90,
            )
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert daemon.returncode == 0, output
    subscriber.wait_for(lambda m: m.payload.get("state") == "stopped")
    windows = subscriber.windows()
    assert all(w["faces"] is None and w["voice"]["microphones"] == ["counter"] for w in windows)
    stats = [m.payload for m in subscriber.messages if m.topic.endswith("/stats")]
    running = [s["microphones"]["counter"] for s in stats[:-1]]
    assert running and all(m["state"] == "ok" and m["overflows"] == 0 for m in running)
    final = stats[-1]["microphones"]["counter"]  # published at shutdown
    found = final["speech_windows"]
    assert final["state"] == "ended" and low <= found <= high, (found, low, high, output)
    released = sum(w["voice"]["windows"] for w in windows)
    for window in windows:
        voice = window["voice"]
        assert sum(voice["arousal"].values()) == sum(voice["emotions"].values()) == voice["windows"]
        for count in [*voice["arousal"].values(), *voice["emotions"].values()]:
            assert count == 0 or count >= voice["k_windows"]
    held = re.search(r"not published: \d+ visits and (\d+) speech windows", output)
    assert released + (int(held.group(1)) if held else 0) == found, output
    assert "speech windows released" in output  # the operator's log line for each window
    # Fewer speech windows than min_windows: nothing learned about the site was written.
    assert not (tmp_path / "state" / "voice-normalisation.json").exists()


def test_a_missing_microphone_leaves_the_camera_running(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber
) -> None:
    import cv2

    from tools.media.scene import scene_with_faces

    video = tmp_path / "door.mp4"
    image, _ = scene_with_faces(3, 150, seed=5)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for _ in range(150):
        writer.write(image)
    writer.release()
    config = tmp_path / "door.yaml"
    config.write_text(
        f"""site: lab
device: door-1
mqtt:
  url: {broker.url}
cameras:
  - name: door
    source: {str(video)!r}
    replay: realtime
microphones:
  - name: counter
    source: no-such-microphone
    zone: door
aggregation:
  window_s: 5
  k_threshold: 3
stats:
  interval_s: 1
state_dir: {tmp_path / "state"}
"""
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sensekit", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # A complete window: the first one may hold only a few frames of a loaded machine.
        window = subscriber.wait_for(
            lambda m: m.topic.endswith("/window") and m.payload["complete"], timeout=60
        )
        stats = subscriber.wait_for(
            lambda m: m.topic.endswith("/stats") and "microphones" in m.payload, timeout=30
        )
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    # The camera's windows go out without waiting for the absent microphone.
    assert window.payload["faces"]["frames"] > 0 and window.payload["voice"] is None
    mic = stats.payload["microphones"]["counter"]
    assert mic["state"] in ("opening", "reopening") and "no-such-microphone" in mic["error"]
    assert any("microphone counter" in problem for problem in stats.payload["degraded"])
    assert "microphone counter:" in output and "the other sources keep counting" in output
    assert "Traceback" not in output
