"""The local /metrics and /healthz endpoint, over a real HTTP server on a loopback port."""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sensekit.metrics_http import (
    PROMETHEUS_CONTENT_TYPE,
    MetricsServer,
    escape_label_value,
    prometheus_text,
)

STATS: dict[str, Any] = {
    "schema": "sensekit.stats/3",
    "site": "lab",
    "device": "pi-7",
    "timestamp": "2026-11-22T10:00:00.000Z",
    "interval_s": 30.0,
    "uptime_s": 12.5,
    "version": "0.4.0",
    "models": {
        "detector_short_range": {
            "file": "face_detection_short_range.tflite",
            "sha256": "0123abcd4567ef89",
        },
        "expression": {"file": "expression_int8.tflite", "sha256": "fedcba9876543210"},
        "voice": {"file": "voice_int8.tflite", "sha256": "00ff00ff00ff00ff"},
    },
    "cameras": {
        "door.main-1_a": {
            "state": "reopening",
            "error": 'read failed: "VIDIOC_DQBUF"\nerrno 19 \\ no device',
            "camera_fps": 15.0,
            "processed_fps": 14.8,
            "skipped_fps": 0.2,
            "frames_processed": 1200,
            "frames_dropped": 3,
            "reopens": 1,
        },
        "kiosk": {
            "state": "ok",
            "error": None,
            "camera_fps": 30.0,
            "processed_fps": 30.0,
            "skipped_fps": 0.0,
            "frames_processed": 2400,
            "frames_dropped": 0,
            "reopens": 0,
        },
    },
    "microphones": {
        "counter": {
            "state": "ok",
            "error": None,
            "audio_s": 60.0,
            "overflows": 0,
            "dropped_s": 0.0,
            "speech_windows": 12,
            "reopens": 0,
        }
    },
    "voice": {"normalisation": "learn", "calibrated": False, "normalisation_windows": 0},
    "inference_ms": {"detector_short_range": 1.2, "expression": 0.6, "voice_model": 0.1},
    "mqtt": {
        "connected": True,
        "state": "connected",
        "reconnects": 2,
        "unacknowledged": 0,
        "last_error": None,
    },
    "spool": {"depth": 3, "bytes": 2400, "oldest_age_s": 61.2, "dropped": 0, "delivered": 40},
    "windows_published": 40,
    "degraded": ["camera door.main-1_a: reopening (no frames for 10 s)"],
    "rss_mb": 130.2,
    "cpu_temp_c": 51.5,
    "threads": 9,
    "open_fds": 23,
}
HEALTHY = {**STATS, "degraded": []}

# The text exposition format 0.0.4, one sample per line.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|NaN|[-+]Inf)"
SAMPLE = re.compile(
    rf"^(?P<name>{NAME})(?:\{{(?P<labels>(?:{LABEL_NAME}={LABEL_VALUE})"
    rf"(?:,{LABEL_NAME}={LABEL_VALUE})*)?\}})? (?P<value>{VALUE})$"
)
LABEL = re.compile(rf"({LABEL_NAME})=({LABEL_VALUE})")
COMMENT = re.compile(rf"^# (?P<kind>HELP|TYPE) (?P<name>{NAME}) (?P<rest>.*)$")


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])


