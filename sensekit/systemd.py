"""systemd integration without libsystemd: sd_notify datagrams and a progress-gated watchdog.

The protocol is a few newline-separated ``KEY=value`` lines in one AF_UNIX datagram, so it is
reimplemented here instead of adding a C dependency that a Pi image may not have. Everything is
a no-op outside systemd (no ``NOTIFY_SOCKET``), so the same code runs under a terminal, in the
tests and in a container.

The watchdog pings only while the inference loop proves it is alive. A thread that pings on a
timer regardless would keep a wedged process (a camera driver stuck in a read, a deadlocked
interpreter call) "healthy" forever; withholding the ping lets systemd restart it instead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

# Never let a status line wait on the socket: systemd reads it promptly or not at all.
_SEND_TIMEOUT_S = 1.0


def _socket_address(value: str) -> str | None:
    """Turn ``NOTIFY_SOCKET`` into a ``socket.connect`` address, or None when unusable.

    systemd itself only honours absolute paths and ``@abstract`` names; anything else
    (``vsock:`` of newer managers, a relative path) is reported and ignored rather than sent to
    a socket the manager is not listening on.
    """
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%r is not a path or @name; systemd notifications are off", value)
    return None


def _one_line(text: str) -> str:
    # A newline would start a new assignment and could smuggle e.g. READY=1 into a status.
    return " ".join(text.splitlines())


class Notifier:
    """Sends sd_notify messages to the service manager; silently does nothing outside systemd.

    It never raises: losing a status line must not take the daemon down. The first failure is
    logged so a misconfigured unit is noticed, later ones are not, so a manager that went away
    does not flood the journal every watchdog period.
    """

    def __init__(self, address: str | None) -> None:
        self._address = address
        self._warned = False
        # The application's own status, so a temporary one (a watchdog stall) can be replaced
        # by it again when the stall clears.
        self.last_status: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        value = environ.get("NOTIFY_SOCKET", "")
        return cls(_socket_address(value) if value else None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send the assignments as one datagram; True when the manager's socket took it."""
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(_SEND_TIMEOUT_S)
                sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot notify systemd at %r (%s); further notification errors are not logged",
                    self._address.replace("\0", "@", 1),
                    exc,
                )
            return False
        return True

    def ready(self, status: str) -> bool:
        self.last_status = _one_line(status)
        return self.notify("READY=1", f"STATUS={self.last_status}")

    def stopping(self, status: str) -> bool:
        self.last_status = _one_line(status)
        return self.notify("STOPPING=1", f"STATUS={self.last_status}")

    def status(self, text: str) -> bool:
        self.last_status = _one_line(text)
        return self.notify(f"STATUS={self.last_status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        """Announce a reload; send ``ready()`` when it is done.

        ``Type=notify-reload`` (systemd ≥ 253) matches the reload by its monotonic timestamp;
        older managers ignore the extra field.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")


def watchdog_interval_s(environ: Mapping[str, str] = os.environ) -> float | None:
    """The unit's ``WatchdogSec`` in seconds when it applies to this process, else None.

    ``WATCHDOG_PID`` names the process the manager watches; a child that inherited the
    environment (a helper we spawn) must not think the watchdog is its business.
    """
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid is not None:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


class Watchdog:
    """Pings the systemd watchdog only while the inference loop keeps reporting progress.

    ``timeout_s`` is the unit's watchdog interval (``watchdog_interval_s()``). The thread checks
    four times per interval and pings when the last ``progress()`` is younger than half of it,
    so a healthy loop is pinged well within the deadline and a hung one misses it by design.
    The caller must call ``progress()`` from every loop that can legitimately wait for a long
    time (a camera reopening with back-off), or the service is restarted while it waits.
    """

    def __init__(
        self,
        notifier: Notifier,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"watchdog timeout must be positive, got {timeout_s!r}")
        self._notifier = notifier
        self._timeout_s = timeout_s
        self._max_age_s = timeout_s / 2
        self._interval_s = max(timeout_s / 4, 0.05)
        self._clock = clock
        # Start-up counts as progress: the first frame may take a while (model loading).
        self._last_progress = clock()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stalled = False
        self.pings = 0

    def progress(self) -> None:
        """Record that the loop completed work; one attribute store, safe on the hot path."""
        self._last_progress = self._clock()

    def check(self) -> bool:
        """Make one ping-or-withhold decision now; True when WATCHDOG=1 was sent.

        The thread calls this every interval; it is public so a caller with its own timer (or
        a test with its own clock) can drive it.
        """
        with self._lock:
            age = self._clock() - self._last_progress
            if age >= self._max_age_s:
                if not self.stalled:
                    self.stalled = True
                    message = (
                        f"the inference loop has made no progress for {_seconds(age)} s; "
                        "withholding the systemd watchdog ping so the service is restarted"
                    )
                    log.warning("%s", message)
                    self._notifier.notify(f"STATUS={message}")
                return False
            if self.stalled:
                self.stalled = False
                log.info("the inference loop is making progress again; resuming watchdog pings")
                restored = self._notifier.last_status or "the inference loop is making progress"
                self._notifier.notify(f"STATUS={restored}")
            if self._notifier.watchdog():
                self.pings += 1
                return True
            return False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sensekit-watchdog", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # a bug here must not silently end the pings forever
                log.exception("watchdog check failed")
            if self._stop.wait(self._interval_s):
                return
