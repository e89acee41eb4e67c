"""Shared fixtures: a real mosquitto per test on a free loopback port, and paths."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensekit.broker import LocalBroker
from tests.mqtt_client import Subscriber

ROOT = Path(__file__).resolve().parent.parent
DEMO_VIDEO = ROOT / "media" / "demo" / "entrance.mp4"
DEMO_TRUTH = ROOT / "media" / "demo" / "entrance.json"
DEMO_AUDIO = ROOT / "media" / "demo" / "entrance.flac"
DEMO_AUDIO_TRUTH = ROOT / "media" / "demo" / "entrance_audio.json"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and each daemon it starts) gets its own state directory, as systemd's
    StateDirectory= would give it: no spool or learned state leaks between tests, or into the
    developer's ~/.local/state."""
    state = tmp_path / "state"
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    return state


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.fail("mosquitto is not installed: run the README's install command (.ci/run does)")
    with LocalBroker() as running:
        yield running


@pytest.fixture
def subscriber(broker: LocalBroker) -> Iterator[Subscriber]:
    sub = Subscriber(broker.host, broker.port)
    yield sub
    sub.close()


def password_broker(tmp_path: Path, user: str, password: str) -> LocalBroker:
    """A mosquitto that only accepts `user`/`password`."""
    password_file = tmp_path / "passwd"
    password_file.write_text("")
    subprocess.run(
        ["mosquitto_passwd", "-b", str(password_file), user, password],
        check=True,
        capture_output=True,
    )
    password_file.chmod(0o644)
    return LocalBroker(password_file=password_file)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Hardware tests need a real camera or microphone: they run only with SENSEKIT_HARDWARE=1."""
    if os.environ.get("SENSEKIT_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(
        reason="needs a real camera or microphone; set SENSEKIT_HARDWARE=1 on a device"
    )
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
