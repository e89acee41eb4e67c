"""`sensekit watch` as an operator runs it: the real command in a real terminal (tmux) against a
real mosquitto fed by the real demo pipeline; its plain mode in a pipe; its record and replay
files; and its one-line errors. Waits are polls with generous timeouts, never speed checks."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest

from sensekit.dashboards.messages import Message, read_log, write_message
from sensekit.dashboards.watch_render import frame_text
from sensekit.dashboards.watch_state import WatchState
from sensekit.publish.payloads import Topics, status_payload, window_payload
from sensekit.types import FaceCounts, VoiceCounts, ZoneWindow
from tests.conftest import ROOT, password_broker
from tests.dashboard_fixtures import newest_windows
from tests.mqtt_client import schema_for

SENSEKIT = str(ROOT / ".venv" / "bin" / "sensekit")
PROMPT = "watch-test$"
TIMEOUT_S = 90.0


def exit_status_shown(screen: str) -> str | None:
    """The status `echo watch-status=$?` printed (the command line itself shows `$?`)."""
    found = re.search(r"^watch-status=(\d+)\s*$", screen, re.MULTILINE)
    return found.group(1) if found else None


def wait_for(check: Callable[[], object], what: str, timeout_s: float = TIMEOUT_S) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Tmux:
    """A detached tmux session of a fixed size on a private server (its own socket), running
    a bare bash with a known prompt."""

    def __init__(self, rcfile: Path, width: int = 80, height: int = 24) -> None:
        self.socket = f"sensekit-watch-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.target = "watch"
        # bash sets its own prompt over an inherited PS1: give it through an rc file.
        rcfile.write_text(f"PS1='{PROMPT} '\nunset HISTFILE\n", encoding="utf-8")
        self.tmux(
            "new-session",
            "-d",
            "-s",
            self.target,
            "-x",
            str(width),
            "-y",
            str(height),
            "-e",
            "LANG=C.UTF-8",
            f"bash --noprofile --rcfile {rcfile}",
        )

    def tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def type_line(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.target, "-l", text)
        self.tmux("send-keys", "-t", self.target, "Enter")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.target, *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.target)

    def wait_screen(self, check: Callable[[str], bool], what: str) -> str:
        seen: list[str] = []

        def look() -> bool:
            seen[:] = [self.screen()]
            return check(seen[0])

        try:
            wait_for(look, what)
        except AssertionError:
            message = f"timed out waiting for {what}; the pane shows:\n{seen[0]}"
            raise AssertionError(message) from None
        return seen[0]

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", self.target, "-x", str(width), "-y", str(height))

    def current_command(self) -> str:
        return self.tmux("display-message", "-p", "-t", self.target, "#{pane_current_command}")

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path) -> Iterator[Tmux]:
    session = Tmux(tmp_path / "bashrc")
    try:
        wait_for(lambda: PROMPT in session.screen(), "the shell prompt")
        yield session
    finally:
        session.kill()


def run_demo(url: str) -> int:
    """The demo as a separate process; returns the windows it says it published."""
    demo = subprocess.run(
        [SENSEKIT, "demo", "--broker", url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    found = re.search(r"(\d+) windows published", demo.stdout + demo.stderr)
    assert found, demo.stdout + demo.stderr
    return int(found.group(1))


def recorded(path: Path) -> list[Message]:
    return list(read_log(path)) if path.exists() else []


def stopped_recorded(path: Path) -> bool:
    return any(
        m.topic.endswith("/status") and (m.payload or {}).get("state") == "stopped"
        for m in recorded(path)
    )


def zone_title(payload: dict) -> list[str]:
    """What a zone's title line must say for this window payload."""
    score = payload["faces"]["net_emotion_score"]
    return [
        f"▸ {payload['zone']} ",
        f"people {payload['faces']['people']}",
        f"score {'—' if score is None else f'{score:+.1f}'}",
    ]


def shows_windows(screen: str, newest: dict[str, dict]) -> bool:
    lines = screen.splitlines()
    for payload in newest.values():
        parts = zone_title(payload)
        if not any(all(part in line for part in parts) for line in lines):
            return False
    return True


