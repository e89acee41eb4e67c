"""First-boot provisioning against a temporary boot-partition folder and /etc folder.

Real files, real certificates made by openssl, real ownership changes: the installing tests run
as root (CI does) and give the secrets to `nobody`, a user every Debian system has.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sensekit.config import load_config
from sensekit.provision import (
    APPLIED_NAME,
    DONE_REPORT,
    FAILED_REPORT,
    add_provision_parser,
    provision,
)
from sensekit.publish.mqtt import read_password

ROOT = Path(__file__).resolve().parents[2]
USER = "nobody"
UID = pwd.getpwnam(USER).pw_uid
GID = pwd.getpwnam(USER).pw_gid
GROUP = grp.getgrgid(GID).gr_name
PASSWORD = "s3cret-Password"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="installing gives files to root and to another user: run the tests as root (CI does)",
)

GOOD = """\
site: shop-1
device: kiosk-1
mqtt:
  url: mqtts://broker.example.internal:8883
  username: kiosk-1
  password_file: mqtt-password
  tls:
    ca_file: ca.crt
    cert_file: client.crt
    key_file: client.key
cameras:
  - name: front
    source: 0
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def new_key_and_cert(folder: Path, name: str, ca: str | None = None) -> None:
    """An EC key and a certificate for it, self-signed or signed by the CA `ca`."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if ca is None:
        openssl(
            "req",
            "-x509",
            *ec,
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.crt",
            cwd=folder,
        )
        return
    openssl(
        "req",
        *ec,
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        cwd=folder,
    )
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.crt",
        cwd=folder,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    new_key_and_cert(folder, "ca")
    new_key_and_cert(folder, "client", ca="ca")
    new_key_and_cert(folder, "other", ca="ca")
    openssl(
        "pkey",
        "-in",
        "client.key",
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        "encrypted.key",
        cwd=folder,
    )
    return folder


def write_bundle(folder: Path, pki: Path, config: str = GOOD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sensekit.yaml").write_text(config)
    (folder / "mqtt-password").write_text(PASSWORD + "\n")
    shutil.copy(pki / "ca.crt", folder / "ca.crt")
    shutil.copy(pki / "client.crt", folder / "client.crt")
    shutil.copy(pki / "client.key", folder / "client.key")
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, bytes | str]]:
    """Every entry under `folder` with its mode, owner, group and content or link target."""
    entries: dict[str, tuple[int, int, int, bytes | str]] = {}
    if not folder.exists():
        return entries
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            content: bytes | str = os.readlink(path)
        elif path.is_file():
            content = path.read_bytes()
        else:
            content = "dir"
        entries[str(path.relative_to(folder))] = (info.st_mode, info.st_uid, info.st_gid, content)
    return entries


def mode_owner(path: Path) -> tuple[str, int, int]:
    info = path.stat()
    return oct(stat.S_IMODE(info.st_mode)), info.st_uid, info.st_gid


@needs_root
def test_a_good_bundle_is_installed_with_owners_and_modes(tmp_path: Path, pki: Path) -> None:
    boot, etc = write_bundle(tmp_path / "boot", pki), tmp_path / "etc"
    result = provision(boot, etc, USER)

    assert (result.status, result.exit_code, result.problems) == ("provisioned", 0, [])
    assert mode_owner(etc) == ("0o750", 0, GID)
    assert mode_owner(etc / "current") == ("0o750", 0, GID)
    assert mode_owner(etc / "sensekit.yaml") == ("0o640", 0, GID)
    assert mode_owner(etc / "current" / "mqtt-password") == ("0o600", UID, GID)
    assert mode_owner(etc / "current" / "client.key") == ("0o600", UID, GID)
    assert mode_owner(etc / "current" / "ca.crt") == ("0o644", 0, 0)
    assert mode_owner(etc / "current" / "client.crt") == ("0o644", 0, 0)
    assert (etc / "sensekit.yaml").read_text() == GOOD

    # The daemon's own loader finds every file next to the installed config.
    config = load_config(etc / "sensekit.yaml")
    assert read_password(config.mqtt) == PASSWORD
    assert (
        config.mqtt.tls.key_file is not None
        and config.mqtt.tls.key_file.read_bytes() == (pki / "client.key").read_bytes()
    )

    # The card: secrets gone, public files kept, the config marked applied, a report.
    assert sorted(p.name for p in boot.iterdir()) == sorted(
        ["ca.crt", "client.crt", APPLIED_NAME, DONE_REPORT]
    )
    assert (boot / APPLIED_NAME).read_text() == GOOD
    report = (boot / DONE_REPORT).read_text()
    assert "kiosk-1" in report and "mqtt-password" in report and PASSWORD not in report
    assert "does not erase" in report
    assert sorted(result.removed) == ["client.key", "mqtt-password"]


@needs_root
def test_a_password_saved_on_windows_loses_its_bom_and_crlf(tmp_path: Path, pki: Path) -> None:
    boot, etc = write_bundle(tmp_path / "boot", pki), tmp_path / "etc"
    (boot / "mqtt-password").write_bytes(b"\xef\xbb\xbf" + PASSWORD.encode() + b"\r\n")
    assert provision(boot, etc, USER).status == "provisioned"
    assert (etc / "current" / "mqtt-password").read_bytes() == PASSWORD.encode() + b"\n"


@needs_root
def test_without_a_bundle_nothing_happens(tmp_path: Path, pki: Path) -> None:
    boot, etc = tmp_path / "boot", tmp_path / "etc"
    assert provision(boot, etc, USER).status == "nothing"  # no folder at all
    boot.mkdir()
    assert provision(boot, etc, USER).status == "nothing"  # an empty folder
    assert not etc.exists()

    write_bundle(boot, pki)
    assert provision(boot, etc, USER).status == "provisioned"
    before_etc, before_boot = snapshot(etc), snapshot(boot)
    again = provision(boot, etc, USER)  # the next boot: sensekit.yaml is now .applied
    assert (again.status, again.exit_code) == ("nothing", 0)
    assert snapshot(etc) == before_etc and snapshot(boot) == before_boot


@needs_root
def test_a_new_bundle_replaces_the_old_one_which_stays_as_previous(
    tmp_path: Path, pki: Path
) -> None:
    etc = tmp_path / "etc"
    write_bundle(tmp_path / "boot1", pki)
    assert provision(tmp_path / "boot1", etc, USER).status == "provisioned"
    first = os.readlink(etc / "current")

    boot2 = write_bundle(tmp_path / "boot2", pki, GOOD.replace("kiosk-1", "kiosk-2"))
    (boot2 / "mqtt-password").write_text("second-password\n")
    assert provision(boot2, etc, USER).status == "provisioned"

    assert load_config(etc / "sensekit.yaml").device == "kiosk-2"
    assert read_password(load_config(etc / "sensekit.yaml").mqtt) == "second-password"
    # The previous config is a complete rollback: its own password file beside it.
    previous = load_config(etc / "sensekit.yaml.previous")
    assert previous.device == "kiosk-1" and read_password(previous.mqtt) == PASSWORD
    assert os.readlink(etc / "previous") == first

    boot3 = write_bundle(tmp_path / "boot3", pki, GOOD.replace("kiosk-1", "kiosk-3"))
    assert provision(boot3, etc, USER).status == "provisioned"
    assert load_config(etc / "sensekit.yaml.previous").device == "kiosk-2"
    assert len(list((etc / "releases").iterdir())) == 2  # the oldest one is deleted


@needs_root
def test_a_config_written_by_hand_becomes_the_previous_one(tmp_path: Path, pki: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "sensekit.yaml").write_text("# written by hand\n" + GOOD)
    assert provision(write_bundle(tmp_path / "boot", pki), etc, USER).status == "provisioned"
    assert (etc / "sensekit.yaml.previous").read_text() == "# written by hand\n" + GOOD
    assert (etc / "sensekit.yaml").is_symlink()


@needs_root
def test_a_config_holding_a_camera_password_is_deleted_from_the_card(
    tmp_path: Path, pki: Path
) -> None:
    config = GOOD.replace("source: 0", "source: rtsp://admin:hunter2@camera.local/stream")
    boot = write_bundle(tmp_path / "boot", pki, config)
    assert provision(boot, tmp_path / "etc", USER).status == "provisioned"
    assert not (boot / "sensekit.yaml").exists() and not (boot / APPLIED_NAME).exists()
    assert "hunter2" not in (boot / DONE_REPORT).read_text()
    assert (tmp_path / "etc" / "sensekit.yaml").read_text() == config


def _replace(old: str, new: str):
    def change(boot: Path, pki: Path) -> None:
        path = boot / "sensekit.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    return change


def _write(name: str, data: bytes):
    def change(boot: Path, pki: Path) -> None:
        (boot / name).write_bytes(data)

    return change


def _copy(source: str, name: str):
    def change(boot: Path, pki: Path) -> None:
        shutil.copy(pki / source, boot / name)

    return change


def _concatenate(name: str, *sources: str):
    def change(boot: Path, pki: Path) -> None:
        (boot / name).write_bytes(b"".join((pki / source).read_bytes() for source in sources))

    return change


def _remove(name: str):
    def change(boot: Path, pki: Path) -> None:
        (boot / name).unlink()

    return change


def _symlink(name: str, target: str):
    def change(boot: Path, pki: Path) -> None:
        path = boot / name
        if path.exists():
            path.unlink()
        path.symlink_to(target)

    return change


def _fifo(name: str):
    def change(boot: Path, pki: Path) -> None:
        (boot / name).unlink()
        os.mkfifo(boot / name)

    return change


def _both(*changes):
    def change(boot: Path, pki: Path) -> None:
        for one in changes:
            one(boot, pki)

    return change


BAD = {
    "invalid YAML": (
        _replace("  username: kiosk-1\n", "  username: [kiosk-1\n"),
        "sensekit.yaml:6: (yaml): ",
    ),
    "unknown key": (
        _replace("password_file:", "pasword_file:"),
        "sensekit.yaml:6: mqtt.pasword_file: unknown key",
    ),
    "device id with a space": (
        _replace("device: kiosk-1", "device: kiosk 1"),
        "sensekit.yaml:2: device: String should match pattern",
    ),
    "no device id": (_replace("device: kiosk-1\n", ""), "sensekit.yaml:1: device: not set"),
    "missing file": (
        _remove("ca.crt"),
        "sensekit.yaml:8: mqtt.tls.ca_file: ca.crt: no such file in the bundle",
    ),
    "path escaping the bundle": (
        _replace("password_file: mqtt-password", "password_file: ../../etc/shadow"),
        "sensekit.yaml:6: mqtt.password_file: ../../etc/shadow: points outside the bundle",
    ),
    "absolute path": (
        _replace("password_file: mqtt-password", "password_file: /etc/shadow"),
        "sensekit.yaml:6: mqtt.password_file: /etc/shadow: must be a file name inside the bundle",
    ),
    "folder symlinked out of the bundle": (
        _both(
            _symlink("secrets", "/etc"),
            _replace("password_file: mqtt-password", "password_file: secrets/shadow"),
        ),
        "mqtt.password_file: secrets/shadow: points outside the bundle folder (through a "
        "symbolic link)",
    ),
    "secret that is a symlink": (
        _symlink("mqtt-password", "/etc/shadow"),
        "sensekit.yaml:6: mqtt.password_file: mqtt-password: is a symbolic link",
    ),
    "config that is a symlink": (
        _symlink("sensekit.yaml", "/etc/hostname"),
        "sensekit.yaml:1: (file): is a symbolic link",
    ),
    "secret that is a pipe": (
        _fifo("client.key"),
        "sensekit.yaml:10: mqtt.tls.key_file: client.key: is not a regular file",
    ),
    "file too large": (
        _write("ca.crt", b"-----BEGIN CERTIFICATE-----\n" + b"A" * (1024 * 1024 + 1)),
        "sensekit.yaml:8: mqtt.tls.ca_file: ca.crt: is 1048605 bytes, more than the 1048576",
    ),
    "empty password": (_write("mqtt-password", b"\n"), "mqtt-password: is empty"),
    "placeholder password": (
        _write("mqtt-password", b"CHANGE-ME\n"),
        "mqtt-password: still holds the example's placeholder",
    ),
    "two-line password": (
        _write("mqtt-password", b"one\ntwo\n"),
        "mqtt-password: holds more than one line",
    ),
    "config not UTF-8": (
        _write("sensekit.yaml", "site: café\n".encode("latin-1")),
        "sensekit.yaml:1: (file): is not UTF-8 text",
    ),
    "CA that is not PEM": (
        _write("ca.crt", b"\x30\x82\x01\x0a binary DER"),
        "sensekit.yaml:8: mqtt.tls.ca_file: ca.crt: is not a PEM certificate",
    ),
    "CA that does not parse": (
        _write("ca.crt", b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"),
        "sensekit.yaml:8: mqtt.tls.ca_file: ca.crt: is not a valid PEM certificate",
    ),
    "CA file holding the CA's key": (
        _concatenate("ca.crt", "ca.crt", "ca.key"),
        "mqtt.tls.ca_file: ca.crt: contains a private key",
    ),
    "key of another certificate": (
        _copy("other.key", "client.key"),
        "mqtt.tls.key_file: client.crt and client.key: the key does not belong to the certificate",
    ),
    "key with a passphrase": (
        _copy("encrypted.key", "client.key"),
        "mqtt.tls.key_file: client.key: is protected by a passphrase",
    ),
    "certificate without its key": (
        _replace("    key_file: client.key\n", ""),
        "sensekit.yaml:9: mqtt.tls.cert_file: set mqtt.tls.key_file too",
    ),
    "relative model path": (
        _replace("    source: 0\n", "    source: 0\n    detector:\n      model_path: x.tflite\n"),
        "sensekit.yaml:15: cameras.0.detector.model_path: x.tflite: a bundle carries only",
    ),
}


@needs_root
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_bundle_installs_nothing_and_says_why_on_the_card(
    case: str, tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = tmp_path / "etc"
    first = GOOD.replace("device: kiosk-1", "device: kiosk-0")
    assert provision(write_bundle(tmp_path / "good", pki, first), etc, USER).status == "provisioned"
    installed = snapshot(etc)

    boot = write_bundle(tmp_path / "boot", pki)
    change, expected = BAD[case]
    change(boot, pki)
    on_card = snapshot(boot)
    capsys.readouterr()
    result = provision(boot, etc, USER)

    assert (result.status, result.exit_code) == ("failed", 2)
    assert any(expected in problem for problem in result.problems), result.problems
    assert snapshot(etc) == installed  # the device keeps what it had, byte for byte
    assert load_config(etc / "sensekit.yaml").device == "kiosk-0"
    report = (boot / FAILED_REPORT).read_text()
    assert "FAILED: nothing was installed" in report and expected in report
    assert "keeps the configuration it had" in report
    assert {k: v for k, v in snapshot(boot).items() if k != FAILED_REPORT} == on_card
    assert expected in capsys.readouterr().err  # the console (the unit copies stderr there)


@needs_root
def test_a_fixed_bundle_replaces_the_failure_report(tmp_path: Path, pki: Path) -> None:
    boot = write_bundle(tmp_path / "boot", pki)
    (boot / "ca.crt").unlink()
    assert provision(boot, tmp_path / "etc", USER).exit_code == 2
    assert (boot / FAILED_REPORT).exists() and not (tmp_path / "etc" / "sensekit.yaml").exists()
    assert "has no sensekit configuration yet" in (boot / FAILED_REPORT).read_text()
    shutil.copy(pki / "ca.crt", boot / "ca.crt")
    assert provision(boot, tmp_path / "etc", USER).status == "provisioned"
    assert not (boot / FAILED_REPORT).exists() and (boot / DONE_REPORT).exists()


@needs_root
def test_reports_can_go_to_another_folder(tmp_path: Path, pki: Path) -> None:
    """cloud-init's copy lives in /run; its report belongs on the card."""
    run, card = write_bundle(tmp_path / "run", pki), tmp_path / "card"
    (run / "mqtt-password").write_text("")
    assert provision(run, tmp_path / "etc", USER, report_dir=card).exit_code == 2
    assert "mqtt-password: is empty" in (card / FAILED_REPORT).read_text()
    (run / "mqtt-password").write_text(PASSWORD)
    assert provision(run, tmp_path / "etc", USER, report_dir=card).status == "provisioned"
    assert (card / DONE_REPORT).exists() and not (card / FAILED_REPORT).exists()
    assert not (run / "mqtt-password").exists()


