"""Opening hours as instants: spans, overnight spans, closed dates and DST transitions.

Expected instants are built with datetime from local wall-clock times (or written in UTC where
the DST rule is the point), never with the module's own arithmetic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensekit.config import ScheduleConfig, Weekday
from sensekit.privacy.schedule import OperatingSchedule

PARIS = ZoneInfo("Europe/Paris")
SPRING_FORWARD = date(2026, 3, 29)  # a Sunday: 02:00 CET -> 03:00 CEST
FALL_BACK = date(2026, 10, 25)  # a Sunday: 03:00 CEST -> 02:00 CET
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
EVERY_DAY = [*WEEKDAYS, "sat", "sun"]


def span(days: list[str], open_: str, close: str) -> dict[str, Any]:
    return {"days": days, "open": open_, "close": close}


def config(
    *hours: dict[str, Any], timezone: str = "Europe/Paris", closed: tuple[str, ...] = ()
) -> ScheduleConfig:
    return ScheduleConfig.model_validate(
        {"timezone": timezone, "hours": list(hours), "closed_dates": list(closed)}
    )


def schedule(
    *hours: dict[str, Any], timezone: str = "Europe/Paris", closed: tuple[str, ...] = ()
) -> OperatingSchedule:
    return OperatingSchedule.from_config(config(*hours, timezone=timezone, closed=closed))


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0, **kw: int) -> float:
    """An unambiguous Paris wall-clock time as Unix seconds."""
    return datetime(year, month, day, hour, minute, tzinfo=PARIS, **kw).timestamp()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


# --- simple spans -------------------------------------------------------------------------------


def test_a_weekday_span_is_open_from_open_up_to_but_not_including_close() -> None:
    shop = schedule(span(WEEKDAYS, "09:00", "18:00"))
    wednesday = (2026, 6, 10)
    assert not shop.is_open(paris(*wednesday, 8, 59, second=59))
    assert shop.is_open(paris(*wednesday, 9, 0))
    assert shop.is_open(paris(*wednesday, 17, 59, second=59))
    assert not shop.is_open(paris(*wednesday, 18, 0))
    assert shop.next_change(paris(*wednesday, 7, 0)) == paris(*wednesday, 9, 0)
    assert shop.next_change(paris(*wednesday, 9, 0)) == paris(*wednesday, 18, 0)
    assert shop.next_change(paris(*wednesday, 18, 0)) == paris(2026, 6, 11, 9, 0)


def test_the_weekend_stays_closed_until_monday_morning() -> None:
    shop = schedule(span(WEEKDAYS, "09:00", "18:00"))
    assert not shop.is_open(paris(2026, 6, 13, 12, 0))  # Saturday
    assert not shop.is_open(paris(2026, 6, 14, 12, 0))  # Sunday
    assert shop.next_change(paris(2026, 6, 12, 18, 0)) == paris(2026, 6, 15, 9, 0)


def test_several_spans_on_one_day_close_between_them() -> None:
    shop = schedule(span(["mon"], "09:00", "12:00"), span(["mon"], "14:00", "18:00"))
    monday = (2026, 6, 8)
    assert not shop.is_open(paris(*monday, 13, 0))
    assert shop.next_change(paris(*monday, 10, 0)) == paris(*monday, 12, 0)
    assert shop.next_change(paris(*monday, 12, 0)) == paris(*monday, 14, 0)


def test_an_overnight_span_runs_into_the_next_morning() -> None:
    bar = schedule(span(["fri"], "18:00", "02:00"))
    assert not bar.is_open(paris(2026, 6, 12, 17, 59))
    assert bar.is_open(paris(2026, 6, 12, 18, 0))
    assert bar.is_open(paris(2026, 6, 13, 0, 0))  # Saturday
    assert bar.is_open(paris(2026, 6, 13, 1, 59, second=59))
    assert not bar.is_open(paris(2026, 6, 13, 2, 0))
    assert not bar.is_open(paris(2026, 6, 12, 1, 0))  # Friday morning: Thursday has no span
    assert bar.next_change(paris(2026, 6, 12, 20, 0)) == paris(2026, 6, 13, 2, 0)
    assert bar.next_change(paris(2026, 6, 13, 2, 0)) == paris(2026, 6, 19, 18, 0)


def test_close_at_24_00_is_the_midnight_that_ends_the_day() -> None:
    late = schedule(span(["sat"], "20:00", "24:00"))
    assert late.is_open(paris(2026, 6, 13, 23, 59, second=59))
    assert not late.is_open(paris(2026, 6, 14, 0, 0))
    assert late.next_change(paris(2026, 6, 13, 21, 0)) == paris(2026, 6, 14, 0, 0)


def test_spans_that_touch_at_midnight_make_no_change_there() -> None:
    late = schedule(span(["sat"], "20:00", "24:00"), span(["sun"], "00:00", "03:00"))
    assert late.is_open(paris(2026, 6, 14, 0, 0))
    assert late.next_change(paris(2026, 6, 13, 21, 0)) == paris(2026, 6, 14, 3, 0)


def test_overlapping_spans_change_only_at_the_edges_of_their_union() -> None:
    shop = schedule(span(["mon"], "09:00", "13:00"), span(["mon"], "12:00", "18:00"))
    assert shop.next_change(paris(2026, 6, 8, 10, 0)) == paris(2026, 6, 8, 18, 0)


def test_the_time_zone_decides_the_local_day() -> None:
    tokyo = schedule(span(["mon"], "09:00", "10:00"), timezone="Asia/Tokyo")
    # 09:30 in Tokyo on Monday 2026-06-08 is 00:30 UTC the same day.
    assert tokyo.is_open(utc(2026, 6, 8, 0, 30))
    assert not tokyo.is_open(utc(2026, 6, 8, 9, 30))


# --- closed dates -------------------------------------------------------------------------------


def test_a_closed_date_closes_that_day_and_the_next_change_skips_it() -> None:
    shop = schedule(span(WEEKDAYS, "09:00", "18:00"), closed=("2026-12-25",))  # a Friday
    assert not shop.is_open(paris(2026, 12, 25, 12, 0))
    assert shop.is_open(paris(2026, 12, 24, 12, 0))
    assert shop.next_change(paris(2026, 12, 24, 12, 0)) == paris(2026, 12, 24, 18, 0)
    assert shop.next_change(paris(2026, 12, 24, 18, 0)) == paris(2026, 12, 28, 9, 0)


def test_an_overnight_span_from_the_day_before_still_runs_into_a_closed_date() -> None:
    bar = schedule(span(["fri", "sat"], "18:00", "02:00"), closed=("2026-12-26",))  # Saturday
    assert bar.is_open(paris(2026, 12, 26, 1, 0))  # Friday's span, into Saturday morning
    assert not bar.is_open(paris(2026, 12, 26, 20, 0))  # Saturday's own span is cancelled
    assert not bar.is_open(paris(2026, 12, 27, 1, 0))
    assert bar.next_change(paris(2026, 12, 25, 20, 0)) == paris(2026, 12, 26, 2, 0)
    assert bar.next_change(paris(2026, 12, 26, 2, 0)) == paris(2027, 1, 1, 18, 0)


def test_closing_the_start_day_cancels_the_whole_overnight_span() -> None:
    bar = schedule(span(["fri"], "18:00", "02:00"), closed=("2026-12-25",))
    assert not bar.is_open(paris(2026, 12, 25, 20, 0))
    assert not bar.is_open(paris(2026, 12, 26, 1, 0))


def test_closed_dates_without_hours_close_just_those_days() -> None:
    site = schedule(closed=("2026-12-25",))
    assert not site.always_open
    assert site.is_open(paris(2026, 12, 24, 23, 59))
    assert not site.is_open(paris(2026, 12, 25, 12, 0))
    assert site.next_change(paris(2026, 12, 1)) == paris(2026, 12, 25)
    assert site.next_change(paris(2026, 12, 25)) == paris(2026, 12, 26)
    assert site.next_change(paris(2026, 12, 26)) is None


def test_a_far_closed_date_is_found_beyond_a_week_of_constant_opening() -> None:
    site = schedule(span(EVERY_DAY, "00:00", "24:00"), closed=("2027-06-01",))
    assert site.next_change(paris(2026, 6, 1)) == paris(2027, 6, 1)
    assert site.next_change(paris(2027, 6, 2)) is None


def test_a_long_closure_is_crossed_to_the_reopening() -> None:
    days = tuple((date(2026, 8, 1) + timedelta(days=n)).isoformat() for n in range(21))
    shop = schedule(span(WEEKDAYS, "09:00", "18:00"), closed=days)
    assert shop.next_change(paris(2026, 7, 31, 18, 0)) == paris(2026, 8, 24, 9, 0)


# --- always open --------------------------------------------------------------------------------


def test_no_hours_and_no_closed_dates_is_always_open() -> None:
    site = schedule(timezone="UTC")
    assert site.always_open
    assert site.is_open(0.0)
    assert site.is_open(utc(2026, 3, 29, 2, 30))
    assert site.next_change(utc(2026, 3, 29)) is None
    assert site.describe() == "always open (UTC)"


def test_hours_covering_every_instant_never_change_but_are_not_always_open() -> None:
    site = schedule(span(EVERY_DAY, "00:00", "24:00"))
    assert not site.always_open  # configured hours; they merely happen to cover everything
    assert site.is_open(utc(2026, 10, 25, 1, 30))
    assert site.next_change(utc(2026, 10, 20)) is None


# --- DST transitions (Europe/Paris) -------------------------------------------------------------


def test_a_daily_span_opens_at_local_time_on_the_spring_forward_day() -> None:
    shop = schedule(span(EVERY_DAY, "09:00", "20:00"))
    # Saturday is still CET (UTC+1), Sunday is CEST (UTC+2).
    assert shop.next_change(utc(2026, 3, 28, 7, 0)) == utc(2026, 3, 28, 8, 0)
    assert shop.next_change(utc(2026, 3, 28, 8, 0)) == utc(2026, 3, 28, 19, 0)
    assert shop.next_change(utc(2026, 3, 28, 19, 0)) == utc(2026, 3, 29, 7, 0)
    assert shop.next_change(utc(2026, 3, 29, 7, 0)) == utc(2026, 3, 29, 18, 0)
    assert not shop.is_open(utc(2026, 3, 29, 6, 59))
    assert shop.is_open(paris(2026, 3, 29, 9, 0))


def test_a_daily_span_opens_at_local_time_on_the_fall_back_day() -> None:
    shop = schedule(span(EVERY_DAY, "09:00", "20:00"))
    # Saturday is still CEST (UTC+2), Sunday is CET (UTC+1).
    assert shop.next_change(utc(2026, 10, 24, 19, 0)) == utc(2026, 10, 25, 8, 0)
    assert shop.next_change(utc(2026, 10, 25, 8, 0)) == utc(2026, 10, 25, 19, 0)
    assert not shop.is_open(utc(2026, 10, 25, 7, 59))
    assert shop.is_open(paris(2026, 10, 25, 9, 0))


def test_an_overnight_span_over_the_transitions_lasts_an_hour_less_or_more() -> None:
    night = schedule(span(["sat"], "22:00", "04:00"))
    opens = night.next_change(utc(2026, 3, 28, 12, 0))
    assert opens == utc(2026, 3, 28, 21, 0)
    assert night.next_change(opens) == utc(2026, 3, 29, 2, 0)  # 5 hours
    opens = night.next_change(utc(2026, 10, 24, 12, 0))
    assert opens == utc(2026, 10, 24, 20, 0)
    assert night.next_change(opens) == utc(2026, 10, 25, 3, 0)  # 7 hours


def test_a_time_in_the_spring_gap_means_the_moment_the_clocks_jump() -> None:
    early = schedule(span(["sun"], "02:30", "05:00"))
    # 02:30 does not exist on 2026-03-29: the clocks go from 02:00 CET to 03:00 CEST (01:00 UTC).
    assert early.next_change(utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)
    assert early.is_open(paris(2026, 3, 29, 3, 0))
    assert early.next_change(utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 3, 0)


def test_a_span_wholly_inside_the_spring_gap_does_not_happen_that_night() -> None:
    ghost = schedule(span(["sun"], "02:10", "02:50"))
    # Next Sunday, 02:10 CEST is 00:10 UTC.
    assert ghost.next_change(utc(2026, 3, 28, 12, 0)) == utc(2026, 4, 5, 0, 10)


def test_an_ambiguous_fall_back_time_means_its_first_occurrence() -> None:
    night = schedule(span(["sat"], "22:00", "02:30"))
    # 02:30 occurs at 00:30 UTC (CEST) and again at 01:30 UTC (CET): the span ends at the first
    # and is not reopened when the clocks go back to 02:00.
    assert night.next_change(utc(2026, 10, 24, 21, 0)) == utc(2026, 10, 25, 0, 30)
    assert not night.is_open(utc(2026, 10, 25, 1, 15))
    assert night.next_change(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 31, 21, 0)
    early = schedule(span(["sun"], "02:30", "06:00"))
    assert early.next_change(utc(2026, 10, 24, 12, 0)) == utc(2026, 10, 25, 0, 30)
    assert early.next_change(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 5, 0)


@pytest.mark.parametrize("sunday", [SPRING_FORWARD, FALL_BACK])
def test_minute_by_minute_agrees_with_the_wall_clock_around_a_transition(sunday: date) -> None:
    """Boundaries away from the 02:00-03:00 hour are unaffected by the choices made for gaps and
    ambiguous times, so reading each minute's wall clock must give the same answer."""
    hours = [
        span(EVERY_DAY, "09:00", "20:00"),
        span(["sat"], "22:00", "04:00"),
        span(["sun"], "00:30", "01:30"),
    ]
    site = schedule(*hours)

    def wall_clock_says_open(timestamp: float) -> bool:
        local = datetime.fromtimestamp(timestamp, PARIS)
        minute = local.hour * 60 + local.minute
        for entry in hours:
            opens = int(entry["open"][:2]) * 60 + int(entry["open"][3:])
            closes = int(entry["close"][:2]) * 60 + int(entry["close"][3:])
            today = str(list(Weekday)[local.weekday()])
            yesterday = str(list(Weekday)[(local.weekday() - 1) % 7])
            if closes > opens and today in entry["days"] and opens <= minute < closes:
                return True
            if closes < opens and today in entry["days"] and minute >= opens:
                return True
            if closes < opens and yesterday in entry["days"] and minute < closes:
                return True
        return False

    start = datetime.combine(sunday - timedelta(days=1), datetime.min.time(), PARIS).timestamp()
    changes = []
    previous = site.is_open(start)
    for minute in range(3 * 24 * 60):
        instant = start + 60 * minute
        state = site.is_open(instant)
        assert state == wall_clock_says_open(instant), datetime.fromtimestamp(instant, PARIS)
        if state != previous:
            changes.append(instant)
        previous = state
    walked = [start]
    while (change := site.next_change(walked[-1])) is not None and change < start + 3 * 86400:
        walked.append(change)
    assert walked[1:] == changes


