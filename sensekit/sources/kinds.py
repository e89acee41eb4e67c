"""What kind of source a configured string names; no heavy imports (used by config checks)."""

from __future__ import annotations

import os
import stat


def is_fifo(source: str | int) -> bool:
    """True for an existing named pipe (a symlink to one counts). One stat() call; a missing
    or unreadable path, or text that cannot be a path, is simply not a FIFO."""
    if isinstance(source, int):
        return False
    try:
        return stat.S_ISFIFO(os.stat(source.strip()).st_mode)
    except (OSError, ValueError):  # ValueError: an embedded NUL byte
        return False


def is_live_source(source: str | int) -> bool:
    """Device indexes, /dev nodes, network streams, the Pi camera and named pipes are live;
    files and folders are replays. A named pipe carries what a camera process (`rpicam-vid -o
    /run/cam.fifo`, an ffmpeg pipeline) is producing now: it has no duration, cannot be
    rewound and has no media clock worth trusting."""
    if isinstance(source, int):
        return True
    text = source.strip()
    if text.isdigit() or text.startswith("/dev/") or "://" in text or text == "picamera2":
        return True
    return is_fifo(text)


def describe_source(source: str | int) -> str:
    """A label safe for logs: an RTSP URL loses its credentials."""
    text = str(source)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return text
