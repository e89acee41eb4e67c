"""The hardened unit file, checked the way systemd itself reads it.

`systemd-analyze security --offline=true` scores the unit file without a running systemd, and
`systemd-analyze verify` loads it as systemd would. Both need the executables the unit names to
exist, so those checks run on a copy whose ExecStart= points at this interpreter; the real
paths are verified inside a Debian root by tests/integration/test_pi_install.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT_DIR = ROOT / "deploy" / "raspberrypi" / "systemd"
DAEMON_UNIT = UNIT_DIR / "sensekit.service"
MAX_EXPOSURE = 2.0
ALLOWED_DEVICES = {"char-video4linux", "char-media", "char-alsa", "char-dma_heap"}

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian's systemd package; install.sh installs it)",
)


def directives(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, repeated keys included, comments skipped."""
    section = ""
    found = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(path: Path, key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in directives(path) if s == section and k == key]


def runnable_copy(unit: Path, tmp_path: Path) -> Path:
    """The unit with its /opt/sensekit executable swapped for one that exists here."""
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/opt/sensekit/bin/sensekit", sys.executable))
    return copy


def exposure(unit: Path) -> float:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


def test_the_daemon_unit_has_the_required_settings() -> None:
    expected = {
        "Type": "notify",
        "Restart": "on-failure",
        "User": "sensekit",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "StateDirectory": "sensekit",
        "CacheDirectory": "sensekit",
        "DevicePolicy": "closed",
        "LimitCORE": "0",
    }
    for key, value in expected.items():
        assert values(DAEMON_UNIT, key) == [value], key
    assert int(values(DAEMON_UNIT, "WatchdogSec")[0]) > 0
    assert set(values(DAEMON_UNIT, "SupplementaryGroups")[0].split()) == {"video", "audio"}
    assert values(DAEMON_UNIT, "ExecStart")[0].startswith("/opt/sensekit/bin/sensekit run ")


def test_device_access_is_limited_to_camera_sound_and_dma_heaps() -> None:
    allowed = values(DAEMON_UNIT, "DeviceAllow")
    classes = {entry.split()[0] for entry in allowed}
    assert classes == ALLOWED_DEVICES
    # No PrivateDevices=: it would hide /dev/video* and /dev/snd from the daemon.
    assert values(DAEMON_UNIT, "PrivateDevices") in ([], ["no"])


def test_no_memory_deny_write_execute_and_the_reason_is_written_down() -> None:
    assert values(DAEMON_UNIT, "MemoryDenyWriteExecute") == []
    text = DAEMON_UNIT.read_text()
    comment = text[text.index("# No MemoryDenyWriteExecute=") :]
    assert "numba" in comment.split("\n\n")[0]


def test_security_exposure_is_at_most_2(tmp_path: Path) -> None:
    score = exposure(runnable_copy(DAEMON_UNIT, tmp_path))
    assert score <= MAX_EXPOSURE, f"exposure {score} > {MAX_EXPOSURE}"


def test_the_exposure_check_fails_for_an_unhardened_unit(tmp_path: Path) -> None:
    """Negative control: the same unit with its isolation section removed scores worse than
    the limit, so the check above can fail."""
    text = runnable_copy(DAEMON_UNIT, tmp_path).read_text()
    start, end = text.index("# Kernel and process isolation."), text.index("# No MemoryDeny")
    weak = tmp_path / "weak" / "sensekit.service"
    weak.parent.mkdir()
    weak.write_text(text[:start] + text[end:])
    assert exposure(weak) > MAX_EXPOSURE


@pytest.mark.parametrize("name", ["sensekit.service", "sensekit-provision.service"])
def test_systemd_analyze_verify_is_clean(name: str, tmp_path: Path) -> None:
    unit = UNIT_DIR / name
    assert unit.is_file(), f"{unit} is missing"
    result = subprocess.run(
        ["systemd-analyze", "verify", str(runnable_copy(unit, tmp_path))],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_daemon_is_skipped_until_provisioned() -> None:
    """A fresh image has no config: the unit is skipped (no restart loop, no failed state)."""
    assert values(DAEMON_UNIT, "ConditionPathExists", "Unit") == ["/etc/sensekit/sensekit.yaml"]
    assert "sensekit-provision.service" in values(DAEMON_UNIT, "After", "Unit")[0]
