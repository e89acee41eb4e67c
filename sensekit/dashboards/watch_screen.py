"""The full-screen terminal loop of `sensekit watch`, on the standard library's curses.

One thread owns the screen and the model: it drains the feed (messages that paho's thread put
on a queue), redraws when the rendered frame changed (ages tick every second, so it checks a
few times a second) and reads keys with a short timeout. Everything drawn comes from
`watch_render.render_frame`; this module only places lines, maps styles to attributes, and
turns keys into scrolling. `curses.wrapper` restores the terminal however the loop ends
(`q`, Ctrl-C, SIGTERM via `stop`, or an error).
"""

from __future__ import annotations

import contextlib
import curses
import locale
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sensekit.dashboards.watch_render import Charset, Frame, Line, Style, render_frame
from sensekit.dashboards.watch_state import WatchState

TICK_MS = 250
"""Key-read timeout: how often the loop drains the queue and lets the ages move on."""

QUIT_KEYS = frozenset({ord("q"), ord("Q")})


class Feed(Protocol):
    """Where messages come from: a live broker, or nothing more (a replayed log)."""

    def drain(self, state: WatchState, wait_s: float = 0.0) -> int:
        """Apply the messages that arrived since the last call; returns how many."""
        ...

    def label(self) -> str:
        """What the header says about the source (broker and connection, or the log)."""
        ...

    def now(self) -> float:
        """The time the picture is judged at (a replay stays at the end of its log)."""
        ...


@dataclass(slots=True)
class Screen:
    state: WatchState
    feed: Feed
    stop: threading.Event
    charset: Charset = Charset.UNICODE


def terminal_charset() -> Charset:
    """Unicode bars only when the locale encodes UTF-8 (curses writes in the locale's
    encoding; block characters in a C locale would come out as garbage or raise)."""
    encoding = locale.getpreferredencoding(False).lower().replace("-", "")
    return Charset.UNICODE if encoding == "utf8" else Charset.ASCII


def run_screen(screen: Screen) -> None:
    """Show the live view until `q`, Ctrl-C (KeyboardInterrupt, raised to the caller after
    the terminal is restored) or `screen.stop`."""
    locale.setlocale(locale.LC_ALL, "")  # ncursesw needs the locale to write UTF-8
    # ncurses prefers LINES and COLUMNS from the environment to the terminal's real size, also
    # after a resize; some shells export them, and the picture would then keep its old size.
    for name in ("LINES", "COLUMNS"):
        os.environ.pop(name, None)
    screen.charset = terminal_charset()
    curses.wrapper(lambda window: _loop(window, screen))


def _loop(window: curses.window, screen: Screen) -> None:
    attributes = _attributes()
    with contextlib.suppress(curses.error):  # some terminals cannot hide the cursor
        curses.curs_set(0)
    window.keypad(True)
    window.timeout(TICK_MS)
    scroll = 0
    drawn: tuple[list[Line], tuple[int, int]] | None = None
    while not screen.stop.is_set():
        screen.feed.drain(screen.state)
        height, width = window.getmaxyx()
        frame = render_frame(
            screen.state,
            width,
            height,
            screen.feed.now(),
            scroll=scroll,
            source=screen.feed.label(),
            charset=screen.charset,
            hint="q quits",
        )
        scroll = frame.scroll
        if drawn != (frame.lines, (height, width)):
            _draw(window, frame, height, width, attributes)
            drawn = (frame.lines, (height, width))
        key = window.getch()
        if key in QUIT_KEYS:
            return
        if key in (curses.KEY_RESIZE, 12):  # 12: Ctrl-L, redraw everything
            curses.update_lines_cols()
            window.clear()
            drawn = None
            continue
        scroll = _scrolled(key, scroll, page=max(height - 2, 1), frame=frame)


def _scrolled(key: int, scroll: int, *, page: int, frame: Frame) -> int:
    moves: dict[int, Callable[[int], int]] = {
        curses.KEY_DOWN: lambda s: s + 1,
        ord("j"): lambda s: s + 1,
        curses.KEY_UP: lambda s: s - 1,
        ord("k"): lambda s: s - 1,
        curses.KEY_NPAGE: lambda s: s + page,
        ord(" "): lambda s: s + page,
        curses.KEY_PPAGE: lambda s: s - page,
        curses.KEY_HOME: lambda s: 0,
        ord("g"): lambda s: 0,
        curses.KEY_END: lambda s: frame.body_lines,
        ord("G"): lambda s: frame.body_lines,
    }
    move = moves.get(key)
    return max(move(scroll), 0) if move is not None else scroll


def _draw(
    window: curses.window, frame: Frame, height: int, width: int, attributes: dict[Style, int]
) -> None:
    window.erase()
    for row, line in enumerate(frame.lines[:height]):
        # Writing the bottom-right cell moves the cursor past the end and raises: stop short.
        room = width - 1 if row == height - 1 else width
        if room <= 0:
            continue
        # a terminal shrinking under us mid-draw raises: the next KEY_RESIZE redraws
        with contextlib.suppress(curses.error):
            window.addnstr(row, 0, line.text, room, attributes[line.style])
    window.noutrefresh()
    curses.doupdate()


def _attributes() -> dict[Style, int]:
    alert = curses.A_REVERSE
    if curses.has_colors():
        try:
            curses.start_color()
            curses.use_default_colors()
            curses.init_pair(1, curses.COLOR_RED, -1)
            alert = curses.color_pair(1) | curses.A_BOLD
        except curses.error:
            pass
    return {
        Style.NORMAL: curses.A_NORMAL,
        Style.TITLE: curses.A_BOLD,
        Style.ALERT: alert,
        Style.DIM: curses.A_DIM,
    }
