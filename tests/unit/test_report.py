"""`sensekit report`'s arithmetic on a day-long message log built with sensekit's own payload
builders (known counts per hour), and the command's answers to bad input."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sensekit.cli import main
from sensekit.dashboards.messages import Message, read_log, write_message
from sensekit.dashboards.report import (
    ReportError,
    ZoneKey,
    collect_windows,
    day_trend,
    select_zone,
)
from sensekit.publish.payloads import window_payload
from sensekit.score import net_emotion_score
from sensekit.types import FaceCounts, ZoneWindow

NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 12, 7)


def at(hour: int, minute: int = 0, day: date = DAY) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp()


class LogBuilder:
    """Window messages as a device publishes them (`window_payload`), in a recorded log."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.seq = 0

    def window(
        self,
        start: float,
        *,
        zone: str = "inside",
        device: str = "entrance",
        site: str = "shop-1",
        unclassified: int = 0,
        dp_epsilon: float | None = None,
        length_s: float = 300.0,
        **expressions: int,
    ) -> Message:
        counts = {name: expressions.get(name, 0) for name in NAMES}
        faces = FaceCounts(
            camera="door",
            frames=3000,
            people=sum(counts.values()) + unclassified,
            expressions=counts,
            unclassified=unclassified,
            mean_probabilities=None,
        )
        window = ZoneWindow(
            site, device, zone, start, start + length_s, True, 5, dp_epsilon, faces, None
        )
        self.seq += 1
        message = Message(
            f"sensekit/{site}/{device}/zones/{zone}/window",
            window_payload(window, self.seq),
            retained=False,
            received_at=start + length_s + 1,
        )
        self.messages.append(message)
        return message

    def repeat(self, message: Message) -> None:
        """At-least-once delivery: the same window again (e.g. retained, on a reconnect)."""
        self.messages.append(
            Message(message.topic, message.payload, True, message.received_at + 60)
        )

    def write(self, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as out:
            for message in self.messages:
                write_message(out, message)
        return path


def shop_day() -> LogBuilder:
    """09:00 three windows, 10:00 one window, 11:00 unclassified only, 12:00 nothing,
    13:00 a mix where averaging window scores would mislead (all UTC)."""
    log = LogBuilder()
    log.window(at(9, 0), happy=10, neutral=5)
    first = log.window(at(9, 5), happy=5, sad=5, unclassified=5)
    log.window(at(9, 55), angry=5, neutral=5)
    log.repeat(first)
    log.window(at(10, 30), happy=20, surprise=5)
    log.window(at(11, 10), unclassified=7)
    log.window(at(13, 0), happy=5)  # score +100 from 5 people
    log.window(at(13, 5), sad=45, neutral=5)  # score −90 from 50 people
    return log


def trend_of(messages: list[Message], zone: str | None = None, **options):
    collected = collect_windows(messages)
    key = select_zone(collected.zones, zone)
    options.setdefault("timezone", UTC_ZONE)
    options.setdefault("timezone_name", "UTC")
    return day_trend(collected, key, **options)


def test_buckets_sum_the_windows_that_start_in_them(tmp_path):
    path = shop_day().write(tmp_path / "day.jsonl")
    trend = trend_of(list(read_log(path)))

    assert trend.zone == ZoneKey("shop-1", "entrance", "inside")
    assert trend.day == DAY
    assert len(trend.buckets) == 24
    nine = trend.buckets[9]
    assert nine.start == datetime(2026, 12, 7, 9, tzinfo=UTC_ZONE)
    assert nine.windows == 3  # the repeat is not counted again
    assert nine.people == 15 + 15 + 10
    assert nine.unclassified == 5
    assert dict(nine.expressions) == {
        "angry": 5, "disgust": 0, "fear": 0, "happy": 15, "sad": 5, "surprise": 0, "neutral": 10
    }  # fmt: skip
    assert nine.score == round(100 * (15 - 10) / 35, 1) == 14.3
    assert trend.buckets[10].score == 80.0  # (20 − 0) / 25
    assert trend.buckets[10].people == 25
    # windows of the 08:00 hour and before: none
    assert all(b.windows == 0 and b.score is None for b in trend.buckets[:9])


def test_a_bucket_is_scored_from_its_summed_counts_not_the_mean_of_window_scores():
    trend = trend_of(shop_day().messages)
    one = trend.buckets[13]
    window_scores = [net_emotion_score({"happy": 5}), net_emotion_score({"sad": 45, "neutral": 5})]
    assert window_scores == [100.0, -90.0]
    assert one.score == round(100 * (5 - 45) / 55, 1) == -72.7
    assert one.score != sum(window_scores) / 2  # +5: what averaging would have said


def test_the_day_score_comes_from_the_days_summed_counts():
    trend = trend_of(shop_day().messages)
    happy, negative, classified = 10 + 5 + 20 + 5, 5 + 5 + 45, 15 + 10 + 10 + 25 + 5 + 50
    assert trend.classified == classified
    assert trend.score == round(100 * (happy - negative) / classified, 1)
    assert trend.people == 15 + 15 + 10 + 25 + 7 + 5 + 50
    assert trend.windows == 7
    scored = [b.score for b in trend.buckets if b.score is not None]
    assert trend.score != round(sum(scored) / len(scored), 1)


def test_repeated_windows_are_counted_once():
    log = shop_day()
    for message in list(log.messages):
        log.repeat(message)
    trend = trend_of(log.messages)
    assert trend.windows == 7
    assert trend.duplicates == 9  # one in shop_day, eight here (its repeat repeated too)
    assert trend.buckets[9].people == 40


def test_buckets_without_classified_visits_have_no_score_and_are_not_zero(tmp_path):
    trend = trend_of(shop_day().messages)
    eleven, noon = trend.buckets[11], trend.buckets[12]
    assert (eleven.windows, eleven.people, eleven.classified) == (1, 7, 0)
    assert eleven.score is None
    assert (noon.windows, noon.people, noon.score) == (0, 0, None)
    numbers = trend.as_dict()
    assert numbers["buckets"][11]["score"] is None
    assert numbers["buckets"][11]["people"] == 7


def test_the_timezone_moves_the_day_boundary():
    log = LogBuilder()
    log.window(at(22, 30, date(2026, 12, 6)), happy=5)  # 23:30 in Berlin, 6 December
    log.window(at(23, 30, date(2026, 12, 6)), sad=5)  # 00:30 in Berlin, 7 December
    log.window(at(8, 0, date(2026, 12, 7)), happy=10)  # 09:00 in Berlin

    in_utc = trend_of(log.messages)
    assert in_utc.day == date(2026, 12, 7)
    assert in_utc.windows == 1

    berlin = trend_of(log.messages, timezone=BERLIN, timezone_name="Europe/Berlin")
    assert berlin.day == date(2026, 12, 7)
    assert berlin.windows == 2
    assert berlin.buckets[0].start == datetime(2026, 12, 7, tzinfo=BERLIN)
    assert berlin.buckets[0].score == -100.0
    assert berlin.buckets[9].score == 100.0
    assert berlin.buckets[8].windows == 0

    before = trend_of(
        log.messages, timezone=BERLIN, timezone_name="Europe/Berlin", day=date(2026, 12, 6)
    )
    assert before.windows == 1
    assert before.buckets[23].score == 100.0


def test_a_daylight_saving_day_has_23_hourly_buckets_labelled_in_local_time():
    spring = date(2026, 3, 29)  # Europe/Berlin: 02:00 CET becomes 03:00 CEST
    log = LogBuilder()
    log.window(at(1, 30, spring), happy=5)  # 03:30 CEST
    trend = trend_of(log.messages, timezone=BERLIN, timezone_name="Europe/Berlin")
    assert len(trend.buckets) == 23
    assert [f"{b.start:%H}" for b in trend.buckets[:4]] == ["00", "01", "03", "04"]
    assert trend.buckets[2].windows == 1
    assert trend.day_end == datetime(2026, 3, 30, tzinfo=BERLIN)


def test_other_bucket_lengths_and_a_short_last_bucket():
    log = LogBuilder()
    log.window(at(9, 40), happy=5)
    log.window(at(23, 50), sad=5)
    quarter = trend_of(log.messages, bucket_minutes=15)
    assert len(quarter.buckets) == 96
    assert quarter.buckets[38].windows == 1  # 09:30–09:45
    odd = trend_of(log.messages, bucket_minutes=25)  # 57 buckets and a 15-minute one
    assert len(odd.buckets) == 58
    assert (odd.buckets[-1].end - odd.buckets[-1].start).total_seconds() == 15 * 60
    assert odd.buckets[-1].score == -100.0
    with pytest.raises(ReportError, match="bucket-minutes"):
        trend_of(log.messages, bucket_minutes=0)


def test_noisy_windows_are_summed_and_noted():
    log = LogBuilder()
    log.window(at(9), happy=6, dp_epsilon=1.0)
    log.window(at(9, 5), sad=3, dp_epsilon=1.0)
    log.window(at(9, 10), neutral=5)
    trend = trend_of(log.messages)
    assert trend.buckets[9].people == 14
    assert trend.buckets[9].score == round(100 * 3 / 14, 1)
    assert (trend.noisy_windows, trend.dp_epsilons) == (2, (1.0,))


def test_only_version_4_windows_count_and_the_others_are_counted():
    log = shop_day()
    old = dict(log.messages[0].payload, schema="sensekit.window/3", window_id="old/1")
    log.messages.append(Message(log.messages[0].topic, old, True, at(20)))
    log.messages.append(Message("sensekit/shop-1/entrance/status", {"state": "online"}, True, 0))
    log.messages.append(Message("sensekit/shop-1/entrance/zones/inside/window", None, True, 0))
    log.messages.append(Message("elsewhere/a/b/zones/c/window", log.messages[0].payload, 0, 0))
    collected = collect_windows(log.messages)
    assert len(collected.windows) == 7
    assert collected.other_versions == {"sensekit.window/3": 1}


def test_a_version_4_window_missing_a_field_is_an_error_naming_it():
    log = shop_day()
    broken = dict(log.messages[0].payload)
    del broken["faces"]
    log.messages.append(Message(log.messages[0].topic, broken, False, at(20)))
    with pytest.raises(ReportError, match=r"shop-1/entrance/inside/20261207T090000Z.*'faces'"):
        collect_windows(log.messages)


def two_devices() -> LogBuilder:
    log = LogBuilder()
    log.window(at(9), zone="inside", device="entrance", happy=5)
    log.window(at(9), zone="outside", device="entrance", sad=5)
    log.window(at(9), zone="inside", device="back-door", neutral=5)
    return log


def test_zone_selection():
    zones = collect_windows(two_devices().messages).zones
    assert select_zone(zones, "outside") == ZoneKey("shop-1", "entrance", "outside")
    assert select_zone(zones, "shop-1/back-door/inside") == ZoneKey("shop-1", "back-door", "inside")
    with pytest.raises(ReportError) as several:
        select_zone(zones, None)
    assert str(several.value) == (
        "several zones in the data, choose one with --zone: shop-1/back-door/inside, "
        "shop-1/entrance/inside, shop-1/entrance/outside"
    )
    with pytest.raises(ReportError, match=r"several devices.*back-door/inside.*entrance/inside$"):
        select_zone(zones, "inside")
    with pytest.raises(ReportError, match=r"'cellar'.*zones in the data: shop-1/back-door"):
        select_zone(zones, "cellar")
    only = collect_windows(shop_day().messages).zones
    assert select_zone(only, None) == ZoneKey("shop-1", "entrance", "inside")


# the command -----------------------------------------------------------------------------------
def report(*args: str) -> int:
    return main(["report", *args])


def test_the_command_writes_the_plot_the_numbers_and_a_table(tmp_path, capsys):
    log = shop_day().write(tmp_path / "day.jsonl")
    png, numbers = tmp_path / "out" / "day.png", tmp_path / "day.json"
    code = report("--log", str(log), "--output", str(png), "--json", str(numbers))
    out = capsys.readouterr().out
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(numbers.read_text())
    assert (data["zone"], data["date"], data["timezone"]) == ("inside", "2026-12-07", "UTC")
    assert data["score"] == trend_of(shop_day().messages).score
    assert [b["score"] for b in data["buckets"][9:14]] == [14.3, 80.0, None, None, -72.7]
    assert data["duplicates_dropped"] == 1
    assert "shop-1/entrance/inside  2026-12-07 (UTC)" in out
    assert "13:00-14:00" in out and "-72.7" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["09:00-10:00", "3", "40", "35", "+14.3"] in rows
    assert ["11:00-12:00", "1", "7", "0", "–"] in rows


def test_the_default_output_name_is_in_the_current_directory(tmp_path, monkeypatch, capsys):
    log = shop_day().write(tmp_path / "day.jsonl")
    monkeypatch.chdir(tmp_path)
    assert report("--log", str(log), "--timezone", "Asia/Tokyo") == 0
    assert (tmp_path / "report-inside-2026-12-07.png").exists()  # 09:00Z is 18:00 in Tokyo


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--zone", "cellar"], "--zone 'cellar': no windows for it; zones in the data: "),
        ([], "several zones in the data, choose one with --zone: shop-1/back-door/inside"),
        (["--zone", "outside", "--date", "2026-12-08"], "days with windows: 2026-12-07"),
        (["--zone", "outside", "--date", "7.12.2026"], "must be YYYY-MM-DD"),
        (["--zone", "outside", "--timezone", "Mars/Olympus"], "not an IANA time zone"),
        (["--zone", "outside", "--broker", "mqtt://localhost"], "either --log FILE or --broker"),
        (["--zone", "outside", "--record", "x.jsonl"], "--record only goes with --broker"),
    ],
)
def test_usage_problems_exit_2_and_say_what_is_there(tmp_path, capsys, args, says):
    log = two_devices().write(tmp_path / "two.jsonl")
    assert report("--log", str(log), "--output", str(tmp_path / "x.png"), *args) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_no_source_at_all_is_a_usage_problem(capsys):
    assert report() == 2
    assert "either --log FILE or --broker URL" in capsys.readouterr().err


