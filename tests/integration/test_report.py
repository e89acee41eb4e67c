"""`sensekit report` end to end: from a log the real demo pipeline recorded through a real
mosquitto, and straight from a broker holding retained windows."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sensekit.dashboards.messages import read_log
from sensekit.dashboards.report_plot import FIGURE_PIXELS
from sensekit.publish.payloads import encode, window_payload
from sensekit.score import net_emotion_score, summed_expressions
from sensekit.types import FaceCounts, ZoneWindow
from tests.dashboard_fixtures import record_demo

SENSEKIT = Path(sys.executable).parent / "sensekit"


def sensekit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SENSEKIT), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height, read back by decoding the image (not just its header)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert pixels.std() > 0.01  # something was drawn
    return pixels.shape[1], pixels.shape[0]


def test_report_from_a_recorded_demo_log(broker, tmp_path):
    # Place the demo's minute across 11:00 UTC, so its windows fall in two hourly buckets.
    target = datetime(2026, 11, 22, 10, 59, 40, tzinfo=UTC).timestamp()
    offset = target - time.time()
    log = tmp_path / "demo.jsonl"
    messages = record_demo(broker, log, clock=lambda: time.time() + offset)

    windows = {
        m.payload["window_id"]: m.payload
        for m in messages
        if m.topic.endswith("/zones/inside/window") and m.payload is not None
    }
    assert len(windows) >= 2

    without_zone = sensekit("report", "--log", str(log), cwd=tmp_path)
    assert without_zone.returncode == 2
    assert (
        "choose one with --zone: demo-store/demo-entrance/inside, "
        "demo-store/demo-entrance/outside" in without_zone.stderr
    )

    done = sensekit(
        "report", "--log", str(log), "--zone", "inside", "--json", "day.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    png = tmp_path / "report-inside-2026-11-22.png"
    assert png_size(png) == FIGURE_PIXELS
    data = json.loads((tmp_path / "day.json").read_text())
    assert (data["site"], data["device"], data["zone"]) == ("demo-store", "demo-entrance", "inside")
    assert data["date"] == "2026-11-22"

    # the same numbers, computed here from the windows the broker delivered
    faces = [w["faces"] for w in windows.values() if w["faces"] is not None]
    assert data["windows"] == len(windows)
    assert data["people"] == sum(f["people"] for f in faces)
    assert data["unclassified"] == sum(f["unclassified"] for f in faces)
    assert data["score"] == net_emotion_score(summed_expressions(f["expressions"] for f in faces))
    for hour in (10, 11):
        mine = [
            w["faces"]
            for w in windows.values()
            if w["faces"] is not None and w["window_start"].startswith(f"2026-11-22T{hour}:")
        ]
        bucket = data["buckets"][hour]
        assert bucket["people"] == sum(f["people"] for f in mine)
        expected = net_emotion_score(summed_expressions(f["expressions"] for f in mine))
        assert bucket["score"] == expected
    assert sum(b["windows"] for b in data["buckets"]) == len(windows)
    assert data["buckets"][10]["windows"] == 1  # 10:59:40
    assert "demo-store/demo-entrance/inside  2026-11-22 (UTC)" in done.stdout

    # the day boundary moves with the time zone: 10:59 UTC is 21:59 in Sydney
    sydney = sensekit(
        "report", "--log", str(log), "--zone", "demo-store/demo-entrance/outside",
        "--timezone", "Australia/Sydney", "--json", "sydney.json", "--output", "sydney.png",
        cwd=tmp_path,
    )  # fmt: skip
    assert sydney.returncode == 0, sydney.stderr
    in_sydney = json.loads((tmp_path / "sydney.json").read_text())
    assert in_sydney["date"] == "2026-11-22"
    assert [b["windows"] > 0 for b in in_sydney["buckets"]].index(True) == 21


def window(zone: str, start: float, schema_version: int = 4, **counts: int) -> dict:
    expressions = {
        name: counts.get(name, 0)
        for name in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    }
    unclassified = counts.get("unclassified", 0)
    faces = FaceCounts(
        "door", 200, sum(expressions.values()) + unclassified, expressions, unclassified, None
    )
    payload = window_payload(
        ZoneWindow("shop", "till", zone, start, start + 20, True, 5, None, faces, None), 1
    )
    if schema_version != 4:
        payload["schema"] = f"sensekit.window/{schema_version}"
    return payload


def publish_retained(url_port: int, messages: dict[str, dict]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    try:
        for topic, payload in messages.items():
            client.publish(topic, encode(payload), qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_report_from_a_broker_with_retained_windows(broker, tmp_path):
    noon = datetime(2026, 12, 7, 12, 0, 20, tzinfo=UTC).timestamp()
    retained = {
        "sensekit/shop/till/zones/queue/window": window("queue", noon, happy=5, sad=10),
        "sensekit/shop/till/zones/door/window": window("door", noon + 3600, neutral=7),
        "sensekit/shop/till/zones/old/window": window("old", noon, schema_version=3, happy=5),
    }
    publish_retained(broker.port, retained)

    unknown = sensekit(
        "report", "--broker", broker.url, "--seconds", "1", "--zone", "cellar", cwd=tmp_path
    )
    assert unknown.returncode == 2
    assert "zones in the data: shop/till/door, shop/till/queue" in unknown.stderr

    done = sensekit(
        "report", "--broker", broker.url, "--seconds", "1.5", "--zone", "queue",
        "--record", "rec.jsonl", "--json", "queue.json", "--output", "queue.png",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "skipped 1 window message(s) of sensekit.window/3" in done.stderr
    data = json.loads((tmp_path / "queue.json").read_text())
    assert (data["zone"], data["date"], data["windows"]) == ("queue", "2026-12-07", 1)
    assert data["buckets"][12]["people"] == 15
    assert data["buckets"][12]["score"] == data["score"] == round(100 * (5 - 10) / 15, 1)
    assert png_size(tmp_path / "queue.png") == FIGURE_PIXELS

    recorded = list(read_log(tmp_path / "rec.jsonl"))
    assert {m.topic for m in recorded} == set(retained)
    assert all(m.retained for m in recorded)

    # the record is a log the report reads back to the same numbers
    again = sensekit(
        "report", "--log", "rec.jsonl", "--zone", "shop/till/queue", "--json", "again.json",
        "--output", "again.png", cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text()) == data


def test_an_unreachable_broker_is_a_broker_error(tmp_path):
    from sensekit.broker import free_port

    done = sensekit(
        "report", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--seconds", "1", cwd=tmp_path
    )
    assert done.returncode == 5
    assert "cannot connect to broker" in done.stderr
