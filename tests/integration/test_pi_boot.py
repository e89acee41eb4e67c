"""First boot of an installed device, under a real systemd, to a real broker.

A clean Bookworm root (tests/pi_root.py) gets sensekit with deploy/raspberrypi/install.sh,
then a provisioning bundle on its boot partition (/boot/firmware/sensekit/: the config and the
MQTT password), and is booted with `systemd-nspawn --boot`: systemd is PID 1, runs
sensekit-provision.service, then the hardened sensekit.service (Type=notify, watchdog,
seccomp filter, device policy, read-only system). The container shares the host's network, so
the daemon publishes to a password-protected mosquitto the test runs on loopback, where a
subscriber checks every message against the schemas. Stopping the container is a real
shutdown: the daemon must publish `stopped`.

This is the check that the unit's hardening does not break the daemon (a seccomp filter or a
device policy that kills it would show here as no `online`, or as restarts in the journal),
and that provisioning works under systemd and not only when called by a test.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensekit.broker import LocalBroker
from tests.conftest import password_broker
from tests.mqtt_client import Subscriber
from tests.pi_root import Chroot, fresh_root

SITE, DEVICE = "lab", "door-1"
USER, PASSWORD = "lab-door-1", "s3cret-for-this-test"
MEDIA = "/opt/sensekit/current/lib/python3.11/site-packages/sensekit/media/demo"

pytestmark = [
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        shutil.which("systemd-nspawn") is None,
        reason="systemd-nspawn is not installed (Debian's systemd-container; install.sh installs it)",
    ),
]


def bundle_config(port: int) -> str:
    return textwrap.dedent(
        f"""\
        site: {SITE}
        device: {DEVICE}
        mqtt:
          url: mqtt://127.0.0.1:{port}
          username: {USER}
          password_file: mqtt-password
        cameras:
          - name: door
            source: {MEDIA}/entrance.mp4
            replay: realtime
            at_end: loop
            detector:
              model: full_range
            zones:
              - name: outside
                polygon: [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
              - name: inside
                polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
        microphones:
          - name: counter
            source: {MEDIA}/entrance.flac
            zone: inside
            replay: realtime
            at_end: loop
        aggregation:
          window_s: 20
        stats:
          interval_s: 5
        privacy:
          controller: sensekit test lab
          contact: lab@example.com
        """
    )


@pytest.fixture(scope="module")
def device(
    bookworm_base: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chroot]:
    with fresh_root(bookworm_base, wheelhouse, tmp_path_factory.mktemp("boot") / "root") as root:
        root.install_sh("install", "--wheelhouse", "/tmp/wheelhouse", "--no-selftest")
        yield root


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with password_broker(tmp_path_factory.mktemp("broker"), USER, PASSWORD) as running:
        yield running


def boot(root: Path, log: Path) -> subprocess.Popen:
    # nspawn needs /proc and /dev of its own: the chroot mounts must not be there.
    for mount in (root / "proc", root / "dev"):
        subprocess.run(["umount", "--lazy", str(mount)], check=False)
    return subprocess.Popen(
        ["systemd-nspawn", "--directory", str(root), "--register=no", "--keep-unit", "--boot"],
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def journal(root: Path, unit: str) -> str:
    return subprocess.run(
        ["journalctl", "--directory", str(root / "var/log/journal"), "-u", unit, "-o", "cat"],
        capture_output=True,
        text=True,
    ).stdout


def test_first_boot_provisions_and_the_hardened_daemon_publishes(
    device: Chroot, broker: LocalBroker, tmp_path: Path
) -> None:
    card = device.path("/boot/firmware/sensekit")
    card.mkdir(parents=True)
    (card / "sensekit.yaml").write_text(bundle_config(broker.port))
    (card / "mqtt-password").write_text(PASSWORD + "\n")
    subscriber = Subscriber(
        broker.host, broker.port, f"sensekit/{SITE}/{DEVICE}/#", credentials=(USER, PASSWORD)
    )
    log = tmp_path / "console.log"
    container = boot(device.root, log)
    try:
        subscriber.wait_for(
            lambda m: m.topic.endswith("/status") and m.payload.get("state") == "online", 180
        )
        subscriber.wait_for(lambda m: m.topic.endswith("/window"), 120)
        subscriber.wait_for(lambda m: m.topic.endswith("/stats"), 30)
        container.send_signal(signal.SIGTERM)  # nspawn: an orderly shutdown of the container
        container.wait(120)
        subscriber.wait_for(
            lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped", 10
        )
    finally:
        if container.poll() is None:
            container.kill()
            container.wait(30)
        subscriber.close()
    console = log.read_text(errors="replace")
    daemon_log = journal(device.root, "sensekit.service")
    assert daemon_log.count("sensekit 0.1.0 starting") == 1, daemon_log[-3000:]
    assert "watchdog" not in daemon_log.lower() and "Failed with result" not in daemon_log
    assert "Started sensekit.service" in console or "Started sensekit" in daemon_log
    windows = subscriber.windows()
    assert windows and all(w["site"] == SITE and w["device"] == DEVICE for w in windows)

    # Provisioning: installed with the right owners and modes, the secret gone from the card.
    installed = device.path("/etc/sensekit/sensekit.yaml")
    assert installed.is_file()
    secret = installed.resolve().parent / "mqtt-password"
    stat = secret.stat()
    assert stat.st_mode & 0o777 == 0o600
    assert (
        device.run(
            "stat", "-c", "%U", str(Path("/") / secret.relative_to(device.root))
        ).stdout.strip()
        == "sensekit"
    )
    assert not (card / "mqtt-password").exists()
    assert (card / "PROVISIONED.txt").is_file()
    assert not (card / "sensekit.yaml").exists(), "applied: not provisioned again at next boot"
    provision_log = journal(device.root, "sensekit-provision.service")
    assert "Finished sensekit-provision.service" in console or provision_log

    # The daemon wrote only its spool, with the unit's UMask.
    spool = device.path("/var/lib/sensekit/spool.sqlite")
    assert spool.is_file() and spool.stat().st_mode & 0o077 == 0
