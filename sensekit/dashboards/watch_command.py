"""Live view of every sensekit device and zone on a broker, refreshed as messages arrive.

Per device: its status (online / offline / stopped, and since when), DEAD when its status is
offline or no stats arrived for 3 x the interval its stats announce, and the last stats:
processed fps and dropped frames per camera, microphones, spool depth, mqtt state, what is
degraded, uptime. Per zone: the last window's time span, people, the seven expressions and
unclassified as bars (a full bar is everyone), the net emotion score ("—" when nobody was
classified) and, with a microphone, the speech arousal (low / mid / high). A window closed
early is marked INCOMPLETE. Windows delivered twice (same window_id) or late (older than the
one shown) are ignored, as the MQTT contract asks.

Keys: q quits (Ctrl-C too), arrows / PgUp / PgDn / Home / End scroll when the picture is
taller than the terminal.

Modes:
  --broker URL            live view of a broker (full screen on a terminal)
  --broker URL --record F also append every message received to F (JSON lines, the log
                          `sensekit report` reads)
  --replay F              the final state of a recorded log (ages are counted from its last
                          message, as at the end of the recording)
  --once                  print one plain-text frame to stdout and exit: the end of a replayed
                          log, or what a broker holds after listening for 2 s (retained status,
                          windows and privacy manifests, plus anything published meanwhile)

When stdout is not a terminal (a pipe, a file, a CI job) no screen is drawn: a live view prints
a plain-text frame whenever something changed (at most once a second, and when a device goes
dead), separated by blank lines, until interrupted; a replay prints its final frame once.

The watcher only subscribes: it reads exactly what any dashboard on the broker reads.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import queue
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TextIO

from sensekit.dashboards.messages import (
    Message,
    TopicReader,
    add_broker_arguments,
    address_from_args,
    read_log,
    write_message,
)
from sensekit.dashboards.watch_render import Charset, frame_text
from sensekit.dashboards.watch_screen import Feed, Screen, run_screen
from sensekit.dashboards.watch_state import WatchState
from sensekit.errors import SensekitError

ONCE_LISTEN_S = 2.0
"""How long `--broker --once` listens before printing: retained messages arrive right after
the subscription, so this is mostly margin for a slow link."""

PLAIN_MIN_INTERVAL_S = 1.0
"""The plain (non-terminal) live mode prints at most one frame per this many seconds."""

MAX_PER_DRAIN = 5000
"""Messages applied per screen refresh: a broker full of retained windows must not freeze the
keys for long."""


class WatchUsageError(SensekitError):
    """Options that do not go together, or a file that cannot be written (exit code 2)."""

    exit_code = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_broker_arguments(parser, required=False)
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="also append every message received to FILE (JSON lines; with --broker)",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="show a recorded log (made with --record) instead of a live broker",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="print one plain-text frame of the state to stdout and exit (no full screen)",
    )


def run(args: argparse.Namespace) -> int:
    _check_usage(args)
    with _stop_on_sigterm() as stop:
        try:
            if args.replay is not None:
                return _replay(args, stop)
            return _live(args, stop)
        except KeyboardInterrupt:  # Ctrl-C is how a watch ends: not a failure
            return 0


def _check_usage(args: argparse.Namespace) -> None:
    if args.broker is None and args.replay is None:
        raise WatchUsageError("give --broker URL (a live broker) or --replay FILE (a recorded log)")
    if args.broker is not None and args.replay is not None:
        raise WatchUsageError("--broker and --replay exclude each other: watch one source")
    if args.record is not None and args.replay is not None:
        raise WatchUsageError("--record records a live broker: it does not go with --replay")


# sources -------------------------------------------------------------------------------------
class ReplayFeed:
    """A recorded log, already applied: nothing more arrives and time stands at its end."""

    def __init__(self, path: Path, at: float) -> None:
        self._label = f"replay of {path.name}"
        self._at = at

    def drain(self, state: WatchState, wait_s: float = 0.0) -> int:
        return 0

    def label(self) -> str:
        return self._label

    def now(self) -> float:
        return self._at


class LiveFeed:
    """Messages from a broker. `TopicReader` calls back on paho's network thread; the
    callback only puts the message on a queue, and the thread that owns the model (and the
    screen) takes them off in `drain`, records them and applies them: no lock around the
    model, and the record is written in the order the model saw."""

    def __init__(self, reader_args: argparse.Namespace, record: TextIO | None) -> None:
        self._queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._record = record
        self.address = address_from_args(reader_args)
        self.reader = TopicReader(self.address, self._queue.put, prefix=reader_args.prefix)

    def drain(self, state: WatchState, wait_s: float = 0.0) -> int:
        taken = 0
        try:
            message = self._queue.get(timeout=wait_s) if wait_s > 0 else self._queue.get_nowait()
            while True:
                if self._record is not None:
                    write_message(self._record, message)
                state.apply(message)
                taken += 1
                if taken >= MAX_PER_DRAIN:
                    break
                message = self._queue.get_nowait()
        except queue.Empty:
            pass
        return taken

    def label(self) -> str:
        return f"{self.address} ({'connected' if self.reader.connected else 'reconnecting'})"

    def now(self) -> float:
        return time.time()


def _replay(args: argparse.Namespace, stop: threading.Event) -> int:
    state = WatchState(prefix=args.prefix)
    for message in read_log(args.replay):  # a bad line raises MessageLogError (exit 2)
        state.apply(message)
    feed = ReplayFeed(args.replay, state.last_received or time.time())
    if args.once or not _interactive():
        _print_frame(state, feed)
        return 0
    run_screen(Screen(state, feed, stop))
    return 0


def _live(args: argparse.Namespace, stop: threading.Event) -> int:
    with _record_file(args.record) as record:
        feed = LiveFeed(args, record)
        state = WatchState(prefix=args.prefix)
        feed.reader.start()  # an unreachable or refusing broker raises BrokerError (exit 5)
        try:
            if args.once:
                deadline = time.monotonic() + ONCE_LISTEN_S
                while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                    feed.drain(state, wait_s=min(left, 0.25))
                _print_frame(state, feed)  # while still connected: the header says so
            elif _interactive():
                with _logging_held():  # a log line would scribble over the screen
                    run_screen(Screen(state, feed, stop))
            else:
                _plain_live(state, feed, stop)
        finally:
            feed.reader.stop()
            while feed.drain(state):  # record what arrived before the subscription ended
                pass
    return 0


def _plain_live(state: WatchState, feed: LiveFeed, stop: threading.Event) -> None:
    """Frames on stdout for a pipe or a log file: printed when the model changed or a device's
    condition changed with time, never more than once per PLAIN_MIN_INTERVAL_S."""
    printed_at = float("-inf")
    printed_signature: object = None
    dirty = True
    try:
        while not stop.is_set():
            dirty = feed.drain(state, wait_s=0.25) > 0 or dirty
            now = feed.now()
            signature = state.liveness_signature(now)
            if signature != printed_signature:
                dirty = True
            if dirty and time.monotonic() - printed_at >= PLAIN_MIN_INTERVAL_S:
                _print_frame(state, feed, leading_blank=printed_signature is not None)
                printed_at, printed_signature, dirty = time.monotonic(), signature, False
    except KeyboardInterrupt:
        pass
    if dirty:
        feed.drain(state)
        _print_frame(state, feed, leading_blank=printed_signature is not None)


# terminal and process plumbing ---------------------------------------------------------------
def _interactive() -> bool:
    """Full screen only with a terminal on both ends: keys in, picture out."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _print_frame(state: WatchState, feed: Feed, *, leading_blank: bool = False) -> None:
    width = shutil.get_terminal_size((80, 24)).columns
    encoding = (sys.stdout.encoding or "").lower().replace("-", "")
    charset = Charset.UNICODE if encoding == "utf8" else Charset.ASCII
    text = frame_text(state, max(width, 20), feed.now(), source=feed.label(), charset=charset)
    sys.stdout.write(("\n" if leading_blank else "") + text + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def _record_file(path: Path | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    try:
        handle = path.open("a", encoding="utf-8")
    except OSError as exc:
        raise WatchUsageError(f"--record {path}: cannot write: {exc.strerror}") from None
    with handle:
        yield handle


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """SIGTERM ends the watch like `q` (the terminal is restored, the record closed)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _logging_held() -> Iterator[None]:
    """While the screen is up, log records are kept instead of written to stderr; the
    warnings among them are written once the terminal is back."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING and len(kept) < 100:
                kept.append(record)

    root.handlers = [Keep()]
    try:
        yield
    finally:
        root.handlers = handlers
        for record in kept:
            for handler in handlers:
                handler.handle(record)