def test_watch_in_a_terminal_shows_the_demo_resizes_and_quits_on_q(broker, tmux, tmp_path):
    record = tmp_path / "watch.jsonl"
    tmux.type_line(
        f"{SENSEKIT} watch --broker {broker.url} --record {record}; echo watch-status=$?"
    )
    tmux.wait_screen(
        lambda s: "(connected)" in s and "no sensekit messages yet" in s, "the empty live view"
    )
    assert tmux.current_command().strip() != "bash"

    published = run_demo(broker.url)
    wait_for(lambda: stopped_recorded(record), "the demo's stopped status in the record")
    messages = recorded(record)
    newest = newest_windows(messages)
    assert set(newest) == {"inside", "outside"}
    screen = tmux.wait_screen(
        lambda s: shows_windows(s, newest) and "demo-store/demo-entrance · stopped" in s,
        "the demo's zones, counts and scores",
    )
    assert "cam door" in screen and "degraded: none" in screen
    assert "█" in screen  # bars drawn with block characters
    assert all(len(line) <= 80 for line in screen.splitlines())

    # Everything received was recorded, once per delivery, in the log format.
    windows = [m for m in messages if m.topic.endswith("/window")]
    assert len({m.payload["window_id"] for m in windows}) == published
    assert all(m.payload["schema"] == "sensekit.window/4" for m in windows)

    # A tiny terminal: scrolled, cut to its width, still running; back to full size.
    tmux.resize(30, 8)
    small = tmux.wait_screen(
        lambda s: s.splitlines()[-1].startswith("-- ") if s.strip() else False,
        "the scroll indicator on a 30x8 terminal",
    )
    assert all(len(line) <= 30 for line in small.splitlines())
    tmux.keys("NPage")
    tmux.wait_screen(lambda s: "-- 7-12/" in s, "the second page")
    tmux.resize(80, 24)
    tmux.wait_screen(lambda s: shows_windows(s, newest), "the full view after resizing back")

    tmux.keys("q")
    final = tmux.wait_screen(exit_status_shown, "the watch to exit")
    assert exit_status_shown(final) == "0"
    assert final.rstrip().splitlines()[-1].strip() == PROMPT  # the shell is back
    assert "▸ inside" not in final  # the full-screen picture went away with the screen
    assert tmux.current_command().strip() == "bash"


