"""What kind of source a configured string names; no heavy imports (used by config checks)."""

from __future__ import annotations


def is_live_source(source: str | int) -> bool:
    """Device indexes, /dev nodes, network streams and the Pi camera are live; files and
    folders are replays."""
    if isinstance(source, int):
        return True
    text = source.strip()
    return text.isdigit() or text.startswith("/dev/") or "://" in text or text == "picamera2"


def describe_source(source: str | int) -> str:
    """A label safe for logs: an RTSP URL loses its credentials."""
    text = str(source)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return text
