"""Record through MicrophoneSource and save what it delivered, for tests in a subprocess.

PortAudio reads the ALSA configuration when sounddevice is first imported, so a test that uses
a virtual ALSA device (tests/virtual_mic.py) runs this script with that device's environment:

    python tests/record_microphone.py --device NAME --seconds 2 --out rec.npz

Modes:
  record  read until `--seconds` of audio arrived.
  drop    read `--read-before-s`, then stop reading until the ring dropped `--drop-s`, then read
          `--seconds` more: shows what a slow consumer loses and how timestamps jump.
  stall   read until the device stops delivering (the test pauses the feeder when this prints
          "recording"); the source must then report itself finished with an error.
--clock-step-s steps the source's clock after --clock-step-after-calls callbacks, as NTP steps
a Pi's clock.

Writes an .npz: samples (float32, all chunks concatenated), timestamps and sizes (per chunk),
and meta (JSON: stats, finished, error). A SourceError at start is saved as meta["error"] and
exits with status 3. Progress lines on stdout let the test follow without timing guesses.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sensekit.errors import SourceError
from sensekit.sources.microphone import MicrophoneSource
from sensekit.types import AudioChunk

SAFETY_S = 60.0  # a broken device must fail the test, not hang it


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=("record", "drop", "stall"), default="record")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--buffer-s", type=float, default=10.0)
    parser.add_argument("--stall-s", type=float, default=3.0)
    parser.add_argument("--read-before-s", type=float, default=1.0)
    parser.add_argument("--drop-s", type=float, default=0.3)
    parser.add_argument("--clock-step-s", type=float, default=0.0)
    parser.add_argument("--clock-step-after-calls", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    device = None if args.device in (None, "default") else args.device
    calls = 0

    def clock() -> float:
        """The wall clock, stepped by --clock-step-s once the source has read it
        --clock-step-after-calls times (it reads it once per PortAudio callback)."""
        nonlocal calls
        calls += 1
        stepped = calls > args.clock_step_after_calls
        return time.time() + (args.clock_step_s if stepped else 0.0)

    source = MicrophoneSource(
        "test",
        device,
        args.sample_rate,
        clock=clock,
        buffer_s=args.buffer_s,
        stall_s=args.stall_s,
    )
    chunks: list[AudioChunk] = []
    meta: dict[str, object] = {}
    try:
        source.start()
    except SourceError as exc:
        meta["error"] = str(exc)
        save(args.out, chunks, meta)
        return 3
    deadline = time.monotonic() + SAFETY_S
    try:
        if args.mode == "drop":
            collect(source, chunks, args.read_before_s, deadline)
            while source.stats()["dropped_s"] < args.drop_s and time.monotonic() < deadline:
                time.sleep(0.02)
            meta["gap_after_chunk"] = len(chunks) - 1
        if args.mode == "stall":
            collect(source, chunks, 0.5, deadline)
            say("recording")
            while not source.finished and time.monotonic() < deadline:
                chunk = source.read(1.0)
                if chunk is not None:
                    chunks.append(chunk)
            say("finished" if source.finished else "still running")
        else:
            collect(source, chunks, args.seconds, deadline)
        meta.update(stats=source.stats(), finished=source.finished, error=source.error)
    finally:
        source.stop()
    save(args.out, chunks, meta)
    return 0


def collect(
    source: MicrophoneSource, chunks: list[AudioChunk], seconds: float, deadline: float
) -> None:
    """Read until `seconds` more audio arrived (or the source ended)."""
    wanted = sum(len(c.samples) for c in chunks) + round(seconds * source.sample_rate)
    while sum(len(c.samples) for c in chunks) < wanted and time.monotonic() < deadline:
        chunk = source.read(1.0)
        if chunk is not None:
            chunks.append(chunk)
        elif source.finished:
            return


def save(path: Path, chunks: list[AudioChunk], meta: dict[str, object]) -> None:
    samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
    np.savez(
        path,
        samples=samples,
        timestamps=np.array([c.timestamp for c in chunks], np.float64),
        sizes=np.array([len(c.samples) for c in chunks], np.int64),
        meta=np.array(json.dumps(meta)),
    )


if __name__ == "__main__":
    sys.exit(main())
