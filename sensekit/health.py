"""Health numbers for the stats topic: rates, model times, drops, spool, reconnects, memory,
temperature, threads and file descriptors (the last two show leaks in a months-long run)."""

from __future__ import annotations

import hashlib
import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensekit import __version__
from sensekit.publish.payloads import STATS_SCHEMA, utc_iso

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature_c() -> float | None:
    """The SoC temperature on a Pi (and most Linux boards); None where it is not exposed."""
    try:
        return round(int(THERMAL_ZONE.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def rss_mb() -> float:
    """Resident memory now (from /proc), falling back to the peak from getrusage."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def open_fds() -> int | None:
    """File descriptors held now: a leak (sockets of a reconnect loop, a device reopened
    without closing the old one) shows here long before the process runs out."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def model_info(path: Path) -> dict[str, str]:
    """File name and the first 16 hex digits of its SHA-256: which model a device really runs,
    whatever its configuration says."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return {"file": path.name, "sha256": "unreadable"}
    return {"file": path.name, "sha256": digest.hexdigest()[:16]}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


@dataclass(slots=True)
class CameraCounters:
    """Per-camera counts since the last stats message, turned into rates when published."""

    processed: int = 0
    processed_total: int = 0
    last_captured: float = 0.0
    last_dropped: float = 0.0


@dataclass(slots=True)
class HealthReporter:
    site: str
    device: str
    interval_s: float = 30.0
    """stats.interval_s, published so a dashboard knows when a silent device is dead."""
    started: float = field(default_factory=time.monotonic)
    last_report: float = field(default_factory=time.monotonic)
    cameras: dict[str, CameraCounters] = field(default_factory=dict)

    def frame_processed(self, camera: str) -> None:
        counters = self.cameras.setdefault(camera, CameraCounters())
        counters.processed += 1
        counters.processed_total += 1

    def report(
        self,
        timestamp: float,
        sources: dict[str, dict[str, Any]],
        inference_ms: dict[str, float],
        mqtt: dict[str, Any],
        microphones: dict[str, dict[str, Any]] | None = None,
        voice: dict[str, Any] | None = None,
        models: dict[str, dict[str, str]] | None = None,
        spool: dict[str, Any] | None = None,
        windows_published: int = 0,
        degraded: list[str] | None = None,
    ) -> dict[str, Any]:
        now = time.monotonic()
        elapsed = max(now - self.last_report, 1e-6)
        self.last_report = now
        cameras: dict[str, Any] = {}
        for name, source in sources.items():
            counters = self.cameras.setdefault(name, CameraCounters())
            captured = float(source.get("frames_captured", 0.0))
            dropped = float(source.get("frames_dropped", 0.0))
            new_captured = max(captured - counters.last_captured, 0.0)
            new_dropped = max(dropped - counters.last_dropped, 0.0)
            cameras[name] = {
                "state": source.get("state", "ok"),
                "error": source.get("error"),
                "camera_fps": round(new_captured / elapsed, 2),
                "processed_fps": round(counters.processed / elapsed, 2),
                "skipped_fps": round(new_dropped / elapsed, 2),
                "frames_processed": counters.processed_total,
                "frames_dropped": int(dropped),
                "reopens": int(source.get("reopens", 0)),
            }
            counters.last_captured, counters.last_dropped = captured, dropped
            counters.processed = 0
        report: dict[str, Any] = {
            "schema": STATS_SCHEMA,
            "site": self.site,
            "device": self.device,
            "timestamp": utc_iso(timestamp),
            "interval_s": self.interval_s,
            "uptime_s": round(now - self.started, 1),
            "cameras": cameras,
            "inference_ms": {k: round(v, 3) for k, v in inference_ms.items()},
            "mqtt": mqtt,
            "spool": spool,
            "windows_published": windows_published,
            "degraded": degraded or [],
            "rss_mb": rss_mb(),
            "cpu_temp_c": cpu_temperature_c(),
            "threads": threading.active_count(),
            "open_fds": open_fds(),
            "version": __version__,
            "models": models or {},
        }
        if microphones is not None:
            report["microphones"] = microphones
        if voice is not None:
            report["voice"] = voice
        return report