def test_remembered_answers_match_fresh_ones_when_asked_every_minute() -> None:
    hours = (span(WEEKDAYS, "08:30", "19:30"), span(["sat"], "22:00", "03:00"))
    remembering = schedule(*hours)
    start = paris(2026, 10, 22)
    for minute in range(0, 5 * 24 * 60, 7):
        instant = start + 60 * minute + 0.25
        assert remembering.next_change(instant) == schedule(*hours).next_change(instant)


# --- describe -----------------------------------------------------------------------------------


def test_describe_is_one_line_with_hours_zone_and_closed_dates() -> None:
    shop = schedule(
        span(WEEKDAYS, "08:30", "19:30"),
        span(["sat"], "10:00", "18:00"),
        closed=("2026-12-25",),
    )
    assert shop.describe() == (
        "mon-fri 08:30-19:30, sat 10:00-18:00 (Europe/Paris); closed on 2026-12-25"
    )


def test_describe_lists_short_runs_of_days_and_summarises_many_closed_dates() -> None:
    closed = tuple(f"2026-12-{day:02d}" for day in range(20, 27))
    bar = schedule(span(["sun", "fri", "sat", "mon"], "18:00", "02:00"), closed=closed)
    assert bar.describe() == (
        "mon,fri-sun 18:00-02:00 (Europe/Paris); closed on 2026-12-20, 2026-12-21, "
        "2026-12-22, 2026-12-23, 2026-12-24 and 2 more dates"
    )
    assert schedule(closed=("2026-12-25",), timezone="UTC").describe() == (
        "always open (UTC); closed on 2026-12-25"
    )


