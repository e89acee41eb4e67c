"""The provisioning deploy files: the systemd unit, the cloud-init user-data, the command line.

The unit is checked by systemd's own verifier; the user-data by cloud-init's own JSON schema
(taken from Debian's cloud-init package, unpacked but not installed: see install.sh), and by
doing what cloud-init would do with it and provisioning the result with the real code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sensekit.config import load_config
from sensekit.provision import DONE_REPORT, FAILED_REPORT, provision
from sensekit.publish.mqtt import read_password

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "raspberrypi"
UNIT = DEPLOY / "systemd" / "sensekit-provision.service"
USER_DATA = DEPLOY / "cloud-init" / "user-data.example"
SCHEMA_NAME = "schema-cloud-config-v1.json"
SCHEMA_PLACES = [
    os.environ.get("SENSEKIT_CLOUD_INIT_SCHEMA", ""),
    str(ROOT / "build" / "cloud-init" / SCHEMA_NAME),
    f"/usr/lib/python3/dist-packages/cloudinit/config/schemas/{SCHEMA_NAME}",
]
CLOUD_INIT_DIR = "/run/sensekit-provision"
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="installing gives files to root and nobody: run as root (CI does)"
)


def unit_settings(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in order; systemd allows a key more than once."""
    settings, section = [], ""
    for line in path.read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            settings.append((section, key, value))
    return settings


def values(path: Path, key: str) -> list[str]:
    return [value for _, k, value in unit_settings(path) if k == key]


def sensekit_executable() -> str:
    beside = Path(sys.executable).parent / "sensekit"
    found = str(beside) if beside.exists() else shutil.which("sensekit")
    assert found, "the sensekit command is not installed (pip install -e .)"
    return found


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # verify insists that ExecStart= exists: point it at this checkout's command.
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/sensekit/bin/sensekit", sensekit_executable()))
    run = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert (run.returncode, run.stderr) == (0, ""), run.stderr


def test_the_unit_runs_before_the_daemon_and_only_with_a_bundle() -> None:
    assert values(UNIT, "Type") == ["oneshot"]
    assert "sensekit.service" in " ".join(values(UNIT, "Before")).split()
    after = " ".join(values(UNIT, "After")).split()
    assert {"cloud-init.service", "cloud-init-network.service", "local-fs.target"} <= set(after)
    assert values(UNIT, "StandardError") == ["journal+console"]
    boots = [re.findall(r"--boot (\S+)", line)[0] for line in values(UNIT, "ExecStart")]
    assert boots == ["/boot/firmware/sensekit", CLOUD_INIT_DIR]
    assert values(UNIT, "ConditionPathExists") == [f"|{boot}/sensekit.yaml" for boot in boots]
    assert all(" provision " in line for line in values(UNIT, "ExecStart"))


def cloud_init_schema() -> dict:
    for place in SCHEMA_PLACES:
        if place and Path(place).is_file() and Path(place).stat().st_size > 0:
            return json.loads(Path(place).read_text())
    pytest.skip(
        "cloud-init's schema is not here: install.sh unpacks it from Debian's cloud-init "
        f"package into build/cloud-init/{SCHEMA_NAME} (or set SENSEKIT_CLOUD_INIT_SCHEMA)"
    )


def test_the_user_data_is_valid_cloud_config() -> None:
    import jsonschema

    text = USER_DATA.read_text()
    assert text.startswith("#cloud-config\n")  # without it cloud-init ignores the file
    data = yaml.safe_load(text)
    schema = cloud_init_schema()
    errors = [error.message for error in jsonschema.Draft4Validator(schema).iter_errors(data)]
    assert errors == []
    # The schema lets unknown top-level keys through; cloud-init only warns. A typo must fail.
    known = {key for part in schema["$defs"].values() for key in part.get("properties", {})}
    assert set(data) <= known, set(data) - known


def cloud_init_write_files(run_dir: Path) -> None:
    """What cloud-init does with the example: bootcmd, then write_files, into `run_dir`."""
    data = yaml.safe_load(USER_DATA.read_text())
    assert data["bootcmd"] == [
        ["install", "-d", "-o", "root", "-g", "root", "-m", "0700", CLOUD_INIT_DIR]
    ]
    run_dir.mkdir(mode=0o700)
    for entry in data["write_files"]:
        path = Path(entry["path"])
        assert path.parent == Path(CLOUD_INIT_DIR) and entry["permissions"] == "0600"
        target = run_dir / path.name
        target.write_text(entry["content"])
        target.chmod(0o600)


def test_the_user_data_bundle_refuses_its_placeholders(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cloud_init_write_files(run_dir)
    result = provision(run_dir, tmp_path / "etc", "nobody", check_only=True)
    assert [problem.split(": ", 3)[1:3] for problem in result.problems] == [
        ["mqtt.password_file", "mqtt-password"],
        ["mqtt.tls.ca_file", "ca.crt"],
    ]
    assert "placeholder" in result.problems[0]


@needs_root
def test_the_user_data_bundle_installs_with_the_same_code(tmp_path: Path) -> None:
    run_dir, card, etc = tmp_path / "run", tmp_path / "card", tmp_path / "etc"
    cloud_init_write_files(run_dir)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            *ec,
            "-days",
            "2",
            "-subj",
            "/CN=ca",
            "-keyout",
            str(tmp_path / "ca.key"),
            "-out",
            str(run_dir / "ca.crt"),
        ],
        check=True,
        capture_output=True,
    )
    (run_dir / "mqtt-password").write_text("from-cloud-init\n")
    result = provision(run_dir, etc, "nobody", report_dir=card)
    assert result.status == "provisioned", result.problems
    config = load_config(etc / "sensekit.yaml")
    assert config.device == "entrance-1" and read_password(config.mqtt) == "from-cloud-init"
    assert (card / DONE_REPORT).exists() and not (run_dir / "mqtt-password").exists()


def test_the_command_line(tmp_path: Path) -> None:
    """`sensekit provision` as the unit runs it (wired into sensekit/cli.py)."""
    boot = tmp_path / "boot"
    shutil.copytree(DEPLOY / "boot" / "sensekit", boot)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sensekit", "provision", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )

    nothing = run("--boot", str(tmp_path / "empty"), "--etc", str(tmp_path / "etc"), "--check")
    assert nothing.returncode == 0, nothing.stderr
    bad = run("--boot", str(boot), "--check")
    assert bad.returncode == 2
    assert f"{boot}/sensekit.yaml:14: mqtt.password_file: mqtt-password: no such file" in bad.stderr
    assert not (boot / FAILED_REPORT).exists()  # --check writes nothing
