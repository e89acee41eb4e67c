"""The pi-gen stage follows pi-gen's rules, and check-no-listeners.sh finds what listens.

The image itself cannot be built here (archive.raspberrypi.com is out of reach), so these
tests check what pi-gen would silently get wrong: pi-gen runs `NN-run.sh` only when it is
executable and skips it without a word otherwise, feeds `NN-run-chroot.sh` to bash on stdin,
exports only stages holding an `EXPORT_IMAGE` file, and reads `NN-packages(-nr)` lists (pi-gen
README, "How the build process works"; build.sh's run_sub_stage).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "raspberrypi"
PIGEN = DEPLOY / "pi-gen"
STAGE = PIGEN / "stage-sensekit"
CHECK = DEPLOY / "check-no-listeners.sh"

# pi-gen's per-step files inside a sub-stage folder: NN- prefix, then one of these.
STEP_FILE = re.compile(r"^\d\d-(run\.sh|run-chroot\.sh|packages|packages-nr|debconf)$")
STAGE_FILES = {"prerun.sh", "EXPORT_IMAGE", "EXPORT_NOOBS", "SKIP", "SKIP_IMAGES"}


def shell_scripts() -> list[Path]:
    scripts = [CHECK, PIGEN / "build.sh", STAGE / "prerun.sh", STAGE / "EXPORT_IMAGE"]
    scripts += sorted(STAGE.glob("*/*.sh"))
    return scripts


def sub_stages() -> list[Path]:
    return sorted(path for path in STAGE.iterdir() if path.is_dir())


def pigen_config() -> dict[str, str]:
    """The variables the config sets, as bash sees them after sourcing it."""
    script = f'source "{PIGEN / "config"}"; set -o posix; set'
    output = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout
    values = {}
    for line in output.splitlines():
        name, _, value = line.partition("=")
        values[name] = value.strip("'\"")
    return values


def test_the_stage_has_pi_gen_layout() -> None:
    assert sub_stages(), "no sub-stage folders"
    for sub in sub_stages():
        assert re.fullmatch(r"\d\d-[a-z0-9-]+", sub.name), f"sub-stage {sub.name}: NN-name"
        for entry in sub.iterdir():
            if entry.name == "files":
                continue  # filled by build.sh, read by the run scripts
            assert STEP_FILE.match(entry.name), f"{entry}: pi-gen would ignore this file"
    for entry in STAGE.iterdir():
        assert entry.is_dir() or entry.name in STAGE_FILES, f"{entry}: not a pi-gen stage file"
    assert not (STAGE / "SKIP").exists() and not (STAGE / "SKIP_IMAGES").exists()


def test_every_host_script_is_executable() -> None:
    """pi-gen runs prerun.sh and NN-run.sh only with [ -x ]: a lost mode bit skips them."""
    for script in [STAGE / "prerun.sh", *STAGE.glob("*/??-run.sh"), CHECK, PIGEN / "build.sh"]:
        assert os.access(script, os.X_OK), f"{script} is not executable"


def test_the_stage_exports_an_image_with_its_own_suffix() -> None:
    export = (STAGE / "EXPORT_IMAGE").read_text()
    assert re.search(r'^IMG_SUFFIX="-sensekit"$', export, re.M)


def test_prerun_starts_from_the_previous_stage() -> None:
    assert "copy_previous" in (STAGE / "prerun.sh").read_text()


def test_the_chroot_script_installs_with_install_sh_offline_and_starts_nothing() -> None:
    script = (STAGE / "00-sensekit" / "01-run-chroot.sh").read_text()
    command = next(line for line in script.splitlines() if "install.sh install" in line)
    assert command.strip().startswith("bash src/deploy/raspberrypi/install.sh install")
    assert command.rstrip().endswith("</dev/null"), "on_chroot feeds the script on stdin"
    for option in ("--wheel", "--wheelhouse", "--no-apt", "--no-start"):
        assert option in script
    # What install.sh --no-apt leaves out comes from the packages list instead.
    packages = (STAGE / "00-sensekit" / "00-packages-nr").read_text().split()
    installer = (DEPLOY / "install.sh").read_text()
    listed = re.search(r"APT_PACKAGES=\(([^)]*)\)", installer)
    assert listed is not None
    assert set(listed.group(1).split()) <= set(packages)


def test_the_host_step_copies_the_payload_into_the_rootfs() -> None:
    script = (STAGE / "00-sensekit" / "00-run.sh").read_text()
    assert '"${ROOTFS_DIR}/root/sensekit-install' in script
    assert "files/" in script


def test_the_stage_masks_the_listeners_and_checks_the_image() -> None:
    masks = (STAGE / "01-no-listeners" / "00-run-chroot.sh").read_text()
    for unit in ("ssh.service", "ssh.socket", "sshswitch.service", "avahi-daemon.service",
                 "avahi-daemon.socket", "rpcbind.socket"):  # fmt: skip
        assert unit in masks
    assert "apt-get purge -y" in masks and "rpi-connect-lite" in masks
    final = (STAGE / "01-no-listeners" / "01-run.sh").read_text()
    assert 'check-no-listeners.sh "${ROOTFS_DIR}"' in final


def test_the_config_builds_lite_plus_our_stage_without_ssh() -> None:
    config = pigen_config()
    assert config["STAGE_LIST"].split() == ["stage0", "stage1", "stage2", "stage-sensekit"]
    assert config["ENABLE_SSH"] == "0"
    assert config["RELEASE"] == "bookworm"
    assert config["DISABLE_FIRST_BOOT_USER_RENAME"] == "1"
    assert re.fullmatch(r"[a-z][-a-z0-9_]*", config["FIRST_USER_NAME"])  # pi-gen's own check
    assert config["IMG_NAME"] and config["TARGET_HOSTNAME"]
    assert "FIRST_USER_PASS" not in config, "no password in the repository"
    assert "PUBKEY_SSH_FIRST_USER" not in config


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda path: path.name)
def test_shell_syntax(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_shellcheck_is_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed: run the README's install command")
    scripts = [str(path) for path in shell_scripts()]
    result = subprocess.run(
        ["shellcheck", "--shell=bash", *scripts], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_prepare_only_lays_out_stage_payload_and_config(tmp_path: Path) -> None:
    """build.sh with a given wheel and wheelhouse (no download): what pi-gen would receive."""
    wheel = tmp_path / "sensekit-9.9.9-py3-none-any.whl"
    wheel.write_bytes(b"not a real wheel")
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "numpy-2.0-cp311-cp311-manylinux_2_17_aarch64.whl").write_bytes(b"x")
    (wheelhouse / "sensekit-9.9.9-py3-none-any.whl").write_bytes(b"copied by pip download")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "SENSEKIT_FIRST_USER_PASS"}
    result = subprocess.run(
        [
            str(PIGEN / "build.sh"),
            "--wheel",
            str(wheel),
            "--wheelhouse",
            str(wheelhouse),
            "--no-selftest",
            "--prepare-only",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    files = out / "stage-sensekit" / "00-sensekit" / "files"
    assert [p.name for p in (files / "wheel").iterdir()] == [wheel.name]
    assert [p.name for p in (files / "wheelhouse").iterdir()] == [
        "numpy-2.0-cp311-cp311-manylinux_2_17_aarch64.whl"
    ]
    assert (files / "SKIP_SELFTEST").exists()
    for needed in ("install.sh", "check-no-listeners.sh", "systemd/sensekit.service"):
        assert (files / "src" / "deploy" / "raspberrypi" / needed).exists(), needed
    assert not (files / "src" / "deploy" / "raspberrypi" / "pi-gen").exists()
    assert os.access(out / "stage-sensekit" / "00-sensekit" / "00-run.sh", os.X_OK)
    config = out / "config-sensekit"
    assert config.stat().st_mode & 0o077 == 0, "the config holds a password: root only"
    text = config.read_text()
    password = re.search(r"^FIRST_USER_PASS=(\S+)$", text, re.M)
    assert password is not None and len(password.group(1)) >= 24
    assert "export SENSEKIT_LOCK_FIRST_USER=1" in text
    assert password.group(1) not in result.stdout + result.stderr


# --- check-no-listeners.sh on a made-up root file system ---------------------------------


def unit(root: Path, name: str, body: str, lib: str = "usr/lib/systemd/system") -> Path:
    path = root / lib / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def enable(root: Path, name: str, target: str = "multi-user.target", scope: str = "system") -> None:
    wants = root / "etc" / "systemd" / scope / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / name).symlink_to(f"/usr/lib/systemd/{scope}/{name}")


def mask(root: Path, name: str) -> None:
    folder = root / "etc" / "systemd" / "system"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).symlink_to("/dev/null")


def check(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK), *args, str(root)], capture_output=True, text=True)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    return root


def test_a_clean_rootfs_passes(rootfs: Path) -> None:
    unit(rootfs, "sensekit.service", "[Service]\nExecStart=/opt/sensekit/bin/sensekit run\n")
    enable(rootfs, "sensekit.service")
    unit(rootfs, "dbus.socket", "[Socket]\nListenStream=/run/dbus/system_bus_socket\n")
    enable(rootfs, "dbus.socket", "sockets.target")
    result = check(rootfs)
    assert result.returncode == 0, result.stdout
    assert "no network listener" in result.stdout


def test_enabled_network_daemons_and_sockets_fail(rootfs: Path) -> None:
    unit(
        rootfs,
        "ssh.service",
        "[Service]\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\n",
        "lib/systemd/system",
    )
    enable(rootfs, "ssh.service")
    (rootfs / "usr/lib/systemd/system").mkdir(parents=True, exist_ok=True)
    unit(
        rootfs,
        "rpcbind.socket",
        "[Socket]\nListenStream=/run/rpcbind.sock\nListenStream=0.0.0.0:111\nListenDatagram=0.0.0.0:111\n",
    )
    enable(rootfs, "rpcbind.socket", "sockets.target")
    unit(rootfs, "avahi-daemon.service", "[Service]\nExecStart=/usr/sbin/avahi-daemon -s\n")
    enable(rootfs, "avahi-daemon.service")
    result = check(rootfs)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "LISTENER: ssh.service: system service enabled, runs sshd" in lines
    assert "LISTENER: rpcbind.socket: system socket enabled, ListenStream=0.0.0.0:111" in lines
    assert "LISTENER: rpcbind.socket: system socket enabled, ListenDatagram=0.0.0.0:111" in lines
    assert "LISTENER: avahi-daemon.service: system service enabled, runs avahi-daemon" in lines
    assert not any("/run/rpcbind.sock" in line for line in lines)
    assert "4 network listener(s)" in result.stdout


def test_masked_units_pass_and_allowed_units_are_named(rootfs: Path) -> None:
    unit(rootfs, "ssh.service", "[Service]\nExecStart=/usr/sbin/sshd -D\n")
    enable(rootfs, "ssh.service")
    unit(rootfs, "avahi-daemon.service", "[Service]\nExecStart=/usr/sbin/avahi-daemon -s\n")
    enable(rootfs, "avahi-daemon.service")
    mask(rootfs, "avahi-daemon.service")
    assert check(rootfs).returncode == 1
    allowed = check(rootfs, "--allow", "ssh.service")
    assert allowed.returncode == 0, allowed.stdout
    assert "allowed: ssh.service: system service enabled, runs sshd" in allowed.stdout
    assert "avahi" not in allowed.stdout


def test_user_services_sysv_links_and_inetd_are_found(rootfs: Path) -> None:
    unit(
        rootfs,
        "rpi-connect.service",
        "[Service]\nExecStart=/usr/bin/rpi-connectd\n",
        "usr/lib/systemd/user",
    )
    enable(rootfs, "rpi-connect.service", "default.target", scope="user")
    init = rootfs / "etc" / "init.d"
    init.mkdir(parents=True)
    (init / "nmbd").write_text("#!/bin/sh\n")
    rc2 = rootfs / "etc" / "rc2.d"
    rc2.mkdir(parents=True)
    (rc2 / "S01nmbd").symlink_to("../init.d/nmbd")
    (rootfs / "etc" / "inetd.conf").write_text(
        "# comment\ntelnet stream tcp nowait root /usr/sbin/in.telnetd\n"
    )
    result = check(rootfs)
    assert result.returncode == 1
    assert "LISTENER: rpi-connect.service: user service enabled, runs rpi-connectd" in result.stdout
    assert "LISTENER: nmbd (SysV): started by rc2.d/S01nmbd" in result.stdout
    assert "LISTENER: inetd: inetd.conf serves: telnet" in result.stdout


def test_installed_but_not_enabled_daemons_are_noted_not_failed(rootfs: Path) -> None:
    unit(rootfs, "ssh.service", "[Service]\nExecStart=/usr/sbin/sshd -D\n")
    result = check(rootfs)
    assert result.returncode == 0
    assert "note: ssh.service is installed (runs sshd), not enabled and not masked" in result.stdout


def test_a_folder_that_is_no_rootfs_is_a_usage_error(tmp_path: Path) -> None:
    assert check(tmp_path).returncode == 2
