"""The dashboard recipes of deploy/dashboards/, run for real: the demo publishes to a real
mosquitto, Node-RED runs the committed flow into a real InfluxDB 1.x, and every query of the
Grafana dashboard runs against what was stored. The dashboard JSON is type-checked against
Grafana's own dashboard and panel types (@grafana/schema) with TypeScript. Grafana itself is
not run (no package of it can be installed here)."""

from __future__ import annotations

import copy
import io
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sensekit.demo import run_demo
from sensekit.score import net_emotion_score, summed_expressions
from tests.mqtt_client import SCHEMAS, Received, Subscriber
from tests.recipes_dashboards import (
    DASHBOARD,
    FLOW,
    FLOW_FUNCTION,
    INSTALL_HINT,
    InfluxServer,
    NodeRed,
    flow_for,
    interpolate,
    missing_tools,
    regex_value,
    run_typescript_check,
    series_rows,
)

EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
VOICE_EMOTIONS = ("angry", "bored", "disgust", "fear", "happy", "neutral", "sad")
INTERVAL = "1m"
INTERVAL_MS = 60_000
DAY_MS = 86_400_000


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)}: {INSTALL_HINT}")


def ms(timestamp: str) -> int:
    return round(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def iso(milliseconds: int) -> str:
    return (
        datetime.fromtimestamp(milliseconds / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    )


def compact(milliseconds: int) -> str:
    return datetime.fromtimestamp(milliseconds / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------------------------
# The flow and the dashboard as files


def test_flow_is_wired_and_its_function_is_the_reviewed_source() -> None:
    flow = json.loads(FLOW.read_text())
    ids = [node["id"] for node in flow]
    assert len(ids) == len(set(ids)), "duplicate node ids"
    by_id = {node["id"]: node for node in flow}
    tabs = {node["id"] for node in flow if node["type"] == "tab"}
    assert len(tabs) == 1
    for node in flow:
        if "z" in node:
            assert node["z"] in tabs, node
        for output in node.get("wires", []):
            for target in output:
                assert target in by_id, f"{node['name']} is wired to a missing node {target}"
    by_type = defaultdict(list)
    for node in flow:
        by_type[node["type"]].append(node)
    topics = {node["topic"] for node in by_type["mqtt in"]}
    assert topics == {"sensekit/+/+/zones/+/window", "sensekit/+/+/status", "sensekit/+/+/stats"}
    (function,) = by_type["function"]
    (writer,) = by_type["influxdb batch"]
    (broker,) = by_type["mqtt-broker"]
    (database,) = by_type["influxdb"]
    for node in by_type["mqtt in"]:
        assert node["qos"] == "1" and node["datatype"] == "json"
        assert node["broker"] == broker["id"]
        assert node["wires"] == [[function["id"]]]
    assert function["wires"] == [[writer["id"]]]
    assert writer["influxdb"] == database["id"]
    assert database["influxdbVersion"] == "1.x" and database["database"] == "sensekit"
    # a durable session: the broker queues the windows while Node-RED is down
    assert broker["cleansession"] is False and broker["clientid"]
    (catch,) = by_type["catch"]
    assert set(catch["scope"]) == {function["id"], writer["id"]}
    assert function["func"] == FLOW_FUNCTION.read_text(), (
        "node-red/sensekit-influxdb.json's function differs from node-red/to-influxdb-points.js"
    )


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [target["query"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return queries


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"DS", "site", "device", "zone", "timezone"} <= set(variables)
    assert variables["DS"]["type"] == "datasource" and variables["DS"]["query"] == "influxdb"
    for name in ("site", "device", "zone"):
        assert variables[name]["multi"] and variables[name]["includeAll"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "influxdb", "uid": "${DS}"}, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not (mine & cells), f"{panel['title']} overlaps another panel"
        cells |= mine
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["rawQuery"] is True and target["query"].startswith("SELECT ")
        if "$__interval" in json.dumps(panel["targets"]):
            # never finer than the windows: an interval shorter than a window shows gaps
            assert panel["interval"] == INTERVAL, panel["title"]
    for query in dashboard_queries(dashboard):
        for name in re.findall(r"\$(\w+)", query):
            assert name in variables or name in {"timeFilter", "__interval"}, (name, query)
    # every score is computed from summed counts, never from stored window scores
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert "net_emotion_score" not in target["query"], panel["title"]


def test_dashboard_type_checks_against_grafana_schema(tmp_path) -> None:
    require_tools()
    dashboard = json.loads(DASHBOARD.read_text())
    checked = run_typescript_check(dashboard, tmp_path / "good")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # the check is able to fail: an unknown dashboard key, a misspelt panel option and a wrong
    # type in a panel's field config are each reported
    broken = copy.deepcopy(dashboard)
    broken["refreshh"] = "1m"
    broken["panels"][1]["options"]["legend"]["showLegend"] = "yes"
    broken["panels"][4]["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] = "stacked"
    failed = run_typescript_check(broken, tmp_path / "broken")
    assert failed.returncode != 0
    errors = [line for line in failed.stdout.splitlines() if ": error TS" in line]
    assert len(errors) == 3, failed.stdout
    assert '"refreshh"' in errors[0]
    assert "'string' is not assignable to type 'boolean" in errors[1]
    assert '"stacked"' in errors[2]


# ---------------------------------------------------------------------------------------------
# The real pipeline


def points_of(message: Received) -> int:
    """InfluxDB points the flow makes of one message."""
    if message.topic.endswith("/stats"):
        payload = message.payload
        return 1 + len(payload.get("cameras", {})) + len(payload.get("microphones", {}))
    if message.topic.endswith("/window") or message.topic.endswith("/status"):
        return 1
    return 0


def wait_for_points(influx: InfluxServer, total: int, what: str) -> None:
    deadline = time.monotonic() + 30
    counters = influx.write_counters()
    while counters["pointsWrittenOK"] < total and time.monotonic() < deadline:
        time.sleep(0.1)
        counters = influx.write_counters()
    assert counters["pointsWrittenFail"] == 0 and counters["pointsWrittenDropped"] == 0, counters
    assert counters["pointsWrittenOK"] == total, f"{what}: {counters}, expected {total}"


def publish(host: str, port: int, messages: Iterable[tuple[str, dict[str, Any]]]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(host, port)
    client.loop_start()
    try:
        for topic, payload in messages:
            info = client.publish(topic, json.dumps(payload), qos=1)
            info.wait_for_publish(timeout=10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def partial_window(after: dict[str, Any], seq: int) -> dict[str, Any]:
    """A window closed early (complete false, 7 s) that starts where `after` starts, as a daemon
    that stopped 7 s into a window and was started again in it publishes before the full window of
    the same start: its window_id differs only in the length."""
    start = ms(after["window_start"])
    expressions = dict.fromkeys(EXPRESSIONS, 0) | {"sad": 5, "neutral": 5}
    window = {
        "schema": after["schema"],
        "site": after["site"],
        "device": after["device"],
        "zone": after["zone"],
        "window_id": f"{after['site']}/{after['device']}/{after['zone']}/{compact(start)}/7s",
        "seq": seq,
        "window_start": after["window_start"],
        "window_end": iso(start + 7000),
        "complete": False,
        "k_threshold": after["k_threshold"],
        "dp_epsilon": None,
        "faces": {
            "camera": after["faces"]["camera"],
            "frames": 70,
            "people": 10,
            "expressions": expressions,
            "unclassified": 0,
            "mean_probabilities": None,
            "net_emotion_score": net_emotion_score(expressions),
        },
        "voice": None,
        "version": after["version"],
    }
    jsonschema.validate(window, SCHEMAS["window"])
    return window


def stats_with_spool(last: dict[str, Any]) -> dict[str, Any]:
    """The demo runs without a spool: a stats message as a daemon with a backlog sends it."""
    stats = copy.deepcopy(last)
    stats["timestamp"] = iso(ms(last["timestamp"]) + 1000)
    stats["spool"] = {
        "depth": 3,
        "bytes": 2048,
        "oldest_age_s": 41.5,
        "dropped": 2,
        "delivered": 17,
    }
    stats["degraded"] = ["microphone counter: no audio (test)"]
    jsonschema.validate(stats, SCHEMAS["stats"])
    return stats


def bucket(milliseconds: int, size: int) -> int:
    return milliseconds - milliseconds % size


def close(actual: float | None, expected: float | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return math.isclose(actual, expected, abs_tol=0.051)


def test_demo_windows_reach_influxdb_through_node_red_and_the_dashboard_queries_them(
    broker, tmp_path
) -> None:
    require_tools()
    with InfluxServer(tmp_path / "influx") as influx:
        influx.query("CREATE DATABASE sensekit")
        flow = flow_for(broker.host, broker.port, influx.port)
        with NodeRed(tmp_path / "node-red", flow) as red:
            red.wait_for_log(r"Connected to broker: .*mqtt://")
            assert "missing types" not in red.log(), red.log()
            deployed = red.admin_get("/flows")
            assert sorted(n["id"] for n in deployed) == sorted(n["id"] for n in flow)

            # a status of another device proves the flow's subscriptions are in place
            probe = {
                "schema": "sensekit.status/1",
                "site": "probe-site",
                "device": "probe",
                "state": "online",
                "timestamp": "2026-01-01T00:00:00.000Z",
                "version": "test",
            }
            jsonschema.validate(probe, SCHEMAS["status"])
            publish(broker.host, broker.port, [("sensekit/probe-site/probe/status", probe)])
            wait_for_points(influx, 1, "the probe status")

            subscriber = Subscriber(broker.host, broker.port, topic="sensekit/#")
            try:
                assert run_demo(broker.url, out=io.StringIO()) == 0
                subscriber.wait_for(
                    lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped"
                )
            finally:
                subscriber.close()
            received = [
                m for m in subscriber.messages if m.topic != "sensekit/probe-site/probe/status"
            ]
            windows = [m.payload for m in received if m.topic.endswith("/window")]
            stats = [m.payload for m in received if m.topic.endswith("/stats")]
            assert len({w["window_id"] for w in windows}) == len(windows) >= 4
            assert any(w["voice"] for w in windows) and any(w["faces"]["people"] for w in windows)
            demo_points = 1 + sum(points_of(m) for m in received)
            wait_for_points(influx, demo_points, "the demo's messages")
            check_windows(influx, windows)
            check_status_and_stats(influx, subscriber.states(), stats)

            # at-least-once delivery: every window again, as after a broker's lost acknowledgement;
            # then a window closed early with the same start as a stored one, and stats with a spool
            outside = [w for w in windows if w["zone"] == "outside"]
            partial = partial_window(outside[0], seq=max(w["seq"] for w in windows) + 1)
            spool_stats = stats_with_spool(stats[-1])
            topic = f"sensekit/{partial['site']}/{partial['device']}"
            publish(
                broker.host,
                broker.port,
                [(f"{topic}/zones/{w['zone']}/window", w) for w in windows]
                + [
                    (f"{topic}/zones/{partial['zone']}/window", partial),
                    (f"{topic}/stats", spool_stats),
                ],
            )
            extra = (
                len(windows) + 1 + 1 + len(spool_stats["cameras"]) + len(spool_stats["microphones"])
            )
            wait_for_points(influx, demo_points + extra, "the repeats")
            stored = check_windows(influx, [*windows, partial])
            assert stored[partial["window_id"]][0]["window_s"] == "7"
            log = red.log()
            for trouble in ("[error]", "[debug:log errors]", "[warn] [function:"):
                assert trouble not in log, log

        check_dashboard_queries(influx, [*windows, partial], [*stats, spool_stats])


def check_windows(
    influx: InfluxServer, windows: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Every window stored exactly once, at window_start, with its tags and counts."""
    rows = series_rows(influx.query('SELECT * FROM "sensekit_window"', "sensekit"))
    stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _tags, row in rows:
        stored[row["window_id"]].append(row)
    assert sorted(stored) == sorted(w["window_id"] for w in windows)
    for window in windows:
        (row,) = stored[window["window_id"]]  # once, however often it was delivered
        start, end = ms(window["window_start"]), ms(window["window_end"])
        assert row["time"] == start
        assert (row["site"], row["device"], row["zone"]) == (
            window["site"],
            window["device"],
            window["zone"],
        )
        assert row["window_s"] == str(round((end - start) / 1000))
        assert row["complete"] is window["complete"] and row["seq"] == window["seq"]
        faces, voice = window["faces"], window["voice"]
        assert row["people"] == faces["people"] and row["frames"] == faces["frames"]
        assert row["unclassified"] == faces["unclassified"]
        for name in EXPRESSIONS:
            assert row[name] == faces["expressions"][name], name
        assert row["net_emotion_score"] == faces["net_emotion_score"]
        if voice is None:
            assert row["voice_windows"] is None and row["arousal_low"] is None
        else:
            assert row["voice_windows"] == voice["windows"]
            assert row["voice_audio_s"] == voice["audio_s"]
            for level in ("low", "mid", "high"):
                assert row[f"arousal_{level}"] == voice["arousal"][level]
            for name in VOICE_EMOTIONS:
                assert row[f"voice_{name}"] == voice["emotions"][name]
    return stored


def check_status_and_stats(
    influx: InfluxServer, states: list[str], stats: list[dict[str, Any]]
) -> None:
    rows = series_rows(
        influx.query(
            """SELECT "state", "online" FROM "sensekit_status" WHERE "device" = 'demo-entrance'""",
            "sensekit",
        )
    )
    assert [row["state"] for _tags, row in rows] == states == ["online", "stopped"]
    assert [row["online"] for _tags, row in rows] == [1, 0]
    rows = series_rows(
        influx.query(
            'SELECT "uptime_s", "windows_published", "mqtt_connected", "interval_s", "version" '
            'FROM "sensekit_stats" WHERE "device" = \'demo-entrance\'',
            "sensekit",
        )
    )
    assert [row["time"] for _t, row in rows] == [ms(s["timestamp"]) for s in stats]
    for (_tags, row), message in zip(rows, stats, strict=True):
        assert row["uptime_s"] == message["uptime_s"]
        assert row["windows_published"] == message["windows_published"]
        assert row["mqtt_connected"] is message["mqtt"]["connected"]
        assert row["interval_s"] == message["interval_s"]
    rows = series_rows(influx.query('SELECT * FROM "sensekit_camera"', "sensekit"))
    assert len(rows) == sum(len(s["cameras"]) for s in stats)
    for _tags, row in rows:
        message = next(s for s in stats if ms(s["timestamp"]) == row["time"])
        camera = message["cameras"][row["camera"]]
        assert row["processed_fps"] == camera["processed_fps"] and row["state"] == camera["state"]


def check_dashboard_queries(
    influx: InfluxServer, windows: list[dict[str, Any]], stats: list[dict[str, Any]]
) -> None:
    """Runs every query of the dashboard as Grafana sends it, and compares what the panels would
    show with the same numbers computed from the messages (scores by sensekit.score)."""
    dashboard = json.loads(DASHBOARD.read_text())
    starts = [ms(w["window_start"]) for w in windows]
    time_from, time_to = min(starts) - 3_600_000, max(starts) + 3_600_000
    variables: dict[str, str] = {"DS": "unused", "timezone": "UTC"}

    def run(query: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        text = interpolate(query, variables, time_from, time_to, INTERVAL)
        return series_rows(influx.query(text, "sensekit"))

    # template variables, each from the ones before it, all values selected ("All")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        values = sorted(row["value"] for _tags, row in run(variable["query"]))
        expected = sorted({w[variable["name"]] for w in windows})
        assert values == expected, variable["name"]
        variables[variable["name"]] = regex_value(values)

    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    zones = sorted({w["zone"] for w in windows})

    def grouped(key: Callable[[dict[str, Any]], Any]) -> dict[Any, list[dict[str, Any]]]:
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for window in windows:
            groups[key(window)].append(window)
        return groups

    def score(group: list[dict[str, Any]]) -> float | None:
        return net_emotion_score(summed_expressions(w["faces"]["expressions"] for w in group))

    def only_target(title: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        (target,) = panels[title]["targets"]
        return run(target["query"])

    # net emotion score over the whole range: summed counts, scored
    rows = only_target("Net emotion score, whole time range")
    got = {tags["zone"]: row["net emotion score"] for tags, row in rows}
    by_zone = grouped(lambda w: w["zone"])
    expected_range = {zone: score(by_zone[zone]) for zone in zones}
    assert set(got) == {zone for zone in zones if expected_range[zone] is not None}
    for zone, value in got.items():
        assert close(value, expected_range[zone]), (zone, value, expected_range[zone])
    # ... which is not the average of the window scores (the partial window is sad)
    outside_scores = [w["faces"]["net_emotion_score"] for w in by_zone["outside"]]
    outside_scores = [s for s in outside_scores if s is not None]
    assert not close(got["outside"], sum(outside_scores) / len(outside_scores))

    for title, size in (
        ("Net emotion score per interval", INTERVAL_MS),
        ("Net emotion score per day", DAY_MS),
    ):
        rows = only_target(title)
        groups = grouped(lambda w, size=size: (w["zone"], bucket(ms(w["window_start"]), size)))
        expected = {key: score(group) for key, group in groups.items()}
        got = {(tags["zone"], row["time"]): row["net emotion score"] for tags, row in rows}
        assert set(got) == {key for key, value in expected.items() if value is not None}, title
        for key, value in got.items():
            assert close(value, expected[key]), (title, key, value, expected[key])

    rows = only_target("People per interval")
    groups = grouped(lambda w: (w["zone"], bucket(ms(w["window_start"]), INTERVAL_MS)))
    assert {(tags["zone"], row["time"]): row["people"] for tags, row in rows} == {
        key: sum(w["faces"]["people"] for w in group) for key, group in groups.items()
    }

    by_interval = grouped(lambda w: bucket(ms(w["window_start"]), INTERVAL_MS))
    rows = only_target("Expression mix")
    assert {
        row["time"]: {k: row[k] for k in (*EXPRESSIONS, "unclassified")} for _t, row in rows
    } == {
        t: {k: sum(w["faces"]["expressions"][k] for w in group) for k in EXPRESSIONS}
        | {"unclassified": sum(w["faces"]["unclassified"] for w in group)}
        for t, group in by_interval.items()
    }
    rows = only_target("Voice arousal")
    assert {row["time"]: (row["low"], row["mid"], row["high"]) for _t, row in rows} == {
        t: tuple(
            sum(w["voice"]["arousal"][a] for w in group if w["voice"])
            for a in ("low", "mid", "high")
        )
        for t, group in by_interval.items()
        if any(w["voice"] for w in group)
    }
    rows = only_target("Voice emotions")
    assert {row["time"]: tuple(row[e] for e in VOICE_EMOTIONS) for _t, row in rows} == {
        t: tuple(
            sum(w["voice"]["emotions"][e] for w in group if w["voice"]) for e in VOICE_EMOTIONS
        )
        for t, group in by_interval.items()
        if any(w["voice"] for w in group)
    }

    rows = only_target("Device status")
    assert [(tags["device"], row["state"]) for tags, row in rows] == [
        ("demo-entrance", "online"),
        ("demo-entrance", "stopped"),
    ]

    stats_by_interval: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for message in stats:
        stats_by_interval[bucket(ms(message["timestamp"]), INTERVAL_MS)].append(message)
    rows = only_target("Spool and delivery")
    assert {row["time"]: row["spool depth"] for _t, row in rows} == {
        t: max((m["spool"] or {}).get("depth", -1) for m in group)
        if any(m["spool"] for m in group)
        else None
        for t, group in stats_by_interval.items()
    }
    assert max(row["dropped"] or 0 for _t, row in rows) == 2
    rows = only_target("Degraded sources")
    assert {row["time"]: row["degraded"] for _t, row in rows} == {
        t: max(len(m["degraded"]) for m in group) for t, group in stats_by_interval.items()
    }
