"""sd_notify and the progress-gated watchdog, against a real AF_UNIX datagram socket."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sensekit.systemd import Notifier, Watchdog, watchdog_interval_s

# Deadlines for things that should happen in well under a second; generous for a loaded box.
DEADLINE_S = 15.0


class Manager:
    """The service manager's end: a bound datagram socket that collects what we send."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)

    def recv(self, timeout_s: float = DEADLINE_S) -> str | None:
        self.sock.settimeout(timeout_s)
        try:
            return self.sock.recv(65536).decode()
        except TimeoutError:
            return None

    def wait_for(self, wanted: Callable[[str], bool], timeout_s: float = DEADLINE_S) -> list[str]:
        """Everything received up to and including the first datagram that is wanted."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.recv(left)
            if message is None:
                break
            seen.append(message)
            if wanted(message):
                return seen
        raise AssertionError(f"nothing wanted arrived in {timeout_s} s; got {seen!r}")

    def collect(self, duration_s: float) -> list[str]:
        """Everything received during the next ``duration_s`` seconds."""
        seen: list[str] = []
        deadline = time.monotonic() + duration_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.recv(left)
            if message is not None:
                seen.append(message)
        return seen

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Manager]:
    path = tmp_path / "notify.sock"
    running = Manager(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield running
    running.close()


def test_ready_status_stopping_and_watchdog_arrive_as_exact_datagrams(manager: Manager) -> None:
    notifier = Notifier.from_environment()
    assert notifier.enabled
    assert notifier.ready("watching 2 cameras")
    assert manager.recv() == "READY=1\nSTATUS=watching 2 cameras"
    assert notifier.status("camera door: reopening")
    assert manager.recv() == "STATUS=camera door: reopening"
    assert notifier.watchdog()
    assert manager.recv() == "WATCHDOG=1"
    assert notifier.stopping("publishing the last window")
    assert manager.recv() == "STOPPING=1\nSTATUS=publishing the last window"
    assert notifier.notify("READY=1", "STATUS=a", "MAINPID=1")
    assert manager.recv() == "READY=1\nSTATUS=a\nMAINPID=1"


def test_a_newline_in_a_status_cannot_inject_an_assignment(manager: Manager) -> None:
    Notifier.from_environment().status("bad\nREADY=1")
    assert manager.recv() == "STATUS=bad READY=1"


def test_reloading_carries_the_monotonic_timestamp(manager: Manager) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert Notifier.from_environment().reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    reload_line, usec_line = (manager.recv() or "").split("\n")
    assert reload_line == "RELOADING=1"
    key, value = usec_line.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_an_abstract_socket_name_is_used_with_a_leading_nul(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"sensekit-test-{uuid.uuid4().hex}"
    abstract = Manager("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert Notifier.from_environment().ready("up")
        assert abstract.recv() == "READY=1\nSTATUS=up"
    finally:
        abstract.close()


def test_without_notify_socket_everything_is_a_quiet_no_op(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_environment()
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    assert notifier.ready("up") is False
    assert notifier.watchdog() is False
    assert notifier.reloading() is False
    assert notifier.stopping("bye") is False
    assert not caplog.records


def test_a_missing_socket_warns_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    with caplog.at_level(logging.WARNING, logger="sensekit.systemd"):
        for _ in range(3):
            assert notifier.watchdog() is False
    assert len(caplog.records) == 1
    assert "cannot notify systemd" in caplog.records[0].getMessage()


def test_watchdog_interval_from_the_environment() -> None:
    me = str(os.getpid())
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "2500000", "WATCHDOG_PID": me}) == 2.5
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({}) is None


class Clock:
    """A hand-wound clock, so a stall of exactly 12 s can be checked without waiting 12 s."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stall_is_reported_once_in_operator_words_and_cleared_on_progress(
    manager: Manager, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    notifier = Notifier.from_environment()
    notifier.status("watching 1 camera")
    assert manager.recv() == "STATUS=watching 1 camera"
    watchdog = Watchdog(notifier, timeout_s=20.0, clock=clock)

    clock.now += 9.9  # creation counts as progress; younger than half the timeout
    assert watchdog.check()
    assert manager.recv() == "WATCHDOG=1"

    clock.now += 2.1
    with caplog.at_level(logging.INFO, logger="sensekit.systemd"):
        assert not watchdog.check()
        clock.now += 5
        assert not watchdog.check()
    expected = (
        "the inference loop has made no progress for 12 s; "
        "withholding the systemd watchdog ping so the service is restarted"
    )
    assert manager.recv() == f"STATUS={expected}"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [expected]
    assert watchdog.stalled
    assert watchdog.pings == 1

    caplog.clear()
    watchdog.progress()
    with caplog.at_level(logging.INFO, logger="sensekit.systemd"):
        assert watchdog.check()
        assert watchdog.check()
    assert manager.recv() == "STATUS=watching 1 camera"  # the application's status is back
    assert manager.recv() == "WATCHDOG=1"
    assert manager.recv() == "WATCHDOG=1"
    assert not watchdog.stalled
    assert watchdog.pings == 3
    assert len([r for r in caplog.records if r.levelno == logging.INFO]) == 1


def test_the_watchdog_thread_pings_only_while_the_loop_progresses(manager: Manager) -> None:
    timeout_s = 0.4
    watchdog = Watchdog(Notifier.from_environment(), timeout_s=timeout_s)
    working = threading.Event()
    finished = threading.Event()

    def inference_loop() -> None:
        while not finished.is_set():
            if working.is_set():
                watchdog.progress()
            time.sleep(0.01)

    loop = threading.Thread(target=inference_loop, daemon=True)
    working.set()
    loop.start()
    watchdog.start()
    try:
        # Progressing: pings keep coming.
        for _ in range(4):
            manager.wait_for(lambda m: m == "WATCHDOG=1")
        assert not watchdog.stalled

        # Hung: a stall status arrives, then no ping for well over the timeout.
        working.clear()
        manager.wait_for(lambda m: m.startswith("STATUS=") and "no progress" in m)
        assert watchdog.stalled
        assert "WATCHDOG=1" not in manager.collect(3 * timeout_s)
        assert watchdog.stalled
        pings_while_stalled = watchdog.pings

        # Working again: pings resume.
        working.set()
        manager.wait_for(lambda m: m == "WATCHDOG=1")
        assert not watchdog.stalled
        # The counter moves just after the datagram leaves, so give it a moment.
        deadline = time.monotonic() + DEADLINE_S
        while watchdog.pings <= pings_while_stalled and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watchdog.pings > pings_while_stalled
    finally:
        finished.set()
        watchdog.stop()
        loop.join(DEADLINE_S)


def test_stop_is_prompt_even_with_a_long_interval(manager: Manager) -> None:
    watchdog = Watchdog(Notifier.from_environment(), timeout_s=600.0)
    watchdog.start()
    assert manager.recv() == "WATCHDOG=1"  # the first check runs at once
    started = time.monotonic()
    watchdog.stop()
    assert time.monotonic() - started < DEADLINE_S