# --- property -----------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
CLOCKS = ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "23:00", "24:00"]


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


clocks = st.one_of(st.sampled_from(CLOCKS), st.integers(0, 24 * 60 - 1).map(_clock))
spans = st.builds(
    span,
    st.lists(st.sampled_from([str(day) for day in Weekday]), min_size=1, max_size=7, unique=True),
    clocks,
    clocks,
).filter(lambda entry: entry["open"] != entry["close"])
schedules = st.builds(
    lambda zone, hours, closed: config(
        *hours, timezone=zone, closed=tuple(day.isoformat() for day in closed)
    ),
    st.sampled_from(ZONES),
    st.lists(spans, max_size=4),
    st.lists(st.dates(date(2026, 1, 1), date(2027, 1, 31)), max_size=4),
)
# Plain times in 2026, and times within a few days of a DST transition in one of the zones.
TRANSITIONS = [
    utc(2026, 3, 29, 1, 0),
    utc(2026, 10, 25, 1, 0),
    utc(2026, 3, 8, 7, 0),
    utc(2026, 11, 1, 6, 0),
    utc(2026, 4, 4, 15, 0),
    utc(2026, 10, 3, 15, 30),
    utc(2026, 4, 5, 3, 0),
    utc(2026, 9, 6, 4, 0),
]
timestamps = st.one_of(
    st.floats(utc(2026, 1, 1), utc(2027, 1, 1)),
    st.builds(
        lambda base, shift: base + shift,
        st.sampled_from(TRANSITIONS),
        st.floats(-3 * 86400.0, 3 * 86400.0),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    schedules,
    timestamps,
    st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=5),
)
def test_the_state_holds_until_the_next_change_and_flips_there(
    schedule_config: ScheduleConfig, timestamp: float, fractions: list[float]
) -> None:
    site = OperatingSchedule.from_config(schedule_config)
    state = site.is_open(timestamp)
    change = site.next_change(timestamp)
    if change is None:
        for days in (0.5, 1, 3, 7, 30, 200):
            assert site.is_open(timestamp + days * 86400) == state
        return
    assert change > timestamp
    samples = [timestamp + (change - timestamp) * fraction for fraction in fractions]
    samples += [change - 0.001] if change - 0.001 >= timestamp else []
    for sample in (sample for sample in samples if sample < change):
        assert site.is_open(sample) == state, sample
        # A fresh schedule, so the remembered answer is not what is being checked.
        assert OperatingSchedule.from_config(schedule_config).next_change(sample) == change
    assert site.is_open(change) != state
