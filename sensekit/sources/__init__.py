"""Frame sources: live cameras and replayed media, behind one small interface."""

from __future__ import annotations

from typing import Protocol

from sensekit.types import VideoFrame


class FrameSource(Protocol):
    """What the inference loop needs from a camera or a replayed file."""

    name: str

    def start(self) -> None:
        """Open the device or file and start producing frames (raises SourceError)."""

    def read(self, timeout: float) -> VideoFrame | None:
        """The next frame, or None if none arrived within `timeout` seconds."""

    @property
    def finished(self) -> bool:
        """True once a finite source has delivered its last frame."""

    @property
    def end_timestamp(self) -> float | None:
        """For a finished replay: where its media ends, in the frames' time base."""

    @property
    def error(self) -> str | None:
        """Why the source stopped, when it stopped on a failure."""

    def stats(self) -> dict[str, float]:
        """Counters for the health topic (frames captured, dropped, camera fps)."""

    def stop(self) -> None:
        """Release the device; safe to call twice."""