def parse(text: str, constant: bool = True) -> dict[str, list[tuple[dict[str, str], str]]]:
    """Samples by metric name, checking the grammar, HELP/TYPE and family contiguity."""
    assert text.endswith("\n")
    helped: set[str] = set()
    typed: dict[str, str] = {}
    samples: dict[str, list[tuple[dict[str, str], str]]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("#"):
            comment = COMMENT.match(line)
            assert comment, line
            name = comment["name"]
            if comment["kind"] == "HELP":
                assert name not in helped, f"second HELP for {name}"
                helped.add(name)
            else:
                assert comment["rest"] in ("counter", "gauge"), line
                assert name not in typed, f"second TYPE for {name}"
                typed[name] = comment["rest"]
            current = name
            continue
        sample = SAMPLE.match(line)
        assert sample, f"not a sample line: {line!r}"
        name = sample["name"]
        assert name == current, f"{name} is not next to its HELP/TYPE"
        assert name in helped and name in typed, name
        assert name.startswith("sensekit_")
        assert name.endswith("_total") == (typed[name] == "counter"), name
        labels = {k: unescape(v) for k, v in LABEL.findall(sample["labels"] or "")}
        if constant:
            assert list(labels)[:2] == ["site", "device"], line
        samples.setdefault(name, []).append((labels, sample["value"]))
    return samples


def value_of(samples: dict[str, list[tuple[dict[str, str], str]]], name: str, **labels: str) -> str:
    matches = [
        v for lab, v in samples.get(name, []) if all(lab.get(k) == w for k, w in labels.items())
    ]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[], dict[str, Any]]], str]]:
    servers: list[MetricsServer] = []

    def start(snapshot: Callable[[], dict[str, Any]]) -> str:
        server = MetricsServer("127.0.0.1", 0, snapshot)
        server.start()
        servers.append(server)
        assert server.port > 0
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.stop()


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_metrics_are_valid_exposition_text_with_the_expected_values(serve) -> None:
    base = serve(lambda: STATS)
    status, headers, body = fetch(base + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == PROMETHEUS_CONTENT_TYPE
    text = body.decode()
    samples = parse(text)

    assert 'sensekit_spool_depth{site="lab",device="pi-7"} 3\n' in text
    assert value_of(samples, "sensekit_up") == "1"
    assert value_of(samples, "sensekit_uptime_seconds") == "12.5"
    assert value_of(samples, "sensekit_info", version="0.4.0") == "1"
    assert (
        value_of(
            samples,
            "sensekit_model_info",
            model="detector_short_range",
            file="face_detection_short_range.tflite",
            sha256="0123abcd4567ef89",
        )
        == "1"
    )
    assert len(samples["sensekit_model_info"]) == 3

    door = {"camera": "door.main-1_a"}
    assert value_of(samples, "sensekit_camera_fps", **door) == "15.0"
    assert value_of(samples, "sensekit_camera_processed_fps", **door) == "14.8"
    assert value_of(samples, "sensekit_camera_skipped_fps", **door) == "0.2"
    assert value_of(samples, "sensekit_camera_frames_processed_total", **door) == "1200"
    assert value_of(samples, "sensekit_camera_frames_dropped_total", **door) == "3"
    assert value_of(samples, "sensekit_camera_reopens_total", **door) == "1"
    assert value_of(samples, "sensekit_camera_up", **door) == "0"
    assert value_of(samples, "sensekit_camera_up", camera="kiosk") == "1"

    mic = {"microphone": "counter"}
    assert value_of(samples, "sensekit_microphone_audio_seconds_total", **mic) == "60.0"
    assert value_of(samples, "sensekit_microphone_overflows_total", **mic) == "0"
    assert value_of(samples, "sensekit_microphone_dropped_audio_seconds_total", **mic) == "0.0"
    assert value_of(samples, "sensekit_microphone_speech_windows_total", **mic) == "12"
    assert value_of(samples, "sensekit_microphone_reopens_total", **mic) == "0"
    assert value_of(samples, "sensekit_microphone_up", **mic) == "1"

    assert value_of(samples, "sensekit_inference_milliseconds", model="expression") == "0.6"
    assert value_of(samples, "sensekit_mqtt_connected") == "1"
    assert value_of(samples, "sensekit_mqtt_reconnects_total") == "2"
    assert value_of(samples, "sensekit_voice_calibrated") == "0"
    assert value_of(samples, "sensekit_spool_bytes") == "2400"
    assert value_of(samples, "sensekit_spool_oldest_age_seconds") == "61.2"
    assert value_of(samples, "sensekit_spool_dropped_windows_total") == "0"
    assert value_of(samples, "sensekit_windows_published_total") == "40"
    assert value_of(samples, "sensekit_resident_memory_megabytes") == "130.2"
    assert value_of(samples, "sensekit_cpu_temperature_celsius") == "51.5"
    assert value_of(samples, "sensekit_threads") == "9"
    assert value_of(samples, "sensekit_open_fds") == "23"
    assert value_of(samples, "sensekit_degraded") == "1"


def test_error_text_is_never_a_label_and_odd_names_are_escaped() -> None:
    stats = copy.deepcopy(STATS)
    odd = 'cam "north"\\west\nside'
    stats["cameras"][odd] = stats["cameras"].pop("kiosk")
    text = prometheus_text(stats)
    samples = parse(text)

    assert "VIDIOC_DQBUF" not in text and "errno" not in text
    assert 'camera="door.main-1_a"' in text
    assert 'camera="cam \\"north\\"\\\\west\\nside"' in text
    assert value_of(samples, "sensekit_camera_up", camera=odd) == "1"
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_missing_and_empty_sections_leave_their_samples_out() -> None:
    stats = {
        k: v
        for k, v in STATS.items()
        if k not in ("microphones", "voice", "spool", "models", "threads")
    }
    stats.update(cpu_temp_c=None, mqtt=None, cameras={"door": {"state": "ok", "camera_fps": None}})
    samples = parse(prometheus_text(stats))
    assert not any("microphone" in name for name in samples)
    assert "sensekit_cpu_temperature_celsius" not in samples
    assert "sensekit_mqtt_connected" not in samples
    assert "sensekit_spool_depth" not in samples
    assert "sensekit_threads" not in samples
    assert "sensekit_camera_fps" not in samples
    assert value_of(samples, "sensekit_camera_up", camera="door") == "1"
    assert value_of(samples, "sensekit_open_fds") == "23"

    # Nothing but the process itself: still a valid scrape.
    bare = prometheus_text({})
    assert list(parse(bare, constant=False)) == ["sensekit_up"]
    assert bare.endswith("\nsensekit_up 1\n")


def test_healthz_is_200_when_healthy_and_503_when_degraded(serve) -> None:
    current = {"stats": HEALTHY}
    base = serve(lambda: current["stats"])

    status, headers, body = fetch(base + "/healthz")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"status": "ok", "degraded": [], "uptime_s": 12.5}

    current["stats"] = STATS
    status, _, body = fetch(base + "/healthz")
    assert status == 503
    assert json.loads(body) == {
        "status": "degraded",
        "degraded": ["camera door.main-1_a: reopening (no frames for 10 s)"],
        "uptime_s": 12.5,
    }


