"""`sensekit run` as a child process whose log the test reads while it runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2

from tools.media.scene import scene_with_faces

WINDOW_LINE = re.compile(r"window (\S+): ")


def five_faces_video(path: Path, seconds: int = 30, fps: int = 10) -> Path:
    """Five people standing still: made here, decoded by OpenCV."""
    image, _ = scene_with_faces(5, 150, seed=3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for _ in range(seconds * fps):
        writer.write(image)
    writer.release()
    return path


class DaemonProcess:
    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sensekit", "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 60.0, count: int = 1) -> str:
        """Wait until `count` log lines contain `text`; returns the last of them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if text in line]
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.process.poll() is not None and not self._reader.is_alive()
                ):
                    raise AssertionError(
                        f"no {count}x {text!r} in the daemon's log:\n" + "\n".join(self.lines)
                    )
                self._changed.wait(min(remaining, 0.5))

    def window_ids(self) -> list[str]:
        """The windows this daemon counted (each logged once it is in the spool)."""
        with self._changed:
            return [m.group(1) for line in self.lines if (m := WINDOW_LINE.search(line))]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._reader.join(timeout=5)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 120.0) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self._reader.join(timeout=5)
        return code
