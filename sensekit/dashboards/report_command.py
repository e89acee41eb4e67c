"""Plot one zone's day: the net emotion score and the people counted, per hour.

Reads the window messages the devices published, from a recorded message log
(`--log FILE`, as `sensekit watch --record` writes it) or from a broker (`--broker URL`,
listening `--seconds N`; a broker keeps only each zone's latest window, so for a whole day
record a log during the day and report from it). Writes a PNG (`--output`), optionally the
numbers as JSON (`--json`), and prints a short table.

The score is 100 x (happy - (angry + disgust + fear + sad)) / classified visits: +100 when
everyone looked happy, -100 when everyone looked unhappy; neutral and surprise count in the
denominator only, unclassified visits not at all. Each bucket is scored from its summed
counts. A bucket with no classified visit is a gap in the line, not a zero.

Examples:
  sensekit report --log shop.jsonl --zone inside --date 2026-12-07 --timezone Europe/Berlin
  sensekit report --broker mqtt://broker.lan --seconds 30 --zone inside --record now.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sensekit.dashboards.messages import (
    Message,
    TopicReader,
    add_broker_arguments,
    address_from_args,
    read_log,
    write_message,
)
from sensekit.dashboards.report import (
    Collected,
    ReportError,
    collect_windows,
    day_trend,
    select_zone,
    text_table,
)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="a recorded message log (JSON lines); or read a broker with --broker",
    )
    add_broker_arguments(parser, required=False)
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        metavar="N",
        help="with --broker: how long to collect messages (default 10; retained ones come first)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="with --broker: also save the collected messages as a message log",
    )
    choice = parser.add_argument_group("what to report")
    choice.add_argument(
        "--zone",
        metavar="NAME",
        help="site/device/zone, or a zone name found on one device only "
        "(needed when the data has several zones)",
    )
    choice.add_argument(
        "--date",
        metavar="YYYY-MM-DD",
        help="the local day to report (default: the latest day with windows)",
    )
    choice.add_argument(
        "--timezone",
        default="UTC",
        metavar="NAME",
        help="IANA time zone of the day and the buckets, e.g. Europe/Berlin (default UTC)",
    )
    choice.add_argument(
        "--bucket-minutes",
        type=int,
        default=60,
        metavar="M",
        help="length of a bucket (default 60)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output",
        type=Path,
        metavar="PNG",
        help="the plot (default report-<zone>-<date>.png in the current directory)",
    )
    out.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers as JSON")


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(
            f"--timezone {name!r}: not an IANA time zone name (e.g. UTC, Europe/Berlin)"
        ) from None


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"--date {text!r}: must be YYYY-MM-DD") from None


def collect_from_broker(args: argparse.Namespace) -> list[Message]:
    """Everything that arrives under the prefix within `--seconds`, retained windows included;
    with `--record`, also written to a message log as it arrives."""
    received: list[Message] = []
    lock = threading.Lock()
    record = _open_for_writing(args.record) if args.record else None

    def keep(message: Message) -> None:
        with lock:
            received.append(message)
            if record is not None:
                write_message(record, message)

    reader = TopicReader(address_from_args(args), keep, prefix=args.prefix)
    try:
        reader.start()
        try:
            time.sleep(max(args.seconds, 0.0))
        finally:
            reader.stop()
    finally:
        if record is not None:
            with lock:
                record.close()
    with lock:
        return list(received)


def _open_for_writing(path: Path) -> TextIO:
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"--record {path}: cannot write: {exc.strerror}") from None


def _check_sources(args: argparse.Namespace) -> None:
    if (args.log is None) == (args.broker is None):
        raise ReportError("give either --log FILE or --broker URL (one of them, not both)")
    if args.broker is None and args.record is not None:
        raise ReportError("--record only goes with --broker (a --log is already a record)")
    if args.broker is not None and args.seconds <= 0:
        raise ReportError(f"--seconds {args.seconds:g}: must be more than 0")


def _warn_skipped(collected: Collected, source: str) -> None:
    for schema, count in sorted(collected.other_versions.items()):
        log.warning("skipped %d window message(s) of %s in %s (not %s)", count, schema, source,
                    "sensekit.window/4")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    _check_sources(args)
    timezone = _timezone(args.timezone)
    wanted_day = _date(args.date)
    if args.log is not None:
        source = str(args.log)
        messages = list(read_log(args.log))
    else:
        source = f"broker {args.broker}"
        messages = collect_from_broker(args)
    collected = collect_windows(messages, args.prefix)
    _warn_skipped(collected, source)
    if not collected.windows:
        raise ReportError(
            f"{source}: no sensekit.window/4 messages among {len(messages)} message(s)"
        )
    zone = select_zone(collected.zones, args.zone)
    trend = day_trend(
        collected,
        zone,
        timezone=timezone,
        timezone_name=args.timezone,
        day=wanted_day,
        bucket_minutes=args.bucket_minutes,
    )
    output = args.output or Path(f"report-{zone.zone}-{trend.day.isoformat()}.png")

    from sensekit.dashboards.report_plot import plot_day

    try:
        plot_day(trend, output)
        if args.json is not None:
            args.json.write_text(json.dumps(trend.as_dict(), indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    print(text_table(trend))
    print(f"wrote {output}" + (f" and {args.json}" if args.json else ""))
    sys.stdout.flush()
    return 0
