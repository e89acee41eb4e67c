"""Audio sources: a live microphone or a replayed audio file, behind one small interface.

This module is light on purpose (no PortAudio, no decoder): config checks and logs can classify a
configured source without opening anything. `open_audio_source` imports the adapter it needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import PurePath
from typing import Protocol

from sensekit.types import AudioChunk

AUDIO_FILE_SUFFIXES = {".wav", ".flac", ".ogg"}


class AudioSource(Protocol):
    """What the voice pipeline needs from a microphone or a replayed file."""

    name: str
    sample_rate: int
    live: bool

    def start(self) -> None:
        """Open the device or file now (raises SourceError with what to fix)."""

    def read(self, timeout: float) -> AudioChunk | None:
        """The next chunk, or None if none was ready within `timeout` seconds."""

    @property
    def finished(self) -> bool:
        """True once no more chunks will come (end of file, device gone) and all were read."""

    @property
    def error(self) -> str | None:
        """Why the source stopped, when it stopped on a failure."""

    @property
    def end_timestamp(self) -> float | None:
        """For a file: where its audio ends, in the chunks' time base."""

    def stats(self) -> dict[str, float]:
        """Counters for the health topic: audio_s, overflows, dropped_s."""

    def stop(self) -> None:
        """Release the device or file; safe to call twice."""


def is_audio_file(source: str | int) -> bool:
    return isinstance(source, str) and PurePath(source.strip()).suffix.lower() in (
        AUDIO_FILE_SUFFIXES
    )


def is_default_microphone(source: str | int | None) -> bool:
    return source is None or (isinstance(source, str) and source.strip() in ("", "default"))


def microphone_index(source: str | int) -> int | None:
    """A device index, whether configured as a number or as a string of digits."""
    if isinstance(source, int):
        return source
    text = source.strip()
    return int(text) if text.isdigit() else None


def describe_audio_source(source: str | int | None) -> str:
    """A label for logs and error messages that says what kind of source this is."""
    if source is not None and is_audio_file(source):
        return f"audio file {str(source).strip()}"
    if source is None or is_default_microphone(source):
        return "default microphone"
    index = microphone_index(source)
    if index is not None:
        return f"microphone #{index}"
    return f'microphone "{str(source).strip()}"'


def open_audio_source(
    name: str,
    source: str | int | None,
    sample_rate: int = 16000,
    *,
    realtime: bool = True,
    start_time: float | None = None,
    clock: Callable[[], float] = time.time,
    block_s: float = 0.1,
    buffer_s: float = 10.0,
    stall_s: float = 3.0,
) -> AudioSource:
    """The source for a configured value: an audio file is replayed, anything else (None,
    "default", a device index, a device-name substring) is a microphone.

    Nothing is opened here; `start()` does that, so errors surface where the caller expects.
    `realtime` and `start_time` only apply to files; a microphone always runs live, stamped
    by `clock`.
    """
    if source is not None and is_audio_file(source):
        from sensekit.sources.audio_file import FileAudioSource

        return FileAudioSource(
            name,
            str(source).strip(),
            sample_rate,
            realtime=realtime,
            start_time=start_time,
            clock=clock,
            block_s=block_s,
            buffer_s=buffer_s,
        )
    from sensekit.sources.microphone import MicrophoneSource

    return MicrophoneSource(
        name,
        source,
        sample_rate,
        clock=clock,
        block_s=block_s,
        buffer_s=buffer_s,
        stall_s=stall_s,
    )
