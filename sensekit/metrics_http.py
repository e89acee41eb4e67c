"""A local HTTP endpoint with the stats in Prometheus text format and a health check.

The MQTT stats topic serves dashboards; a node exporter, a load balancer or an operator with
curl wants a pull endpoint instead, without a broker in the way. The numbers are the same
snapshot the stats message is built from, so both views always agree. The server is stdlib
``http.server``: a handful of scrapes per minute does not justify a web framework.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "sensekit_"
TEXT = "text/plain; charset=utf-8"

# --------------------------------------------------------------------------- exposition format


def escape_label_value(value: str) -> str:
    """Escape a label value as the exposition format requires (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: Any) -> float | int | None:
    """A sample value, or None for anything that is not a number (skipped, not an error).

    The stats dict crosses module boundaries and versions; a field that is missing, None or of
    an unexpected type must cost one sample, never the whole scrape.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return None


def _format_value(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(slots=True)
class _Family:
    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float | int]] = field(default_factory=list)


class _Exposition:
    """Collects samples per metric family, because the format wants each family contiguous."""

    def __init__(self, constant_labels: dict[str, str]) -> None:
        self._constant = constant_labels
        self._families: dict[str, _Family] = {}

    def add(self, name: str, kind: str, help_text: str, value: Any, **labels: Any) -> None:
        number = _number(value)
        if number is None:
            return
        family = self._families.setdefault(name, _Family(PREFIX + name, kind, help_text))
        family.samples.append(({k: str(v) for k, v in labels.items()}, number))

    def gauge(self, name: str, help_text: str, value: Any, **labels: Any) -> None:
        self.add(name, "gauge", help_text, value, **labels)

    def counter(self, name: str, help_text: str, value: Any, **labels: Any) -> None:
        self.add(name, "counter", help_text, value, **labels)

    def render(self) -> str:
        lines: list[str] = []
        for family in self._families.values():
            lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
            lines.append(f"# TYPE {family.name} {family.kind}")
            for labels, value in family.samples:
                pairs = {**self._constant, **labels}
                rendered = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs.items())
                braced = f"{{{rendered}}}" if rendered else ""
                lines.append(f"{family.name}{braced} {_format_value(value)}")
        return "\n".join(lines) + "\n" if lines else ""


# Per-source metrics: (stats key, metric suffix, kind, help).
_CAMERA_METRICS = (
    ("camera_fps", "fps", "gauge", "Frames per second delivered by the camera."),
    ("processed_fps", "processed_fps", "gauge", "Frames per second run through inference."),
    ("skipped_fps", "skipped_fps", "gauge", "Frames per second dropped because inference lagged."),
    ("frames_processed", "frames_processed_total", "counter", "Frames run through inference."),
    ("frames_dropped", "frames_dropped_total", "counter", "Frames dropped before inference."),
    ("reopens", "reopens_total", "counter", "Times the camera was reopened after a failure."),
)
_MICROPHONE_METRICS = (
    ("audio_s", "audio_seconds_total", "counter", "Seconds of audio captured."),
    ("overflows", "overflows_total", "counter", "Audio buffer overflows reported by PortAudio."),
    ("dropped_s", "dropped_audio_seconds_total", "counter", "Seconds of audio dropped."),
    ("speech_windows", "speech_windows_total", "counter", "Speech windows classified."),
    ("reopens", "reopens_total", "counter", "Times the microphone was reopened after a failure."),
)


def _sources(
    out: _Exposition,
    section: Any,
    kind: str,
    metrics: Iterable[tuple[str, str, str, str]],
) -> None:
    for name, source in _mapping(section).items():
        if not isinstance(source, Mapping):
            continue
        labels = {kind: name}
        for key, suffix, metric_kind, help_text in metrics:
            out.add(f"{kind}_{suffix}", metric_kind, help_text, source.get(key), **labels)
        state = source.get("state")
        if state is not None:
            out.gauge(f"{kind}_up", f"1 when the {kind} delivers, else 0.", state == "ok", **labels)


def prometheus_text(stats: Mapping[str, Any]) -> str:
    """Render a ``sensekit.stats/3`` dict in the Prometheus text exposition format (0.0.4).

    Every section may be absent or None and is then left out; errors are deliberately not
    labels (free text would make a new time series per message), only the ``up`` gauges and
    ``sensekit_degraded`` reflect them.
    """
    constant = {k: str(stats[k]) for k in ("site", "device") if stats.get(k) is not None}
    out = _Exposition(constant)
    out.gauge("up", "1 while the sensekit daemon answers.", 1)
    out.gauge("uptime_seconds", "Seconds since the daemon started.", stats.get("uptime_s"))
    if stats.get("version") is not None:
        out.gauge("info", "The sensekit version, as a label.", 1, version=stats["version"])
    for role, model in _mapping(stats.get("models")).items():
        if isinstance(model, Mapping):
            info = {k: model.get(k) for k in ("file", "sha256") if model.get(k) is not None}
            out.gauge("model_info", "The model files loaded, as labels.", 1, model=role, **info)

    _sources(out, stats.get("cameras"), "camera", _CAMERA_METRICS)
    _sources(out, stats.get("microphones"), "microphone", _MICROPHONE_METRICS)

    voice = _mapping(stats.get("voice"))
    out.gauge(
        "voice_calibrated",
        "1 when the voice normalisation uses saved site statistics.",
        voice.get("calibrated"),
    )
    out.gauge(
        "voice_normalisation_windows",
        "Speech windows the site voice normalisation has learnt from.",
        voice.get("normalisation_windows"),
    )

    for model, ms in _mapping(stats.get("inference_ms")).items():
        out.gauge("inference_milliseconds", "Mean time of one model call.", ms, model=model)

    mqtt = _mapping(stats.get("mqtt"))
    out.gauge("mqtt_connected", "1 while connected to the MQTT broker.", mqtt.get("connected"))
    out.counter("mqtt_reconnects_total", "Reconnections to the broker.", mqtt.get("reconnects"))
    out.gauge(
        "mqtt_unacknowledged",
        "Messages the broker has not acknowledged yet.",
        mqtt.get("unacknowledged"),
    )

    spool = _mapping(stats.get("spool"))
    out.gauge("spool_depth", "Windows waiting in the spool for the broker.", spool.get("depth"))
    out.gauge("spool_bytes", "Bytes the spool holds.", spool.get("bytes"))
    out.gauge(
        "spool_oldest_age_seconds",
        "Age of the oldest window in the spool.",
        spool.get("oldest_age_s"),
    )
    out.counter(
        "spool_dropped_windows_total",
        "Windows dropped because the spool was full.",
        spool.get("dropped"),
    )
    out.counter(
        "spool_delivered_windows_total",
        "Windows delivered from the spool.",
        spool.get("delivered"),
    )

    out.counter("windows_published_total", "Windows published.", stats.get("windows_published"))
    out.gauge("resident_memory_megabytes", "Resident memory of the daemon.", stats.get("rss_mb"))
    out.gauge("cpu_temperature_celsius", "SoC temperature.", stats.get("cpu_temp_c"))
    out.gauge("threads", "Threads in the daemon.", stats.get("threads"))
    out.gauge("open_fds", "Open file descriptors of the daemon.", stats.get("open_fds"))
    degraded = stats.get("degraded")
    if degraded is not None:
        out.gauge("degraded", "Number of degraded conditions.", len(_degraded_list(degraded)))
    return out.render()


def _degraded_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


def health(stats: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """The ``/healthz`` answer: 503 while anything is degraded, so a probe can act on it."""
    degraded = _degraded_list(stats.get("degraded"))
    body = {
        "status": "degraded" if degraded else "ok",
        "degraded": degraded,
        "uptime_s": stats.get("uptime_s"),
    }
    return (HTTPStatus.SERVICE_UNAVAILABLE if degraded else HTTPStatus.OK), body


# --------------------------------------------------------------------------- HTTP server


class _Server(ThreadingHTTPServer):
    # Daemon handler threads, not joined on close: a stuck client must not block shutdown.
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.snapshot = snapshot
        self.failing = False
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a scraper hanging up is not worth one.
        log.debug("metrics request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "sensekit"
    sys_version = ""
    timeout = 10  # a client that connects and says nothing gives its thread back

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _not_allowed(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, TEXT, b"", True)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _answer(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path not in ("/metrics", "/healthz"):
            body = b"not found: try /metrics or /healthz\n"
            self._send(HTTPStatus.NOT_FOUND, TEXT, body, send_body)
            return
        try:
            stats = self.server.snapshot()
            if path == "/metrics":
                status, content_type = HTTPStatus.OK, PROMETHEUS_CONTENT_TYPE
                body = prometheus_text(stats).encode()
            else:
                status, answer = health(stats)
                content_type = "application/json"
                body = (json.dumps(answer) + "\n").encode()
        except Exception as exc:
            # Log a failing snapshot once per failure streak, not on every scrape.
            if not self.server.failing:
                log.warning("metrics snapshot failed: %s: %s", type(exc).__name__, exc)
            self.server.failing = True
            text = " ".join(f"snapshot failed: {type(exc).__name__}: {exc}".splitlines())
            message = (text + "\n").encode()
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, TEXT, message, send_body)
            return
        self.server.failing = False
        self._send(status, content_type, body, send_body)

    def _send(self, status: int, content_type: str, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class MetricsServer:
    """``/metrics`` and ``/healthz`` on a local port, served from a daemon thread.

    ``snapshot`` is called once per request, on the request's thread, so it must be
    thread-safe and cheap (return the last stats dict rather than recomputing it).
    """

    def __init__(self, bind: str, port: int, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self._bind = bind
        self._port = port
        self._snapshot = snapshot
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the real one when 0 asked for an ephemeral port)."""
        if self._server is not None:
            return int(self._server.server_address[1])
        return self._port

    def start(self) -> None:
        """Bind and serve; an ``OSError`` (port in use, bad address) is left to the caller."""
        if self._server is not None:
            return
        server_class = _Server6 if ":" in self._bind else _Server
        self._server = server_class((self._bind, self._port), self._snapshot)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="sensekit-metrics",
            daemon=True,
        )
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics and /healthz", self._bind, self.port)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and close the listening socket; requests in flight finish on their own."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        # Bounded by serve_forever's poll interval: handlers run on their own threads.
        server.shutdown()
        thread.join(timeout_s)
        server.server_close()