def test_unknown_paths_are_404_and_other_methods_are_refused(serve) -> None:
    base = serve(lambda: STATS)
    assert fetch(base + "/")[0] == 404
    assert fetch(base + "/metrics/extra")[0] == 404
    assert fetch(base + "/metrics?name[]=x")[0] == 200
    status, headers, _ = fetch(base + "/metrics", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_head_answers_headers_without_a_body(serve) -> None:
    base = serve(lambda: STATS)
    status, headers, body = fetch(base + "/metrics", method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers["Content-Length"]) == len(prometheus_text(STATS).encode())


def test_a_failing_snapshot_is_a_500_and_the_server_keeps_answering(serve) -> None:
    calls = {"n": 0}

    def snapshot() -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("stats not ready\nyet")
        return HEALTHY

    base = serve(snapshot)
    status, _, body = fetch(base + "/metrics")
    assert status == 500
    assert body == b"snapshot failed: RuntimeError: stats not ready yet\n"
    assert fetch(base + "/metrics")[0] == 200
    assert fetch(base + "/healthz")[0] == 200


def test_concurrent_scrapes_all_succeed(serve) -> None:
    base = serve(lambda: STATS)
    results: list[int] = []

    def scrape() -> None:
        results.append(fetch(base + "/metrics")[0])

    threads = [threading.Thread(target=scrape) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [200] * 8


def test_stop_closes_the_port(serve) -> None:
    server = MetricsServer("127.0.0.1", 0, lambda: STATS)
    server.start()
    port = server.port
    assert fetch(f"http://127.0.0.1:{port}/healthz")[0] == 503
    server.stop()
    with pytest.raises(urllib.error.URLError):
        fetch(f"http://127.0.0.1:{port}/healthz")
    server.stop()  # twice is harmless
