"""Session fixtures shared by the Raspberry Pi deployment tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.pi_root import build_wheelhouse, debootstrap


def need_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("chroot, debootstrap and systemd-nspawn need root")
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is not installed: run the README's install command")


@pytest.fixture(scope="session")
def bookworm_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_root_tools()
    base = tmp_path_factory.mktemp("bookworm") / "rootfs"
    debootstrap(base)
    return base


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_root_tools()
    target = tmp_path_factory.mktemp("wheels") / "wheelhouse"
    build_wheelhouse(target)
    return target
