"""What the dashboard side costs, as ratios to decoding the JSON it reads.

A fleet stream is built with sensekit's own payload builders: DEVICES devices × 4 zones, one
window per zone every 60 s for a 12-hour day. Measured:

- watch: folding one message into the live state (`WatchState.apply`), and drawing one full
  frame of the whole fleet, against `json.loads` of one window message (what any subscriber
  pays to read it);
- report: a zone's day (collect + bucket + score, without the PNG), against decoding that
  zone's day of windows;
- the device side: computing the net emotion score, against building the window payload.

.venv/bin/python bench/dashboards.py [--devices 20]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

from sensekit.dashboards.messages import Message
from sensekit.dashboards.report import collect_windows, day_trend, select_zone
from sensekit.dashboards.watch_render import render_frame
from sensekit.dashboards.watch_state import WatchState
from sensekit.publish.payloads import encode, window_payload
from sensekit.score import net_emotion_score
from sensekit.types import EXPRESSION_LABELS, FaceCounts, ZoneWindow

DAY_START = 1_796_630_400.0  # 2026-12-07T08:00:00Z
ZONES = ("door", "aisle", "till", "exit")


def window(device: int, zone: str, start: float, seq: int) -> ZoneWindow:
    counts = {label: 0 for label in EXPRESSION_LABELS}
    counts["happy"] = 5 * (1 + (seq + device) % 3)
    counts["neutral"] = 5 * ((seq * 7) % 2)
    counts["sad"] = 5 * ((seq * 3 + device) % 2)
    faces = FaceCounts(
        camera="cam",
        frames=600,
        people=sum(counts.values()),
        expressions=counts,
        unclassified=0,
        mean_probabilities=None,
    )
    return ZoneWindow(
        site="store-1",
        device=f"pi-{device:03d}",
        zone=zone,
        window_start=start,
        window_end=start + 60.0,
        complete=True,
        k_threshold=5,
        dp_epsilon=None,
        faces=faces,
        voice=None,
    )


def fleet(devices: int, hours: int = 12) -> tuple[list[Message], list[bytes]]:
    messages: list[Message] = []
    raw: list[bytes] = []
    seq = 0
    for minute in range(hours * 60):
        start = DAY_START + 60.0 * minute
        for device in range(devices):
            for zone in ZONES:
                seq += 1
                payload = window_payload(window(device, zone, start, seq), seq)
                topic = f"sensekit/store-1/pi-{device:03d}/zones/{zone}/window"
                data = encode(payload)
                raw.append(data)
                messages.append(Message(topic, json.loads(data), True, start + 60.5))
    return messages, raw


def per_call_s(function: Callable[[Any], object], items: list[Any]) -> float:
    for item in items[:20]:
        function(item)
    start = time.perf_counter()
    for item in items:
        function(item)
    return (time.perf_counter() - start) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args()
    messages, raw = fleet(args.devices)
    decode = per_call_s(json.loads, raw[:20000])

    state = WatchState()
    apply = per_call_s(state.apply, messages[:20000])
    now = messages[-1].received_at
    frames = [None] * 50
    draw = per_call_s(lambda _: render_frame(state, 120, None, now), frames)

    zone_messages = [m for m in messages if m.topic.endswith("/pi-000/zones/door/window")]
    zone_raw = [encode(m.payload) for m in zone_messages if m.payload]

    def report(_: object) -> object:
        collected = collect_windows(zone_messages)
        key = select_zone(collected.zones, "door")
        return day_trend(collected, key, timezone=UTC, timezone_name="UTC")

    day = per_call_s(report, [None] * 20)
    decode_day = per_call_s(lambda _: [json.loads(r) for r in zone_raw], [None] * 20)

    one = window(0, "door", DAY_START, 1)
    build = per_call_s(lambda _: encode(window_payload(one, 1)), [None] * 5000)
    expressions = one.faces.expressions if one.faces else {}
    score_only = per_call_s(lambda _: net_emotion_score(expressions), [None] * 5000)

    zones = args.devices * len(ZONES)
    print(f"fleet: {args.devices} devices, {zones} zones, {len(messages)} window messages")
    print(f"json.loads of one window message:         {decode * 1e6:8.1f} µs (the unit below)")
    print(f"watch: apply one message                   {apply / decode:8.2f} ×")
    print(
        f"watch: draw one frame of {zones} zones      {draw / decode:8.1f} ×  ({draw * 1e3:.1f} ms)"
    )
    print(
        f"report: one zone's day ({len(zone_messages)} windows)   {day / decode_day:8.2f} × decoding them"
    )
    print(
        f"device: the net emotion score             {score_only / build:8.3f} × building the payload"
    )


if __name__ == "__main__":
    main()
