"""A virtual microphone for tests on machines without a sound card: ALSA's `file` plugin.

What ALSA's file plugin does for capture (alsa-lib 1.2.8, PortAudio 19.6), measured here:
- It reads the samples from `infile` and takes nothing but timing from its slave. With the
  `null` slave there is no timing at all: a plain file is read as fast as the CPU allows.
- In mmap mode (what PortAudio uses) it reads from `infile` as much as the slave offers (up to
  the end of the ring buffer) while PortAudio consumes one period at a time, so with a plain
  file most of the audio is skipped and the stream is garbled after the first buffer.
- After the end of `infile` it replays whatever was left in the ring buffer, forever.

Both problems go away when `infile` is a FIFO fed one period at a time, and only once the
previous period has been taken: the plugin's read then blocks until the next period is due
(real-time pacing) and returns exactly the period PortAudio consumes. One artefact remains: the
first ALSA buffer after the stream starts holds one fed period followed by a period of
uninitialised memory. The feeder therefore leads in with silence, and tests look for where
their content starts rather than assume it starts at the first sample.

PortAudio reads the ALSA configuration once, when sounddevice is first imported, so the
microphone has to run in a subprocess started with `VirtualMicrophone.env`.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

DEVICE = "sensekit_virtual_mic"
"""The capture device to configure: converts to whatever PortAudio asks for."""
READER = "sensekit_fifo_reader"
"""The raw file-plugin device under it; a name that does not contain DEVICE, so that
sounddevice's substring match of DEVICE finds only one device."""

ASOUNDRC = """\
pcm.{device} {{
    type plug
    slave {{
        pcm "{reader}"
        format S16_LE
        rate {rate}
        channels 1
    }}
}}
pcm.{reader} {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
"""


def write_asoundrc(home: Path, infile: Path, sample_rate: int = 16000) -> dict[str, str]:
    """Write `home/.asoundrc` defining DEVICE, which records mono S16_LE at `sample_rate`
    from `infile`, and return an environment whose ALSA will see it."""
    (home / ".asoundrc").write_text(
        ASOUNDRC.format(device=DEVICE, reader=READER, rate=sample_rate, infile=infile)
    )
    return {**os.environ, "HOME": str(home)}


class VirtualMicrophone:
    """Feeds `content` (mono int16) through a FIFO into DEVICE at real-time pace: `lead_in_s`
    of silence, the content, then silence until closed. `block_frames` must equal the
    period the recording side uses (MicrophoneSource: block_s × sample_rate)."""

    def __init__(
        self,
        directory: Path,
        content: npt.NDArray[np.int16],
        sample_rate: int = 16000,
        block_frames: int = 1600,
        lead_in_s: float = 0.5,
    ) -> None:
        if block_frames * 2 > select.PIPE_BUF:
            raise ValueError(f"a block must fit one atomic pipe write ({select.PIPE_BUF} bytes)")
        self.device = DEVICE
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.content = np.asarray(content, dtype="<i2")
        lead_in = np.zeros(round(lead_in_s * sample_rate / block_frames) * block_frames, "<i2")
        stream = np.concatenate([lead_in, self.content])
        padding = -len(stream) % block_frames
        self._stream = np.concatenate([stream, np.zeros(padding, "<i2")])
        self.fifo = directory / "virtual_mic.fifo"
        self.env = write_asoundrc(directory, self.fifo, sample_rate)
        self.blocks_fed = 0
        self._running = threading.Event()
        self._running.set()
        self._closed = threading.Event()
        self._fd = -1
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        os.mkfifo(self.fifo)
        # Read-write, so that opening never waits for the other side and ALSA's opens and
        # closes (PortAudio probes every device) never break the pipe.
        self._fd = os.open(self.fifo, os.O_RDWR)
        self._thread = threading.Thread(target=self._feed, name="virtual-mic", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop feeding: the device stops delivering audio, as an unplugged one would."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def close(self) -> None:
        self._closed.set()
        self._running.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _unread_bytes(self) -> int:
        count = array.array("i", [0])
        fcntl.ioctl(self._fd, termios.FIONREAD, count)
        return count[0]

    def _feed(self) -> None:
        period = self.block_frames / self.sample_rate
        silence = np.zeros(self.block_frames, "<i2").tobytes()
        first_taken: float | None = None
        while not self._closed.is_set():
            if self._unread_bytes() or not self._running.is_set():
                time.sleep(0.001)
                continue
            if self.blocks_fed == 1 and first_taken is None:
                first_taken = time.monotonic()
            if first_taken is not None:
                due = first_taken + self.blocks_fed * period
                if self._closed.wait(max(0.0, due - time.monotonic())):
                    break
            start = self.blocks_fed * self.block_frames
            block = self._stream[start : start + self.block_frames]
            os.write(self._fd, block.tobytes() if len(block) else silence)
            self.blocks_fed += 1


@contextmanager
def virtual_microphone(
    directory: Path,
    content: npt.NDArray[np.int16],
    sample_rate: int = 16000,
    block_frames: int = 1600,
    lead_in_s: float = 0.5,
) -> Iterator[VirtualMicrophone]:
    """A running VirtualMicrophone; run the recording process with its `env`."""
    mic = VirtualMicrophone(directory, content, sample_rate, block_frames, lead_in_s)
    mic.open()
    try:
        yield mic
    finally:
        mic.close()
