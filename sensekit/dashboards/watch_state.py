"""What `sensekit watch` knows about the devices on a broker: a pure model of the messages seen.

`WatchState.apply(message)` folds one received message into the model and says what it did
with it; nothing here reads the clock, the network or the terminal. Judgements that depend on
time (is a device dead?) take `now` as an argument, so a recorded log replays to exactly the
same picture and the tests can ask "and 40 s later?" without sleeping.

Rules taken from the MQTT contract (README, "MQTT contract for dashboard authors"):

- windows are delivered *at least once*: a `window_id` already seen for a zone is a repeat and
  changes nothing; a window older than the one shown (an earlier `window_start`) is late and
  is ignored too, so the view always shows the newest window of each zone;
- a device is dead when its retained status is `offline` (the broker's last will) or when no
  stats message arrived for 3 × the `interval_s` its last stats announced; `stopped` is a
  clean shutdown, not a failure;
- an empty payload on a retained topic clears it (a decommissioned device or zone goes away).

Payloads are read leniently (a dashboard must not fall over on a field it does not expect): a
message that cannot be understood is counted and described, never raised.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sensekit.dashboards.messages import Message, TopicParts, parse_topic, parse_utc
from sensekit.score import net_emotion_score
from sensekit.types import EXPRESSION_LABELS, VOICE_AROUSAL_LABELS

DEAD_AFTER_INTERVALS = 3.0
"""No stats for this many announced intervals means the device is dead (the contract's rule)."""

ASSUMED_INTERVAL_S = 30.0
"""stats.interval_s's default: used only for a device whose stats were never seen (a retained
`online` status, then silence), so that it too is declared dead eventually."""

SEEN_IDS_PER_ZONE = 256
"""Window ids remembered per zone for deduplication. A repeat is normally the newest window
or close to it (it is resent when its acknowledgement was lost), so a bounded memory is
enough and keeps a months-long watch from growing."""


class Applied(StrEnum):
    """What `WatchState.apply` did with a message (the tests and the plain mode's log use it)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # a window_id already seen for this zone
    LATE = "late"  # a window older than the zone's newest one
    CLEARED = "cleared"  # an empty retained message removed what the topic held
    MALFORMED = "malformed"  # on one of sensekit's topics, but not understandable
    FOREIGN = "foreign"  # not one of sensekit's topics under the prefix


class Liveness(StrEnum):
    ALIVE = "alive"
    DEAD = "dead"
    STOPPED = "stopped"
    WAITING = "waiting"  # online, no stats yet, not silent long enough to call it dead
    UNKNOWN = "unknown"  # no status and no stats (only retained windows, say)


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """The device's last status. `since` is when that state began, when it is known: the
    payload's timestamp for online and stopped; for offline (the last will, whose timestamp is
    when the device connected) the moment it arrived live, unknown when it was retained."""

    state: str
    since: float | None
    received_at: float
    retained: bool


@dataclass(frozen=True, slots=True)
class CameraStats:
    name: str
    state: str
    processed_fps: float | None
    frames_dropped: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class MicrophoneStats:
    name: str
    state: str
    dropped_s: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class StatsSummary:
    """The parts of a stats message an operator looks at first."""

    received_at: float
    interval_s: float | None  # None before stats schema v3
    uptime_s: float | None
    cameras: tuple[CameraStats, ...]
    microphones: tuple[MicrophoneStats, ...]
    spool_depth: int | None  # None: the device runs without a spool
    mqtt_state: str | None
    degraded: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FacesView:
    camera: str
    frames: int
    people: int
    expressions: tuple[tuple[str, int], ...]  # in EXPRESSION_LABELS order
    unclassified: int
    score: float | None


@dataclass(frozen=True, slots=True)
class VoiceView:
    microphones: tuple[str, ...]
    windows: int
    arousal: tuple[tuple[str, int], ...]  # in VOICE_AROUSAL_LABELS order


@dataclass(frozen=True, slots=True)
class WindowView:
    """One zone's window as shown."""

    window_id: str
    seq: int | None
    start: float
    end: float
    complete: bool
    dp_epsilon: float | None
    faces: FacesView | None
    voice: VoiceView | None
    received_at: float