@needs_root
def test_an_unknown_service_user_is_a_problem_of_the_device(tmp_path: Path, pki: Path) -> None:
    boot = write_bundle(tmp_path / "boot", pki)
    result = provision(boot, tmp_path / "etc", "no-such-user-here")
    assert (result.status, result.exit_code) == ("failed", 1)
    assert "user 'no-such-user-here' does not exist" in result.problems[0]
    assert "problem of the device" in (boot / FAILED_REPORT).read_text()
    assert (boot / "mqtt-password").exists() and not (tmp_path / "etc").exists()


def test_check_only_validates_and_writes_nothing(tmp_path: Path, pki: Path) -> None:
    boot = write_bundle(tmp_path / "boot", pki)
    before = snapshot(boot)
    assert provision(boot, tmp_path / "etc", USER, check_only=True).status == "checked"
    (boot / "client.key").write_bytes((pki / "other.key").read_bytes())
    before = snapshot(boot)
    result = provision(boot, tmp_path / "etc", USER, check_only=True)
    assert (result.status, result.exit_code) == ("failed", 2)
    assert snapshot(boot) == before and not (tmp_path / "etc").exists()


def test_the_command_line_exit_codes(tmp_path: Path, pki: Path) -> None:
    parser = argparse.ArgumentParser(prog="sensekit")
    add_provision_parser(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> int:
        args = parser.parse_args(["provision", *argv])
        return int(args.func(args))

    boot = write_bundle(tmp_path / "boot", pki)
    assert run("--boot", str(tmp_path / "none"), "--etc", str(tmp_path / "etc")) == 0
    assert run("--boot", str(boot), "--check") == 0
    (boot / "ca.crt").unlink()
    assert run("--boot", str(boot), "--check") == 2


def test_the_example_bundle_is_valid_and_needs_its_files(tmp_path: Path, pki: Path) -> None:
    example = ROOT / "deploy" / "raspberrypi" / "boot" / "sensekit"
    load_config(example / "sensekit.yaml")  # what `sensekit check-config` runs
    boot = tmp_path / "boot"
    shutil.copytree(example, boot)
    result = provision(boot, tmp_path / "etc", USER, check_only=True)
    assert [problem.split(": ", 2)[1:] for problem in result.problems] == [
        ["mqtt.password_file", "mqtt-password: no such file in the bundle"],
        ["mqtt.tls.ca_file", "ca.crt: no such file in the bundle"],
    ]
    (boot / "mqtt-password").write_text(PASSWORD)
    shutil.copy(pki / "ca.crt", boot / "ca.crt")
    assert provision(boot, tmp_path / "etc", USER, check_only=True).status == "checked"


@needs_root
def test_the_example_bundle_installs(tmp_path: Path, pki: Path) -> None:
    boot = tmp_path / "boot"
    shutil.copytree(ROOT / "deploy" / "raspberrypi" / "boot" / "sensekit", boot)
    (boot / "mqtt-password").write_text(PASSWORD)
    shutil.copy(pki / "ca.crt", boot / "ca.crt")
    assert provision(boot, tmp_path / "etc", USER).status == "provisioned"
    config = load_config(tmp_path / "etc" / "sensekit.yaml")
    assert (config.site, config.device) == ("store-042", "entrance-1")
    assert read_password(config.mqtt) == PASSWORD
    assert sorted(p.name for p in boot.iterdir()) == sorted(
        ["README.txt", "ca.crt", APPLIED_NAME, DONE_REPORT]
    )
