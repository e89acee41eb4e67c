"""A zone's day as a trend: windows → zone → local day → time buckets → net emotion scores.

This is the arithmetic behind `sensekit report`, kept free of I/O and of the clock so the
numbers an operator sees can be checked against hand-made windows. The rules it follows are
the MQTT contract's:

- only `sensekit.window/4` messages count (other versions are counted and reported, not
  guessed at: their fields differ);
- a window delivered twice (delivery is at least once) counts once, by `window_id`;
- a window belongs to the bucket holding its `window_start`, in the operator's time zone;
- a bucket's (and the day's) score is the score of its **summed** counts, never an average of
  window scores (a window of 5 people must not weigh as much as one of 50);
- a bucket without classified visits has no score (None), which is not a score of 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sensekit.dashboards.messages import Message, parse_topic, parse_utc
from sensekit.errors import SensekitError
from sensekit.score import net_emotion_score, summed_expressions

WINDOW_SCHEMA = "sensekit.window/4"
EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class ReportError(SensekitError):
    """The data cannot give the report asked for (unknown zone, no windows that day, a window
    message that does not follow its schema). The message says what is available instead."""

    exit_code = 2


@dataclass(frozen=True, slots=True, order=True)
class ZoneKey:
    """A zone is only unique with its site and device: two devices may both have `inside`."""

    site: str
    device: str
    zone: str

    def __str__(self) -> str:
        return f"{self.site}/{self.device}/{self.zone}"


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """What the report needs from one window message (faces only: the score is about faces).
    A window whose zone has no camera has `has_faces` False and zero counts."""

    window_id: str
    key: ZoneKey
    start: float
    end: float
    expressions: Mapping[str, int]
    unclassified: int
    people: int
    has_faces: bool
    k_threshold: int
    dp_epsilon: float | None


@dataclass(frozen=True, slots=True)
class Collected:
    """The distinct windows found in a stream of messages, and what was left out and why."""

    windows: tuple[WindowCounts, ...]
    duplicates: int
    other_versions: Mapping[str, int]

    @property
    def zones(self) -> list[ZoneKey]:
        return sorted({w.key for w in self.windows})


@dataclass(frozen=True, slots=True)
class Bucket:
    """The summed counts of the windows that started in [start, end)."""

    start: datetime
    end: datetime
    windows: int
    people: int
    unclassified: int
    expressions: Mapping[str, int]
    score: float | None

    @property
    def classified(self) -> int:
        return sum(self.expressions.values())


@dataclass(frozen=True, slots=True)
class DayTrend:
    """One zone's day in buckets, plus the day's totals and what the reader must know about
    the data (noise, k, what was skipped)."""

    zone: ZoneKey
    day: date
    timezone: str
    bucket_minutes: int
    buckets: tuple[Bucket, ...]
    windows: int
    people: int
    unclassified: int
    expressions: Mapping[str, int]
    score: float | None
    noisy_windows: int
    dp_epsilons: tuple[float, ...]
    k_thresholds: tuple[int, ...]
    duplicates: int
    other_versions: Mapping[str, int]

    @property
    def classified(self) -> int:
        return sum(self.expressions.values())

    @property
    def day_start(self) -> datetime:
        return self.buckets[0].start

    @property
    def day_end(self) -> datetime:
        return self.buckets[-1].end

    def as_dict(self) -> dict[str, Any]:
        """The numbers as JSON-ready data (`sensekit report --json`)."""
        return {
            "site": self.zone.site,
            "device": self.zone.device,
            "zone": self.zone.zone,
            "date": self.day.isoformat(),
            "timezone": self.timezone,
            "bucket_minutes": self.bucket_minutes,
            "score": self.score,
            "windows": self.windows,
            "people": self.people,
            "classified": self.classified,
            "unclassified": self.unclassified,
            "expressions": dict(self.expressions),
            "noisy_windows": self.noisy_windows,
            "dp_epsilons": list(self.dp_epsilons),
            "k_thresholds": list(self.k_thresholds),
            "duplicates_dropped": self.duplicates,
            "other_versions_skipped": dict(self.other_versions),
            "buckets": [
                {
                    "start": b.start.isoformat(),
                    "end": b.end.isoformat(),
                    "windows": b.windows,
                    "people": b.people,
                    "classified": b.classified,
                    "unclassified": b.unclassified,
                    "expressions": dict(b.expressions),
                    "score": b.score,
                }
                for b in self.buckets
            ],
        }


# messages → distinct windows -----------------------------------------------------------------
def _window_counts(payload: Mapping[str, Any], topic: str) -> WindowCounts:
    try:
        faces = payload["faces"]
        if faces is not None:
            expressions = {name: int(faces["expressions"][name]) for name in EXPRESSIONS}
            unclassified, people = int(faces["unclassified"]), int(faces["people"])
        else:
            expressions, unclassified, people = dict.fromkeys(EXPRESSIONS, 0), 0, 0
        epsilon = payload["dp_epsilon"]
        return WindowCounts(
            window_id=str(payload["window_id"]),
            key=ZoneKey(str(payload["site"]), str(payload["device"]), str(payload["zone"])),
            start=parse_utc(str(payload["window_start"])),
            end=parse_utc(str(payload["window_end"])),
            expressions=expressions,
            unclassified=unclassified,
            people=people,
            has_faces=faces is not None,
            k_threshold=int(payload["k_threshold"]),
            dp_epsilon=None if epsilon is None else float(epsilon),
        )
    except KeyError as exc:
        problem = f"missing field {exc}"
    except (TypeError, ValueError) as exc:
        problem = str(exc)
    window = payload.get("window_id", "?")
    raise ReportError(
        f"window {window} on {topic} does not follow {WINDOW_SCHEMA}: {problem}"
    ) from None


def collect_windows(messages: Iterable[Message], prefix: str = "sensekit") -> Collected:
    """The distinct version-4 windows among `messages`, first delivery kept. Status, stats,
    privacy and foreign topics are ignored; empty (retained-clearing) messages too."""
    seen: dict[str, WindowCounts] = {}
    duplicates = 0
    other_versions: Counter[str] = Counter()
    for message in messages:
        parts = parse_topic(message.topic, prefix)
        if parts is None or parts.kind != "window" or message.payload is None:
            continue
        schema = str(message.payload.get("schema", "(none)"))
        if schema != WINDOW_SCHEMA:
            other_versions[schema] += 1
            continue
        window = _window_counts(message.payload, message.topic)
        if window.window_id in seen:
            duplicates += 1
            continue
        seen[window.window_id] = window
    return Collected(tuple(seen.values()), duplicates, dict(other_versions))


# choosing the zone and the day ---------------------------------------------------------------
def select_zone(zones: Sequence[ZoneKey], wanted: str | None) -> ZoneKey:
    """`wanted` as `site/device/zone` or a zone name found on only one device; None when the
    data holds only one zone. Anything else names the zones there are."""
    available = ", ".join(str(z) for z in sorted(zones)) or "none"
    if not zones:
        raise ReportError("no sensekit.window/4 messages: nothing to report")
    if wanted is None:
        if len(zones) == 1:
            return zones[0]
        raise ReportError(f"several zones in the data, choose one with --zone: {available}")
    matches = [z for z in zones if wanted in (str(z), z.zone)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(str(z) for z in sorted(matches))
        raise ReportError(f"--zone {wanted!r} is on several devices, give one of: {names}")
    raise ReportError(f"--zone {wanted!r}: no windows for it; zones in the data: {available}")


def local_day(timestamp: float, zone: tzinfo) -> date:
    return datetime.fromtimestamp(timestamp, tz=zone).date()


def days_present(windows: Iterable[WindowCounts], zone: tzinfo) -> list[date]:
    return sorted({local_day(w.start, zone) for w in windows})


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight: 23 or 25 hours on a daylight-saving change."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone)
    return start, end


def bucket_edges(day: date, zone: tzinfo, bucket_minutes: int) -> list[datetime]:
    """Bucket boundaries stepped in real time from local midnight (so a bucket is always
    `bucket_minutes` long, also across a clock change); the last one ends at midnight."""
    if not 1 <= bucket_minutes <= 24 * 60:
        raise ReportError(f"--bucket-minutes {bucket_minutes}: must be 1 to 1440")
    start, end = day_bounds(day, zone)
    first, last = start.timestamp(), end.timestamp()
    step = bucket_minutes * 60
    edges = [first + i * step for i in range(int((last - first) // step) + 1)]
    if edges[-1] < last:
        edges.append(last)
    return [datetime.fromtimestamp(edge, tz=zone) for edge in edges]


# the trend ------------------------------------------------------------------------------------
def _bucket(start: datetime, end: datetime, windows: Sequence[WindowCounts]) -> Bucket:
    summed = summed_expressions(w.expressions for w in windows)
    expressions = {name: int(summed.get(name, 0)) for name in EXPRESSIONS}
    return Bucket(
        start=start,
        end=end,
        windows=len(windows),
        people=sum(w.people for w in windows),
        unclassified=sum(w.unclassified for w in windows),
        expressions=expressions,
        score=net_emotion_score(expressions),
    )


def day_trend(
    collected: Collected,
    zone: ZoneKey,
    *,
    timezone: tzinfo,
    timezone_name: str,
    day: date | None = None,
    bucket_minutes: int = 60,
) -> DayTrend:
    """The zone's day (default: the latest local day it has windows on) in buckets."""
    mine = [w for w in collected.windows if w.key == zone]
    days = days_present(mine, timezone)
    if day is None:
        if not days:
            raise ReportError(f"no windows for {zone}")
        day = days[-1]
    edges = bucket_edges(day, timezone, bucket_minutes)
    first, last = edges[0].timestamp(), edges[-1].timestamp()
    todays = [w for w in mine if first <= w.start < last]
    if not todays:
        listed = ", ".join(d.isoformat() for d in days) or "none"
        raise ReportError(
            f"no windows for {zone} on {day.isoformat()} ({timezone_name}); "
            f"days with windows: {listed}"
        )
    per_bucket: list[list[WindowCounts]] = [[] for _ in edges[:-1]]
    step = bucket_minutes * 60
    for window in todays:
        per_bucket[min(int((window.start - first) // step), len(per_bucket) - 1)].append(window)
    buckets = tuple(_bucket(edges[i], edges[i + 1], per_bucket[i]) for i in range(len(per_bucket)))
    whole = _bucket(edges[0], edges[-1], todays)
    return DayTrend(
        zone=zone,
        day=day,
        timezone=timezone_name,
        bucket_minutes=bucket_minutes,
        buckets=buckets,
        windows=whole.windows,
        people=whole.people,
        unclassified=whole.unclassified,
        expressions=whole.expressions,
        score=whole.score,
        noisy_windows=sum(1 for w in todays if w.dp_epsilon is not None),
        dp_epsilons=tuple(sorted({w.dp_epsilon for w in todays if w.dp_epsilon is not None})),
        k_thresholds=tuple(sorted({w.k_threshold for w in todays})),
        duplicates=collected.duplicates,
        other_versions=collected.other_versions,
    )


def text_table(trend: DayTrend) -> str:
    """A short table for the terminal: the buckets that had windows, and the day."""
    lines = [
        f"{trend.zone}  {trend.day.isoformat()} ({trend.timezone})  "
        f"day score {format_score(trend.score)}  people {trend.people}  "
        f"windows {trend.windows}",
        f"{'time':<13} {'windows':>7} {'people':>7} {'classified':>10} {'score':>7}",
    ]
    empty = 0
    for bucket in trend.buckets:
        if not bucket.windows:
            empty += 1
            continue
        span = f"{bucket.start:%H:%M}-{bucket.end:%H:%M}"
        lines.append(
            f"{span:<13} {bucket.windows:>7} {bucket.people:>7} {bucket.classified:>10} "
            f"{format_score(bucket.score):>7}"
        )
    if empty:
        lines.append(f"({empty} of {len(trend.buckets)} buckets had no windows)")
    return "\n".join(lines)


def format_score(score: float | None) -> str:
    return "–" if score is None else f"{score:+.1f}"
