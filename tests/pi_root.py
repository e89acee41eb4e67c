"""A clean Debian Bookworm root for the Raspberry Pi deployment tests: built once per test
session with debootstrap (minbase plus systemd, the base Raspberry Pi OS is built on), copied
fresh for each test module, with the sensekit wheel and its dependencies' wheels beside it.

The root has the host's architecture; deploy/raspberrypi/prove-aarch64.sh does the same on
arm64 under qemu (too slow for CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy" / "raspberrypi"
MIRROR = os.environ.get("SENSEKIT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
}


class Chroot:
    """Commands inside the root, with a clean environment (nothing of the host's pip or
    Python settings leaks in)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["chroot", str(self.root), *command],
            capture_output=True,
            text=True,
            env=CLEAN_ENV,
            timeout=1200,
        )
        if check:
            assert result.returncode == 0, (command, result.stdout[-4000:], result.stderr[-4000:])
        return result

    def install_sh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("bash", "/tmp/deploy/install.sh", *args, check=check)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


def debootstrap(target: Path) -> None:
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=systemd", "bookworm", str(target), MIRROR],
        check=True,
        capture_output=True,
        timeout=1200,
    )
    shutil.copy("/etc/resolv.conf", target / "etc" / "resolv.conf")


def build_wheelhouse(target: Path) -> None:
    """The sensekit wheel and its dependencies' wheels for this machine, built on the host."""
    target.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "-w", str(target), str(ROOT)], check=True
    )
    (wheel,) = target.glob("sensekit-*.whl")
    download = [*pip, "download", "--quiet", "--only-binary=:all:", "-d", str(target)]
    constraints = DEPLOY / "constraints.txt"
    if constraints.is_file():
        download += ["-c", str(constraints)]
    subprocess.run([*download, str(wheel)], check=True)


@contextmanager
def fresh_root(base: Path, wheelhouse: Path, target: Path) -> Iterator[Chroot]:
    """A copy of the base root with deploy/raspberrypi in /tmp/deploy and the wheels in
    /tmp/wheelhouse, /proc and /dev mounted while it is in use."""
    subprocess.run(["cp", "-a", str(base), str(target)], check=True)
    shutil.copytree(DEPLOY, target / "tmp" / "deploy")
    shutil.copytree(wheelhouse, target / "tmp" / "wheelhouse")
    mounts = [target / "proc", target / "dev"]
    subprocess.run(["mount", "-t", "proc", "proc", str(mounts[0])], check=True)
    subprocess.run(["mount", "--bind", "/dev", str(mounts[1])], check=True)
    try:
        yield Chroot(target)
    finally:
        for mount in reversed(mounts):
            subprocess.run(["umount", "--lazy", str(mount)], check=False)