def hand_built_log(path: Path, now: float) -> None:
    topics = Topics("sensekit", "kiosk-site", "till-cam")
    counts = {n: 0 for n in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")}
    faces = FaceCounts("till", 100, 12, {**counts, "happy": 7, "sad": 5}, 0, None)
    emotions = dict.fromkeys(("angry", "bored", "disgust", "fear", "happy", "neutral", "sad"), 0)
    voice = VoiceCounts(
        ("mic",), 20.0, 8, 3, {"low": 0, "mid": 8, "high": 0}, {**emotions, "neutral": 8}
    )
    zone = ZoneWindow(
        "kiosk-site", "till-cam", "till", now - 40, now - 20, True, 5, None, faces, voice
    )
    payloads = [
        (topics.status, status_payload("kiosk-site", "till-cam", "online", now - 60)),
        (topics.window("till"), window_payload(zone, 9)),
    ]
    with path.open("w", encoding="utf-8") as out:
        for topic, payload in payloads:
            jsonschema.validate(payload, schema_for(topic))
            write_message(out, Message(topic, payload, True, now - 10))


def test_watch_replay_in_a_terminal_quits_on_ctrl_c(tmux, tmp_path):
    log = tmp_path / "kiosk.jsonl"
    hand_built_log(log, time.time())
    tmux.type_line(f"{SENSEKIT} watch --replay {log}; echo watch-status=$?")
    screen = tmux.wait_screen(lambda s: "▸ till " in s, "the replayed zone")
    assert "people 12" in screen and "score +16.7" in screen
    assert "kiosk-site/till-cam" in screen and "replay of kiosk.jsonl" in screen
    tmux.keys("C-c")
    final = tmux.wait_screen(exit_status_shown, "the watch to exit")
    assert exit_status_shown(final) == "0"
    assert final.rstrip().splitlines()[-1].strip() == PROMPT
    assert tmux.current_command().strip() == "bash"


class Lines:
    """A subprocess's stdout read on a thread (a pipe read must not block the test)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.text = ""
        self._lock = threading.Lock()
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._lock:
                self.text += line

    def snapshot(self) -> str:
        with self._lock:
            return self.text

    def join(self) -> None:
        self._thread.join(timeout=30)


def test_plain_mode_records_and_the_record_replays(broker, tmp_path):
    record = tmp_path / "plain.jsonl"
    env = {**os.environ, "COLUMNS": "100"}
    watch = subprocess.Popen(
        [SENSEKIT, "watch", "--broker", broker.url, "--record", str(record)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    out = Lines(watch)
    try:
        wait_for(lambda: "no sensekit messages yet" in out.snapshot(), "the first plain frame")
        published = run_demo(broker.url)
        wait_for(lambda: stopped_recorded(record), "the demo's stopped status in the record")
        messages = recorded(record)
        newest = newest_windows(messages)
        wait_for(lambda: "· stopped" in out.snapshot().split("\n\n")[-1], "a frame after stop")
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=60) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    out.join()
    stderr = watch.stderr.read() if watch.stderr else ""
    assert "Traceback" not in stderr

    frames = out.snapshot().split("\n\n")
    assert len(frames) >= 2  # one per change, not one at the end only
    assert all(len(line) <= 100 for line in out.snapshot().splitlines())
    assert shows_windows(frames[-1], newest)
    assert "\x1b" not in out.snapshot()  # no terminal control codes in a pipe

    # The record is what `sensekit report` reads: every window, in the log format.
    windows = [m for m in read_log(record) if m.topic.endswith("/window")]
    assert len({m.payload["window_id"] for m in windows}) == published
    for message in read_log(record):
        if message.payload is not None:
            jsonschema.validate(message.payload, schema_for(message.topic))

    # Replaying it prints the same final picture the model gives for the same messages.
    replay = subprocess.run(
        [SENSEKIT, "watch", "--replay", str(record), "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    state = WatchState()
    for message in read_log(record):
        state.apply(message)
    expected = frame_text(state, 100, state.last_received, source=f"replay of {record.name}")
    assert replay.stdout.rstrip("\n") == expected
    assert shows_windows(replay.stdout, newest)

    # And a one-shot look at the live broker finds its retained windows and status.
    once = subprocess.run(
        [SENSEKIT, "watch", "--broker", broker.url, "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert once.returncode == 0, once.stderr
    assert shows_windows(once.stdout, newest)
    assert "demo-store/demo-entrance · stopped" in once.stdout
    assert "(connected)" in once.stdout


def one_line_error(args: list[str]) -> tuple[int, str]:
    result = subprocess.run(
        [SENSEKIT, "watch", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return result.returncode, lines[0]


def test_an_unreachable_broker_is_one_line_and_exit_5(tmp_path):
    from sensekit.broker import free_port

    code, line = one_line_error(["--broker", f"mqtt://127.0.0.1:{free_port()}"])
    assert code == 5 and "cannot connect to broker" in line


def test_a_refusing_broker_is_one_line_and_exit_5(tmp_path):
    with password_broker(tmp_path, "dashboard", "right-password") as guarded:
        secret = tmp_path / "wrong"
        secret.write_text("wrong-password\n")
        code, line = one_line_error(
            [
                "--broker",
                guarded.url,
                "--username",
                "dashboard",
                "--password-file",
                str(secret),
            ]
        )
    assert code == 5 and "refused" in line


def test_unreadable_logs_and_bad_usage_are_one_line_and_exit_2(broker, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"received_at": "2026-12-07T10:00:00.000Z", "topic": "x", "payload": {}}\nnot json\n'
    )
    code, line = one_line_error(["--replay", str(bad), "--once"])
    assert code == 2 and f"{bad}:2" in line
    code, line = one_line_error(["--replay", str(tmp_path / "missing.jsonl")])
    assert code == 2 and "cannot read" in line
    code, line = one_line_error([])
    assert code == 2 and "--broker" in line
    code, line = one_line_error(
        ["--broker", broker.url, "--record", str(tmp_path / "no" / "such" / "dir.jsonl")]
    )
    assert code == 2 and "--record" in line
