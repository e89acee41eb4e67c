"""When sensing is allowed: the configured opening hours as instants on the Unix time line.

Outside the opening hours the cameras and microphones are closed, not merely ignored, so the
daemon needs two answers: "may the sensors be open now?" (`is_open`) and "when must I look
again?" (`next_change`), the latter so that it can sleep until the next boundary instead of
polling. Both take the time as an argument and never read the clock, which keeps them pure and
testable at any date, DST transitions included.

The hours are written in local wall-clock time, but the clock the daemon sleeps on is UTC. Every
span is therefore turned into an interval of instants `[open, close)` once per local day, and
both answers are read off the same intervals, so `is_open` can never disagree with
`next_change`. The rules that turn wall-clock times into instants:

- A span belongs to the local day it starts on; `close` earlier than `open` ends on the next
  day (fri 18:00-02:00 covers Friday 18:00 to Saturday 02:00). `24:00` is the midnight that
  ends the day.
- A closed date cancels the spans that *start* on it. An overnight span from the day before
  still runs into it: a bar open fri 18:00-02:00 with Saturday closed still closes at 02:00 on
  Saturday morning, as its staff would expect.
- A wall-clock time that does not exist (the spring-forward gap, Europe/Paris 02:00-03:00 on
  2026-03-29) means the moment the clocks jump: the first instant whose wall clock reads that
  time or later. This is what a clock on the wall would show, so a span opening at 02:30 opens
  at 03:00 summer time, and a span lying wholly inside the gap does not happen that night.
- A wall-clock time that occurs twice (the fall-back hour, Europe/Paris 02:00-03:00 on
  2026-10-25) means its first occurrence (zoneinfo's `fold=0`), so a span opens and closes
  only once and is never reopened by the clocks going back.

Together these make the wall-clock-to-instant mapping non-decreasing, so spans that touch in
wall-clock time (22:00-24:00 and 00:00-06:00) also touch as instants, with no spurious change
between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sensekit.config import OpeningHours, ScheduleConfig, Weekday

_WEEKDAYS: tuple[Weekday, ...] = tuple(Weekday)
"""Index = `date.weekday()`: mon is 0."""

_MINUTES_PER_DAY = 24 * 60
_WINDOW_DAYS = 8
"""Days whose changes one search step can report: more than a week, so that every weekday of
the pattern is seen at least once per step."""
_HORIZON_DAYS = 371
"""How far past the last irregularity (the asked time, the last closed date) the search goes
before concluding that the state never changes: a whole year of DST transitions plus a week,
since a change can hide in a DST gap on one date and show on every other."""
_DAY_CACHE_LIMIT = 1024
_DESCRIBED_CLOSED_DATES = 5
"""More closed dates than this are summarised by a count, to keep `describe` to one line."""


@dataclass(frozen=True, slots=True)
class _Span:
    """One configured span, in minutes from the local midnight of the day it starts on."""

    weekdays: frozenset[int]
    open_minute: int
    close_minute: int
    """Past `open_minute`; above 1440 for a span that runs into the next day."""
    text: str
    """As written in the config, for `describe`."""


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _span(hours: OpeningHours) -> _Span:
    opens = _minutes(hours.open)
    closes = _minutes(hours.close)
    if closes <= opens:
        closes += _MINUTES_PER_DAY
    weekdays = frozenset(_WEEKDAYS.index(day) for day in hours.days)
    return _Span(weekdays, opens, closes, f"{_describe_days(weekdays)} {hours.open}-{hours.close}")


def day_runs(weekdays: Iterable[int]) -> list[list[int]]:
    """Weekday numbers (0 = Monday) grouped into runs of consecutive days, in week order: what
    both the log line and the visitor notice write as ranges."""
    runs: list[list[int]] = []
    for day in sorted(set(weekdays)):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def _describe_days(weekdays: Iterable[int]) -> str:
    """Runs of three or more days as a range (mon-fri), shorter ones listed (sat,sun)."""
    parts: list[str] = []
    for run in day_runs(weekdays):
        if len(run) >= 3:
            parts.append(f"{_WEEKDAYS[run[0]]}-{_WEEKDAYS[run[-1]]}")
        else:
            parts.extend(str(_WEEKDAYS[day]) for day in run)
    return ",".join(parts)


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping and touching intervals as one: a change is only where the state flips."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


class OperatingSchedule:
    """The opening hours of one site, answering for any instant (see the module docstring for
    how wall-clock times, closed dates and DST transitions are read).

    No opening hours means open at any time, except on the closed dates if some are given: a
    configured holiday is honoured rather than silently ignored.
    """

    def __init__(
        self, *, timezone: str, hours: Sequence[OpeningHours], closed_dates: Iterable[date]
    ) -> None:
        self._timezone_name = timezone
        self._zone = ZoneInfo(timezone)
        self._closed = frozenset(closed_dates)
        self._last_closed = max(self._closed, default=None)
        spans = [_span(span) for span in hours]
        if not spans and self._closed:
            # Open all day every day, so that the closed dates are the only changes.
            spans = [_Span(frozenset(range(7)), 0, _MINUTES_PER_DAY, "")]
        self._spans = tuple(spans)
        self._has_hours = bool(hours)
        self._by_weekday = tuple(
            tuple(span for span in self._spans if weekday in span.weekdays) for weekday in range(7)
        )
        self._days: dict[date, tuple[tuple[float, float], ...]] = {}
        self._last_answer: tuple[float, float | None] | None = None

    @classmethod
    def from_config(cls, config: ScheduleConfig) -> OperatingSchedule:
        return cls(timezone=config.timezone, hours=config.hours, closed_dates=config.closed_dates)

    @property
    def always_open(self) -> bool:
        """Open at every instant: no opening hours and no closed dates. The daemon can then skip
        the schedule entirely."""
        return not self._spans

    def is_open(self, timestamp: float) -> bool:
        """Whether sensing is allowed at `timestamp` (Unix seconds)."""
        if not self._spans:
            return True
        day = self._local_date(timestamp)
        # Yesterday's overnight spans run into today; one more day on each side costs little
        # and spares an argument about how far a DST transition can move a boundary.
        return any(
            start <= timestamp < end
            for offset in range(-2, 2)
            for start, end in self._intervals(day + timedelta(days=offset))
        )

    def next_change(self, timestamp: float) -> float | None:
        """The earliest instant strictly after `timestamp` at which `is_open` changes value, or
        None if it never does.

        The last answer is remembered: it holds for every time from the one asked up to the
        change it found, so a caller asking once a second recomputes only after each change.
        """
        if not self._spans:
            return None
        last = self._last_answer
        if last is not None:
            asked, change = last
            if asked <= timestamp and (change is None or timestamp < change):
                return change
        change = self._find_change(timestamp)
        self._last_answer = (timestamp, change)
        return change

    def describe(self) -> str:
        """One line for the logs, e.g. "mon-fri 08:30-19:30, sat 10:00-18:00 (Europe/Paris);
        closed on 2026-12-25"."""
        hours = ", ".join(span.text for span in self._spans) if self._has_hours else "always open"
        text = f"{hours} ({self._timezone_name})"
        if self._closed:
            closed = sorted(self._closed)
            listed = ", ".join(day.isoformat() for day in closed[:_DESCRIBED_CLOSED_DATES])
            more = len(closed) - _DESCRIBED_CLOSED_DATES
            text += f"; closed on {listed}" + (f" and {more} more dates" if more > 0 else "")
        return text

    def _find_change(self, timestamp: float) -> float | None:
        """Scan windows of local days forward until the open intervals show a boundary.

        A window of days holds the intervals of the spans starting from three days before its
        first day to two days after its last (a span lasts less than two days), so every instant
        of its own days is fully known. Only edges within its own days are taken: the merged
        intervals also end where the window was cut, and those edges are not changes.
        """
        day = self._local_date(timestamp)
        horizon = max(day, self._last_closed or day) + timedelta(days=_HORIZON_DAYS)
        while day <= horizon:
            end = day + timedelta(days=_WINDOW_DAYS)
            lower = max(timestamp, self._instant(day, 0))
            limit = self._instant(end, 0)
            intervals = _merge(
                interval
                for offset in range(-3, _WINDOW_DAYS + 2)
                for interval in self._intervals(day + timedelta(days=offset))
            )
            for start, stop in intervals:
                for edge in (start, stop):
                    if lower <= edge < limit and edge > timestamp:
                        return edge
            day = end
        return None

    def _local_date(self, timestamp: float) -> date:
        return datetime.fromtimestamp(timestamp, self._zone).date()

    def _intervals(self, day: date) -> tuple[tuple[float, float], ...]:
        """The `[open, close)` instants of the spans starting on the local `day`, cached: the
        once-a-second caller and the window scans ask for the same days again and again."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        intervals: list[tuple[float, float]] = []
        if day not in self._closed:
            for span in self._by_weekday[day.weekday()]:
                start = self._instant(day, span.open_minute)
                end = self._instant(day, span.close_minute)
                if start < end:  # a span wholly inside a DST gap does not happen
                    intervals.append((start, end))
        if len(self._days) >= _DAY_CACHE_LIMIT:
            self._days.clear()
        result = tuple(intervals)
        self._days[day] = result
        return result

    def _instant(self, day: date, minute: int) -> float:
        """The instant at which the local wall clock reads `minute` minutes past the midnight
        that starts `day`: the first occurrence of an ambiguous time, and for a time that does
        not exist, the moment the clocks jump over it."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minute)
        first = wall.replace(tzinfo=self._zone, fold=0).timestamp()
        if datetime.fromtimestamp(first, self._zone).replace(tzinfo=None) == wall:
            return first
        # In a gap, fold=0 reads the wall time with the offset from before the jump and fold=1
        # with the one after; the jump lies between the two readings. Search it to the second
        # (offsets are whole seconds) for the first instant whose wall clock reads `wall` or
        # later.
        second = wall.replace(tzinfo=self._zone, fold=1).timestamp()
        before, after = int(min(first, second)), int(max(first, second))
        while after - before > 1:
            middle = (before + after) // 2
            if datetime.fromtimestamp(middle, self._zone).replace(tzinfo=None) >= wall:
                after = middle
            else:
                before = middle
        return float(after)