@dataclass(slots=True)
class ZoneState:
    name: str
    window: WindowView | None = None
    duplicates: int = 0
    late: int = 0
    seen_ids: OrderedDict[str, None] = field(default_factory=OrderedDict, repr=False)

    def remember(self, window_id: str) -> None:
        self.seen_ids[window_id] = None
        while len(self.seen_ids) > SEEN_IDS_PER_ZONE:
            self.seen_ids.popitem(last=False)


@dataclass(slots=True)
class DeviceState:
    site: str
    device: str
    first_seen: float
    status: StatusInfo | None = None
    stats: StatsSummary | None = None
    zones: dict[str, ZoneState] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.site}/{self.device}"

    def zone(self, name: str) -> ZoneState:
        if name not in self.zones:
            self.zones[name] = ZoneState(name)
        return self.zones[name]

    def liveness(self, now: float) -> tuple[Liveness, str]:
        """The device's condition at `now` and why, in words for the operator."""
        if self.status is not None and self.status.state == "offline":
            return Liveness.DEAD, "status offline (last will)"
        if self.status is not None and self.status.state == "stopped":
            return Liveness.STOPPED, "stopped cleanly"
        if self.stats is not None:
            interval = self.stats.interval_s or ASSUMED_INTERVAL_S
            silent = now - self.stats.received_at
            if silent > DEAD_AFTER_INTERVALS * interval:
                return (
                    Liveness.DEAD,
                    f"no stats for {age_text(silent)} (> 3 × {age_text(interval)})",
                )
            return Liveness.ALIVE, "stats arriving"
        silent = now - self.first_seen
        if silent > DEAD_AFTER_INTERVALS * ASSUMED_INTERVAL_S:
            return Liveness.DEAD, f"no stats in {age_text(silent)} of watching"
        if self.status is not None:
            return Liveness.WAITING, "waiting for its first stats"
        return Liveness.UNKNOWN, "no status seen"


@dataclass(slots=True)
class WatchState:
    """Every device and zone seen under `prefix`, built only from received messages."""

    prefix: str = "sensekit"
    devices: dict[str, DeviceState] = field(default_factory=dict)
    messages: int = 0
    malformed: int = 0
    last_problem: str | None = None
    last_received: float | None = None

    def apply(self, message: Message) -> Applied:
        """Fold one message into the model."""
        self.messages += 1
        self.last_received = message.received_at
        parts = parse_topic(message.topic, self.prefix)
        if parts is None:
            return Applied.FOREIGN
        try:
            return self._apply(parts, message)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.malformed += 1
            self.last_problem = f"{message.topic}: {type(exc).__name__} {exc}"
            return Applied.MALFORMED

    def _device(self, parts: TopicParts, received_at: float) -> DeviceState:
        key = parts.device_key
        if key not in self.devices:
            self.devices[key] = DeviceState(parts.site, parts.device, first_seen=received_at)
        return self.devices[key]

    def _apply(self, parts: TopicParts, message: Message) -> Applied:
        payload = message.payload
        if payload is None:
            return self._clear(parts)
        device = self._device(parts, message.received_at)
        if parts.kind == "status":
            device.status = _status(payload, message)
        elif parts.kind == "stats":
            device.stats = _stats(payload, message.received_at)
        elif parts.kind == "privacy":
            # The manifest lists every zone counted: show them before their first window.
            for name in payload.get("zones") or ():
                device.zone(str(name))
        elif parts.kind == "window" and parts.zone is not None:
            return _apply_window(device.zone(parts.zone), payload, message.received_at)
        return Applied.ACCEPTED

    def _clear(self, parts: TopicParts) -> Applied:
        device = self.devices.get(parts.device_key)
        if device is None:
            return Applied.CLEARED
        if parts.kind == "status":
            device.status = None
        elif parts.kind == "window" and parts.zone is not None:
            device.zones.pop(parts.zone, None)
        if device.status is None and device.stats is None and not device.zones:
            del self.devices[parts.device_key]
        return Applied.CLEARED

    def sorted_devices(self) -> list[DeviceState]:
        return [self.devices[key] for key in sorted(self.devices)]

    def zone_count(self) -> int:
        return sum(len(d.zones) for d in self.devices.values())

    def liveness_signature(self, now: float) -> tuple[tuple[str, Liveness], ...]:
        """Changes when a device's condition changes with time alone (it went silent): the
        plain mode prints a new frame then, not on every tick."""
        return tuple((d.key, d.liveness(now)[0]) for d in self.sorted_devices())