def test_an_unreadable_log_names_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert report("--log", str(missing)) == 2
    assert f"{missing}: cannot read the message log" in capsys.readouterr().err


def test_a_malformed_log_names_the_file_and_line(tmp_path, capsys):
    log = shop_day().write(tmp_path / "day.jsonl")
    lines = log.read_text().splitlines()
    lines.insert(3, '{"topic": "sensekit/shop-1/entrance/zones/inside/window", "payload": [1]')
    log.write_text("\n".join(lines) + "\n")
    assert report("--log", str(log)) == 2
    assert f"{log}:4: not a sensekit message log line" in capsys.readouterr().err


def test_a_log_without_windows_says_so(tmp_path, capsys):
    log = tmp_path / "status.jsonl"
    with log.open("w") as out:
        write_message(out, Message("sensekit/a/b/status", {"state": "online"}, True, at(9)))
    assert report("--log", str(log)) == 2
    assert f"{log}: no sensekit.window/4 messages among 1 message(s)" in capsys.readouterr().err


def test_skipped_versions_are_warned_about(tmp_path, capsys):
    log = shop_day()
    old = dict(log.messages[0].payload, schema="sensekit.window/3", window_id="old/1")
    log.messages.append(Message(log.messages[0].topic, old, True, at(20)))
    path = log.write(tmp_path / "day.jsonl")
    assert report("--log", str(path), "--output", str(tmp_path / "x.png")) == 0
    assert "skipped 1 window message(s) of sensekit.window/3" in capsys.readouterr().err
