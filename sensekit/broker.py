"""A private mosquitto on a free loopback port, for the demo and the tests.

The demo never publishes to a broker it was not given: a demo run on a deployed device must
not put sample windows on the real dashboards' topics.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from sensekit.errors import BrokerError

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class LocalBroker:
    """mosquitto bound to 127.0.0.1 only, anonymous, no persistence; stopped by PID."""

    def __init__(
        self,
        port: int | None = None,
        password_file: Path | None = None,
        tls_files: tuple[Path, Path, Path] | None = None,
        persistent: bool = False,
    ) -> None:
        """`tls_files`: (CA certificate, server certificate, server key) for a TLS listener.
        `persistent`: keep sessions and queued messages across stop()/start() of this object,
        as a production mosquitto with `persistence true` does (the reliability tests bounce
        the broker and expect a subscriber's session to survive)."""
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._password_file = password_file
        self._tls_files = tls_files
        self._persistent = persistent
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "mqtts" if self._tls_files else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def _readable_copy(self, source: Path, name: str) -> Path:
        """mosquitto started as root reads some files after dropping to its own user."""
        assert self._dir is not None
        copy = Path(self._dir.name) / name
        shutil.copyfile(source, copy)
        copy.chmod(0o644)
        Path(self._dir.name).chmod(0o755)
        return copy

    def start(self) -> LocalBroker:
        binary = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
            None,
        )
        if binary is None:
            raise BrokerError(
                "no MQTT broker given and mosquitto is not installed: install it "
                "(sudo apt-get install mosquitto) or pass --broker mqtt://HOST:PORT"
            )
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="sensekit-broker-")
        config = Path(self._dir.name) / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if self._password_file is not None:
            readable = self._readable_copy(self._password_file, "passwd")
            access = f"allow_anonymous false\npassword_file {readable}\n"
        if self._tls_files is not None:
            ca, cert, key = (
                self._readable_copy(path, name)
                for path, name in zip(
                    self._tls_files, ("ca.crt", "server.crt", "server.key"), strict=True
                )
            )
            access += f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
        if self._persistent:
            Path(self._dir.name).chmod(0o777)  # mosquitto started as root writes as its user
        persistence = (
            f"persistence true\npersistence_location {self._dir.name}/\n"
            if self._persistent
            else "persistence false\n"
        )
        config.write_text(
            f"listener {self.port} {self.host}\n{access}{persistence}"
            "log_dest stderr\nlog_type error\n"
        )
        self._process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if not wait_for_port(self.host, self.port, 5.0):
            error = self._stop_process()
            raise BrokerError(f"mosquitto did not start on port {self.port}: {error}")
        return self

    def _stop_process(self) -> str:
        if self._process is None:
            return ""
        self._process.terminate()
        try:
            _, stderr = self._process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, stderr = self._process.communicate()
        self._process = None
        return (stderr or b"").decode(errors="replace").strip()

    def stop(self) -> None:
        """Stop mosquitto; a persistent broker keeps its state for the next start()."""
        self._stop_process()
        if self._dir is not None and not self._persistent:
            self._dir.cleanup()
            self._dir = None

    def remove(self) -> None:
        """Stop and delete everything, persistent state included."""
        self._stop_process()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()