def _apply_window(zone: ZoneState, payload: dict[str, Any], received_at: float) -> Applied:
    window = _window(payload, received_at)
    if window.window_id in zone.seen_ids:
        zone.duplicates += 1
        return Applied.DUPLICATE
    if zone.window is not None and window.start < zone.window.start:
        zone.late += 1
        zone.remember(window.window_id)
        return Applied.LATE
    zone.remember(window.window_id)
    zone.window = window
    return Applied.ACCEPTED


# payload readers: lenient where the schema changed over versions, strict where nothing can be
# shown without the field (a KeyError makes the message MALFORMED).
def _status(payload: dict[str, Any], message: Message) -> StatusInfo:
    state = str(payload["state"])
    since: float | None
    if state == "offline":
        since = None if message.retained else message.received_at
    else:
        since = _time_or_none(payload.get("timestamp"))
    return StatusInfo(state, since, message.received_at, message.retained)


def _stats(payload: dict[str, Any], received_at: float) -> StatsSummary:
    cameras = tuple(
        CameraStats(
            name=str(name),
            state=str(camera.get("state", "?")),
            processed_fps=_number(camera.get("processed_fps")),
            frames_dropped=_integer(camera.get("frames_dropped")),
            error=_text(camera.get("error")),
        )
        for name, camera in sorted((payload.get("cameras") or {}).items())
    )
    microphones = tuple(
        MicrophoneStats(
            name=str(name),
            state=str(mic.get("state", "?")),
            dropped_s=_number(mic.get("dropped_s")),
            error=_text(mic.get("error")),
        )
        for name, mic in sorted((payload.get("microphones") or {}).items())
    )
    spool = payload.get("spool")
    mqtt = payload.get("mqtt")
    interval = _number(payload.get("interval_s"))
    return StatsSummary(
        received_at=received_at,
        interval_s=interval if interval is not None and interval > 0 else None,
        uptime_s=_number(payload.get("uptime_s")),
        cameras=cameras,
        microphones=microphones,
        spool_depth=_integer(spool.get("depth")) if isinstance(spool, dict) else None,
        mqtt_state=_text(mqtt.get("state")) if isinstance(mqtt, dict) else None,
        degraded=tuple(str(item) for item in payload.get("degraded") or ()),
    )


def _window(payload: dict[str, Any], received_at: float) -> WindowView:
    faces = payload.get("faces")
    voice = payload.get("voice")
    epsilon = payload.get("dp_epsilon")
    return WindowView(
        window_id=str(payload["window_id"]),
        seq=_integer(payload.get("seq")),
        start=parse_utc(str(payload["window_start"])),
        end=parse_utc(str(payload["window_end"])),
        complete=bool(payload.get("complete", True)),
        dp_epsilon=_number(epsilon),
        faces=_faces(faces) if isinstance(faces, dict) else None,
        voice=_voice(voice) if isinstance(voice, dict) else None,
        received_at=received_at,
    )


def _faces(faces: dict[str, Any]) -> FacesView:
    given = faces.get("expressions") or {}
    expressions = tuple((name, int(given.get(name, 0))) for name in EXPRESSION_LABELS)
    if "net_emotion_score" in faces:
        score = _number(faces["net_emotion_score"])
    else:  # window schema v3 and older: the same definition, from the same counts
        score = net_emotion_score(dict(expressions))
    unclassified = int(faces.get("unclassified", 0))
    people = _integer(faces.get("people"))
    return FacesView(
        camera=str(faces.get("camera", "?")),
        frames=int(faces.get("frames", 0)),
        people=people if people is not None else sum(c for _, c in expressions) + unclassified,
        expressions=expressions,
        unclassified=unclassified,
        score=score,
    )


def _voice(voice: dict[str, Any]) -> VoiceView:
    given = voice.get("arousal") or {}
    arousal = tuple((level, int(given.get(level, 0))) for level in VOICE_AROUSAL_LABELS)
    windows = _integer(voice.get("windows"))
    return VoiceView(
        microphones=tuple(str(m) for m in voice.get("microphones") or ()),
        windows=windows if windows is not None else sum(c for _, c in arousal),
        arousal=arousal,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _time_or_none(value: Any) -> float | None:
    try:
        return parse_utc(str(value)) if value is not None else None
    except ValueError:
        return None


def age_text(seconds: float) -> str:
    """A duration as an operator reads it at a glance: 7s, 4m10s, 2h05m, 3d04h."""
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86400}d{total % 86400 // 3600:02d}h"
