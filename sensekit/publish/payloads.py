"""The MQTT contract: topics and JSON payloads (schemas in sensekit/schemas/).

Every payload names its schema and version, the site and device, and a UTC time, so a message
read out of context (a log, a retained topic) still says what it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sensekit import __version__
from sensekit.score import net_emotion_score
from sensekit.types import FaceCounts, VoiceCounts, ZoneWindow

WINDOW_SCHEMA = "sensekit.window/4"
STATUS_SCHEMA = "sensekit.status/1"
STATS_SCHEMA = "sensekit.stats/3"

STATUS_ONLINE, STATUS_OFFLINE, STATUS_STOPPED = "online", "offline", "stopped"


def utc_iso(timestamp: float) -> str:
    """ISO 8601 UTC with millisecond precision and a Z suffix."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _compact(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    site: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def stats(self) -> str:
        return f"{self.base}/stats"

    @property
    def privacy(self) -> str:
        """The retained privacy manifest: what this device measures and withholds."""
        return f"{self.base}/privacy"

    def window(self, zone: str) -> str:
        return f"{self.base}/zones/{zone}/window"


def window_id(window: ZoneWindow) -> str:
    """Stable across restarts and replays: the same zone and time span always get the same id,
    so a dashboard can drop a window delivered twice."""
    span = round(window.window_end - window.window_start)
    return f"{window.site}/{window.device}/{window.zone}/{_compact(window.window_start)}/{span}s"


def faces_part(faces: FaceCounts | None) -> dict[str, Any] | None:
    if faces is None:
        return None
    return {
        "camera": faces.camera,
        "frames": faces.frames,
        "people": faces.people,
        "expressions": faces.expressions,
        "unclassified": faces.unclassified,
        "mean_probabilities": faces.mean_probabilities,
        "net_emotion_score": net_emotion_score(faces.expressions),
    }


def voice_part(voice: VoiceCounts | None) -> dict[str, Any] | None:
    if voice is None:
        return None
    return {
        "microphones": list(voice.microphones),
        "audio_s": voice.audio_s,
        "windows": voice.windows,
        "k_windows": voice.k_windows,
        "arousal": voice.arousal,
        "emotions": voice.emotions,
    }


def window_payload(window: ZoneWindow, seq: int) -> dict[str, Any]:
    return {
        "schema": WINDOW_SCHEMA,
        "site": window.site,
        "device": window.device,
        "zone": window.zone,
        "window_id": window_id(window),
        "seq": seq,
        "window_start": utc_iso(window.window_start),
        "window_end": utc_iso(window.window_end),
        "complete": window.complete,
        "k_threshold": window.k_threshold,
        "dp_epsilon": window.dp_epsilon,
        "faces": faces_part(window.faces),
        "voice": voice_part(window.voice),
        "version": __version__,
    }


def status_payload(site: str, device: str, state: str, timestamp: float) -> dict[str, Any]:
    return {
        "schema": STATUS_SCHEMA,
        "site": site,
        "device": device,
        "state": state,
        "timestamp": utc_iso(timestamp),
        "version": __version__,
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=False).encode("utf-8")
