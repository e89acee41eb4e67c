"""deploy/raspberrypi/install.sh in a clean Debian Bookworm root, as on a fresh Pi.

The install script runs inside the root (tests/pi_root.py) with `chroot` and a clean
environment, installs its Debian packages with apt, sensekit from a wheelhouse (offline, as a
fleet update would), proves the release with `sensekit selftest`, and enables the units
offline. Then: idempotence, an upgrade and a rollback, `systemd-analyze verify` against the
real installed paths, and uninstall.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pi_root import Chroot, fresh_root

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def debian(
    bookworm_base: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chroot]:
    with fresh_root(bookworm_base, wheelhouse, tmp_path_factory.mktemp("install") / "root") as root:
        yield root


@pytest.fixture(scope="module")
def installed(debian: Chroot) -> tuple[Chroot, str]:
    result = debian.install_sh("install", "--wheelhouse", "/tmp/wheelhouse")
    return debian, result.stdout


def releases(chroot: Chroot) -> list[str]:
    return sorted(p.name for p in chroot.path("/opt/sensekit/releases").iterdir())


def test_install_proves_the_release_before_using_it(installed: tuple[Chroot, str]) -> None:
    chroot, output = installed
    assert "selftest passed" in output
    assert re.search(r"now using release 0\.1\.0-[0-9a-f]{12}", output)
    version = chroot.run("/opt/sensekit/bin/sensekit", "--version").stdout
    assert "sensekit" in version
    for package in ("python3-venv", "libportaudio2", "procps"):
        status = chroot.run("dpkg-query", "-W", "-f=${Status}", package).stdout
        assert status == "install ok installed", package


def test_the_service_user_owns_state_and_reads_config(installed: tuple[Chroot, str]) -> None:
    chroot, _ = installed
    entry = chroot.run("getent", "passwd", "sensekit").stdout.strip().split(":")
    assert entry[5] == "/var/lib/sensekit" and entry[6] == "/usr/sbin/nologin"
    assert int(entry[2]) < 1000, "a system user"
    groups = chroot.run("id", "-nG", "sensekit").stdout.split()
    assert {"video", "audio"} <= set(groups)
    modes = chroot.run(
        "stat", "-c", "%n %U %G %a", "/etc/sensekit", "/var/lib/sensekit", "/var/cache/sensekit"
    ).stdout.splitlines()
    assert modes == [
        "/etc/sensekit root sensekit 750",
        "/var/lib/sensekit sensekit sensekit 700",
        "/var/cache/sensekit sensekit sensekit 700",
    ]
    assert chroot.path("/etc/sensekit/sensekit.yaml.example").is_file()
    assert not chroot.path("/etc/sensekit/sensekit.yaml").exists(), "configured by provisioning"


def test_units_are_installed_enabled_and_verify_clean(installed: tuple[Chroot, str]) -> None:
    chroot, _ = installed
    for unit in ("sensekit.service", "sensekit-provision.service"):
        assert chroot.run("systemctl", "is-enabled", unit).stdout.strip() == "enabled"
        verify = chroot.run("systemd-analyze", "verify", f"/etc/systemd/system/{unit}", check=False)
        assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = chroot.run(
        "systemd-analyze", "security", "--offline=true", "/etc/systemd/system/sensekit.service"
    ).stdout
    score = float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security).group(1))
    assert score <= 2.0


def test_a_second_install_changes_nothing(installed: tuple[Chroot, str]) -> None:
    chroot, _ = installed
    before = releases(chroot)
    again = chroot.install_sh("install", "--wheelhouse", "/tmp/wheelhouse").stdout
    assert "already the one in use" in again
    assert "selftest" not in again.replace("selftest skipped", "")
    assert releases(chroot) == before


def test_upgrade_switches_after_selftest_and_rollback_returns(
    installed: tuple[Chroot, str],
) -> None:
    """A changed input (here: an extra constraint, as a fleet update with new pins) builds a
    new release beside the old one; rollback goes back to the old one."""
    chroot, _ = installed
    (old,) = [r for r in releases(chroot) if r == current(chroot)]
    constraints = chroot.path("/tmp/constraints-next.txt")
    constraints.write_text("# next pins\ntqdm>=4.66\n")
    upgrade = chroot.install_sh(
        "upgrade", "--wheelhouse", "/tmp/wheelhouse", "--constraints", "/tmp/constraints-next.txt"
    ).stdout
    assert "selftest passed" in upgrade
    new = current(chroot)
    assert new != old and set(releases(chroot)) == {old, new}
    assert chroot.path("/opt/sensekit/previous").read_text().strip() == old
    chroot.install_sh("rollback")
    assert current(chroot) == old
    assert "release in use: " + old in chroot.install_sh("status").stdout


def current(chroot: Chroot) -> str:
    return os.path.basename(os.readlink(chroot.path("/opt/sensekit/current")))


def test_uninstall_keeps_config_and_spool_and_purge_removes_everything(
    installed: tuple[Chroot, str],
) -> None:
    chroot, _ = installed
    spool = chroot.path("/var/lib/sensekit/spool.sqlite")
    spool.write_bytes(b"windows not yet sent")
    chroot.install_sh("uninstall")
    assert not chroot.path("/opt/sensekit").exists()
    assert not chroot.path("/etc/systemd/system/sensekit.service").exists()
    assert not chroot.path("/etc/systemd/system/multi-user.target.wants/sensekit.service").exists()
    assert chroot.path("/etc/sensekit").is_dir() and spool.is_file()
    chroot.install_sh("uninstall", "--purge")
    for gone in ("/etc/sensekit", "/var/lib/sensekit", "/var/cache/sensekit"):
        assert not chroot.path(gone).exists(), gone
    assert chroot.run("getent", "passwd", "sensekit", check=False).returncode == 2
