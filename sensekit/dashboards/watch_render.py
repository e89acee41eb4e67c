"""`sensekit watch`'s picture: a `WatchState` turned into lines of text of a given size.

Pure: the same state, size, time and character set always give the same lines, so the
terminal loop, the plain-text mode (`--once`, pipes) and the tests share one renderer. Every
line fits the width (cut with "…"); a frame taller than the terminal shows a window of the
body, `scroll` lines down, with a last line saying what is hidden. No size is too small: a
1×1 terminal gets one character of the header.

Bars are proportional to the window's total (people for expressions, speech windows for
voice arousal), so a full bar means "everyone" and zones can be compared at a glance. The
block characters have eighth-cell steps; `Charset.ASCII` draws `#` for terminals without
UTF-8.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sensekit.dashboards.watch_state import (
    DeviceState,
    Liveness,
    StatsSummary,
    VoiceView,
    WatchState,
    WindowView,
    ZoneState,
    age_text,
)

TWO_COLUMNS_FROM = 60
"""Expression bars sit in two columns from this width (an 80×24 terminal shows two zones
and their device without scrolling); one per line below it."""

MAX_BAR = 30
PARTIAL_BLOCKS = ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")
LABELS = {"unclassified": "unclass."}
ASCII_SIGNS = str.maketrans({"·": "|", "—": "-", "–": "-", "▸": ">", "…": "~", "×": "x"})


class Charset(StrEnum):
    UNICODE = "unicode"
    ASCII = "ascii"


class Style(StrEnum):
    """How the terminal loop should emphasise a line; the plain mode ignores it."""

    NORMAL = "normal"
    TITLE = "title"  # the header and device names
    ALERT = "alert"  # a dead device, a degraded list
    DIM = "dim"  # hints and the scroll indicator


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    style: Style = Style.NORMAL


@dataclass(frozen=True, slots=True)
class Frame:
    """The lines to draw and the scroll offset actually used (clamped to the content)."""

    lines: list[Line]
    scroll: int
    body_lines: int


def render_frame(
    state: WatchState,
    width: int,
    height: int | None,
    now: float,
    *,
    scroll: int = 0,
    source: str = "",
    charset: Charset = Charset.UNICODE,
    hint: str = "",
) -> Frame:
    """The header and as much of the body as fits in `height` rows (None: all of it)."""
    if width < 1 or (height is not None and height < 1):
        return Frame([], 0, 0)
    header_line = Line(header_text(state, now, source, hint, width), Style.TITLE)
    header = _fit(header_line, width, charset)
    body = [_fit(line, width, charset) for line in body_lines(state, width, now, charset)]
    if height is None:
        return Frame([header, *body], 0, len(body))
    room = height - 1
    if len(body) <= room:
        return Frame([header, *body], 0, len(body))
    if room < 2:  # no space for a body and an indicator: the header alone says what this is
        return Frame([header][:height], 0, len(body))
    visible = room - 1
    top = min(max(scroll, 0), len(body) - visible)
    shown = body[top : top + visible]
    arrows = "↑↓ PgUp PgDn" if charset is Charset.UNICODE else "up/down PgUp PgDn"
    more = f"-- lines {top + 1}-{top + visible} of {len(body)} ({arrows} to scroll) --"
    if len(more) > width:
        more = f"-- {top + 1}-{top + visible}/{len(body)} --"
    indicator = _fit(Line(more, Style.DIM), width, charset)
    return Frame([header, *shown, indicator], top, len(body))


def frame_text(
    state: WatchState,
    width: int,
    now: float,
    *,
    source: str = "",
    charset: Charset = Charset.UNICODE,
) -> str:
    """The whole picture as plain text (the `--once` and pipe output)."""
    frame = render_frame(state, width, None, now, source=source, charset=charset)
    return "\n".join(line.text.rstrip() for line in frame.lines)


def header_text(state: WatchState, now: float, source: str, hint: str, width: int) -> str:
    """Time, source and counts; the title and the key hint only when they fit (on a narrow
    terminal the counts matter more than the name of the program)."""
    devices = state.sorted_devices()
    dead = sum(1 for d in devices if d.liveness(now)[0] is Liveness.DEAD)
    count = f"{_plural(len(devices), 'device')}, {_plural(state.zone_count(), 'zone')}"
    if dead:
        count += f" ({dead} dead)"
    essential = [_clock(now), *([source] if source else []), count]
    title = "sensekit watch"
    hints = [hint] if hint else []
    for parts in ([title, *essential, *hints], [title, *essential], essential):
        text = " · ".join(parts)
        if len(text) <= width:
            return text
    return text


def body_lines(state: WatchState, width: int, now: float, charset: Charset) -> list[Line]:
    lines: list[Line] = []
    devices = state.sorted_devices()
    if not devices:
        lines.append(Line(f"no sensekit messages yet under {state.prefix}/", Style.DIM))
    for device in devices:
        lines.extend(device_lines(device, width, now))
        for name in sorted(device.zones):
            lines.extend(zone_lines(device.zones[name], width, now, charset))
    if state.malformed:
        lines.append(
            Line(
                f"{_plural(state.malformed, 'message')} not understood; last: {state.last_problem}"
            )
        )
    return lines


# a device --------------------------------------------------------------------------------
def device_lines(device: DeviceState, width: int, now: float) -> list[Line]:
    liveness, reason = device.liveness(now)
    status = device.status
    status_text = "no status"
    if status is not None:
        since = "" if status.since is None else f" {age_text(now - status.since)} ago"
        if status.state == "offline" and status.since is None:
            since = " (retained, since before watching)"
        status_text = f"{status.state}{since}"
    if liveness is Liveness.DEAD and status is not None and status.state == "offline":
        head = f"DEAD: {status_text} (last will)"
    elif liveness is Liveness.DEAD:
        head = f"DEAD: {reason} · status {status_text}"
    elif liveness is Liveness.WAITING:
        head = f"{status_text}, {reason}"
    else:
        head = status_text
    items = [device.key, head]
    stats = device.stats
    if stats is not None:
        every = "" if stats.interval_s is None else f" (every {age_text(stats.interval_s)})"
        items.append(f"stats {age_text(now - stats.received_at)} ago{every}")
        if stats.uptime_s is not None:
            items.append(f"up {age_text(stats.uptime_s)}")
    style = Style.ALERT if liveness is Liveness.DEAD else Style.TITLE
    lines = [Line(text, style) for text in _wrap(items, width, indent="    ")]
    if stats is not None:
        lines.extend(
            Line(text) for text in _wrap(stats_items(stats), width, first="  ", indent="    ")
        )
        if stats.degraded:
            degraded = ["degraded:", *(f"{item};" for item in stats.degraded[:-1])]
            degraded.append(stats.degraded[-1])
            lines.extend(
                Line(text, Style.ALERT)
                for text in _wrap(degraded, width, first="  ", indent="    ", separator=" ")
            )
    return lines


def stats_items(stats: StatsSummary) -> list[str]:
    items: list[str] = []
    for camera in stats.cameras:
        fps = "?" if camera.processed_fps is None else f"{camera.processed_fps:.1f}"
        dropped = "?" if camera.frames_dropped is None else str(camera.frames_dropped)
        text = f"cam {camera.name} {fps} fps, {dropped} dropped"
        if camera.state != "ok":
            text += f" [{camera.state}]"
        if camera.error:
            text += f" ({camera.error})"
        items.append(text)
    for mic in stats.microphones:
        text = f"mic {mic.name} {mic.state}"
        if mic.dropped_s:
            text += f", {mic.dropped_s:.1f}s dropped"
        if mic.error:
            text += f" ({mic.error})"
        items.append(text)
    items.append("spool off" if stats.spool_depth is None else f"spool {stats.spool_depth}")
    items.append(f"mqtt {stats.mqtt_state or '?'}")
    if not stats.degraded:
        items.append("degraded: none")
    return items


# a zone ----------------------------------------------------------------------------------
def zone_lines(zone: ZoneState, width: int, now: float, charset: Charset) -> list[Line]:
    window = zone.window
    marker = "▸" if charset is Charset.UNICODE else ">"
    if window is None:
        return [Line(f"  {marker} {zone.name}: no window yet", Style.DIM)]
    items = [f"  {marker} {zone.name}", _span(window, now, charset)]
    if window.faces is not None:
        items.append(f"people {window.faces.people}")
        items.append(f"score {_score(window.faces.score, charset)}")
    if not window.complete:
        items.append("INCOMPLETE (closed early)")
    if window.dp_epsilon is not None:
        items.append(f"noise eps={window.dp_epsilon:g}")
    if zone.duplicates or zone.late:
        items.append(f"ignored {zone.duplicates} repeated, {zone.late} late")
    items.append(f"received {age_text(now - window.received_at)} ago")
    lines = [Line(text) for text in _wrap(items, width, indent="      ")]
    faces = window.faces
    if faces is None:
        lines.append(Line("    faces: none this window (no camera data)", Style.DIM))
    else:
        counts = [*faces.expressions, ("unclassified", faces.unclassified)]
        lines.extend(Line(text) for text in _count_bars(counts, faces.people, width, charset))
    voice = window.voice
    if voice is not None and width >= TWO_COLUMNS_FROM:
        lines.append(Line(_voice_line(voice, width, charset)))
    elif voice is not None:
        lines.append(Line(f"    voice {voice.windows} speech windows:"))
        arousal = list(voice.arousal)
        lines.extend(Line(text) for text in _count_bars(arousal, voice.windows, width, charset))
    return lines


def _count_bars(
    counts: list[tuple[str, int]], total: int, width: int, charset: Charset
) -> list[str]:
    digits = max(3, *(len(str(count)) for _, count in counts))
    label_width = max(len(LABELS.get(name, name)) for name, _ in counts)

    def cell(name: str, count: int, cell_width: int) -> str:
        text = f"{LABELS.get(name, name):<{label_width}} {count:>{digits}} "
        return text + bar(count, total, min(cell_width - len(text), MAX_BAR), charset)

    if width >= TWO_COLUMNS_FROM:
        column = (width - 4 - 2) // 2
        half = (len(counts) + 1) // 2
        left, right = counts[:half], counts[half:]
        rows = []
        for index, (name, count) in enumerate(left):
            text = f"    {cell(name, count, column):<{column}}"
            if index < len(right):
                text += "  " + cell(*right[index], column)
            rows.append(text.rstrip())
        return rows
    return [f"    {cell(name, count, width - 4)}".rstrip() for name, count in counts]


def _voice_line(voice: VoiceView, width: int, charset: Charset) -> str:
    """The three arousal levels side by side, each bar padded to the same width so the
    levels stay in place from one window to the next."""
    head = f"    voice {voice.windows} speech windows:"
    digits = max(len(str(count)) for _, count in voice.arousal)
    labels = [(f" {level} {count:>{digits}} ", count) for level, count in voice.arousal]
    fixed = len(head) + sum(len(label) for label, _ in labels)
    bar_width = max(0, min((width - fixed) // 3, MAX_BAR // 2))
    cells = [
        f"{label}{bar(count, voice.windows, bar_width, charset):<{bar_width}}"
        for label, count in labels
    ]
    return (head + "".join(cells)).rstrip()


def bar(count: int, total: int, width: int, charset: Charset = Charset.UNICODE) -> str:
    """`count` of `total` as a bar of at most `width` cells; a non-zero count never vanishes."""
    if width <= 0 or total <= 0 or count <= 0:
        return ""
    share = min(count / total, 1.0)
    if charset is Charset.ASCII:
        return "#" * max(1, round(share * width))
    eighths = max(1, round(share * width * 8))
    return "█" * (eighths // 8) + PARTIAL_BLOCKS[eighths % 8]


# text helpers ----------------------------------------------------------------------------
def _wrap(
    items: Iterable[str], width: int, *, indent: str, first: str = "", separator: str = " · "
) -> list[str]:
    """Items joined on a line while they fit, continuing on lines indented by `indent` (the
    first line by `first`); an item longer than a line is left to `_fit` to cut."""
    lines: list[str] = []
    current = ""
    for item in items:
        if not current:
            current = first + item
        elif len(current) + len(separator) + len(item) <= width:
            current += separator + item
        else:
            lines.append(current)
            current = indent + item
    if current:
        lines.append(current)
    return lines


def _fit(line: Line, width: int, charset: Charset) -> Line:
    text = line.text
    if charset is Charset.ASCII:
        text = text.translate(ASCII_SIGNS).encode("ascii", "replace").decode("ascii")
    if len(text) > width:
        cut = "…" if charset is Charset.UNICODE else "~"
        text = text[: width - 1] + cut if width > 1 else text[:1]
    return Line(text, line.style)


def _span(window: WindowView, now: float, charset: Charset) -> str:
    start = datetime.fromtimestamp(window.start, tz=UTC)
    end = datetime.fromtimestamp(window.end, tz=UTC)
    dash = "–" if charset is Charset.UNICODE else "-"
    text = f"{start:%H:%M:%S}{dash}{end:%H:%M:%S}Z"
    if start.date() != datetime.fromtimestamp(now, tz=UTC).date():
        text = f"{start:%Y-%m-%d} {text}"
    return text


def _score(score: float | None, charset: Charset) -> str:
    if score is None:
        return "—" if charset is Charset.UNICODE else "n/a"
    return f"{score:+.1f}"


def _clock(now: float) -> str:
    return f"{datetime.fromtimestamp(now, tz=UTC):%H:%M:%SZ}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
