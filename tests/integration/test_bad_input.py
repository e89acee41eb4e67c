"""Every bad input ends in a clear message and a documented exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensekit.broker import LocalBroker


def write_video(path: Path, frames: int = 20) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for i in range(frames):
        writer.write(np.full((240, 320, 3), (i * 10) % 255, np.uint8))
    writer.release()
    return path


def config_file(tmp_path: Path, broker_url: str, source: str, extra: str = "") -> Path:
    path = tmp_path / "sensekit.yaml"
    path.write_text(
        f"site: test\ndevice: dev1\nmqtt:\n  url: {broker_url}\n  connect_timeout_s: 5\n"
        f"cameras:\n  - name: cam\n    source: {source!r}\n    replay: fast\n{extra}"
    )
    return path


def sensekit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sensekit", *args], capture_output=True, text=True, timeout=timeout
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert message in output, output
    assert "Traceback" not in output, output


def test_missing_model_file(tmp_path: Path, broker: LocalBroker) -> None:
    video = write_video(tmp_path / "v.mp4")
    extra = "expression:\n  model_path: /nonexistent/expression.tflite\n"
    config = config_file(tmp_path, broker.url, str(video), extra)
    result = sensekit("run", "--config", str(config))
    assert_clean_failure(result, 3, "model file not found: /nonexistent/expression.tflite")


def test_corrupt_model_file(tmp_path: Path, broker: LocalBroker) -> None:
    video = write_video(tmp_path / "v.mp4")
    corrupt = tmp_path / "detector.tflite"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    extra = f"    detector:\n      model_path: {corrupt}\n"
    config = config_file(tmp_path, broker.url, str(video), extra)
    result = sensekit("run", "--config", str(config))
    assert_clean_failure(result, 3, "is corrupt or not a TFLite model")


def test_unreadable_video(tmp_path: Path, broker: LocalBroker) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    result = sensekit("run", "--config", str(config_file(tmp_path, broker.url, str(fake))))
    assert_clean_failure(result, 4, "camera cam: cannot open")


def test_missing_video(tmp_path: Path, broker: LocalBroker) -> None:
    missing = tmp_path / "gone.mp4"
    result = sensekit("run", "--config", str(config_file(tmp_path, broker.url, str(missing))))
    assert_clean_failure(result, 4, f"media file not found: {missing}")


def test_truncated_video(tmp_path: Path, broker: LocalBroker) -> None:
    """Half a file: whatever part decodes is processed, or the file is refused; never a crash."""
    whole = write_video(tmp_path / "whole.mp4", frames=60).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    result = sensekit("run", "--config", str(config_file(tmp_path, broker.url, str(cut))))
    assert_clean_failure(result, 4, "camera cam: cannot open")


def test_camera_index_that_does_not_exist(tmp_path: Path, broker: LocalBroker) -> None:
    result = sensekit("run", "--config", str(config_file(tmp_path, broker.url, "57")))
    assert_clean_failure(result, 4, "camera cam: cannot open 57")


def test_missing_password_file(tmp_path: Path, broker: LocalBroker) -> None:
    extra = "  username: kiosk\n  password_file: /nonexistent/secret\n"
    config = tmp_path / "sensekit.yaml"
    config.write_text(f"site: test\nmqtt:\n  url: {broker.url}\n{extra}cameras:\n  - source: 0\n")
    result = sensekit("run", "--config", str(config))
    assert_clean_failure(result, 5, "cannot read mqtt.password_file /nonexistent/secret")


def test_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("site: test\ncameras:\n  - source: 0\n    zoom: 2\n")
    result = sensekit("run", "--config", str(config))
    assert_clean_failure(result, 2, f"{config}:4: cameras.0.zoom: unknown key")


@pytest.mark.parametrize("command", ["run", "demo", "check-config", "bench"])
def test_every_subcommand_explains_itself(command: str) -> None:
    result = sensekit(command, "--help")
    assert result.returncode == 0 and len(result.stdout) > 200


def test_version() -> None:
    result = sensekit("--version")
    assert result.returncode == 0 and result.stdout.startswith("sensekit ")


def test_an_unusable_state_directory(tmp_path: Path, broker: LocalBroker) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    video = write_video(tmp_path / "v.mp4")
    extra = f"state_dir: {blocker / 'state'}\n"
    result = sensekit("run", "--config", str(config_file(tmp_path, broker.url, str(video), extra)))
    assert_clean_failure(result, 6, "cannot create the state directory")
