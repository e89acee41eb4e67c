"""The configuration: pydantic models that forbid unknown keys, loaded from YAML with lines.

A typo must fail loudly with the file, line and key (`FILE:LINE: key.path: message`), never be
ignored: an ignored `k_treshold` would silently publish small groups.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sensekit.errors import ConfigError
from sensekit.sources.audio import is_audio_file
from sensekit.sources.kinds import is_live_source
from sensekit.types import DetectorModel
from sensekit.yaml_lines import KeyPath, line_of, load_with_lines

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
"""Names that become MQTT topic levels: no '/', '+', '#', spaces or leading dots."""

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def _not_blank(value: str | int) -> str | int:
    """A source given as an empty string is a mistake, not "the default device"."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    """TLS towards the broker; used when `mqtt.url` is `mqtts://` or when any file is set."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(False, description="skip hostname verification (testing only)")


class MqttConfig(_Strict):
    url: str = "mqtt://localhost:1883"
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")] = (
        "sensekit"
    )
    username: str | None = None
    password_file: Path | None = Field(
        None, description="file holding the password (never put a password in the config)"
    )
    tls: TlsConfig = TlsConfig()
    client_id: str | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    connect_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ValueError("must look like mqtt://HOST:PORT or mqtts://HOST:PORT")
        try:
            _ = parsed.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "localhost"

    @property
    def port(self) -> int:
        parsed = urlparse(self.url)
        return parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)

    @property
    def use_tls(self) -> bool:
        tls = self.tls
        return urlparse(self.url).scheme == "mqtts" or any(
            (tls.ca_file, tls.cert_file, tls.key_file)
        )


class DetectorConfig(_Strict):
    model: DetectorModel = DetectorModel.SHORT_RANGE
    model_path: Path | None = Field(None, description="override the bundled model file")
    score_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    nms_iou_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    min_face_px: Annotated[int, Field(ge=0)] = 24


class FaceGateConfig(_Strict):
    """Which detected faces get their expression classified. Every face the detector finds
    (detector.score_threshold) is counted as a person; a face outside these limits is counted
    but not classified (`unclassified` in the window). Fitted by `sensekit calibrate faces`."""

    min_face_px: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="smaller faces (shorter side of the box, frame pixels) are not classified; "
        "unset: expression.min_face_px",
    )
    min_score: Annotated[float, Field(ge=0.0, lt=1.0)] | None = Field(
        None,
        description="faces the detector is less sure of are not classified; unset: "
        "detector.score_threshold (no extra gating)",
    )
    max_yaw_deg: Annotated[float, Field(gt=0.0, le=90.0)] = Field(
        60.0, description="faces turned further aside (rough estimate) are not classified; 90: off"
    )
    max_pitch_deg: Annotated[float, Field(gt=0.0, le=90.0)] = Field(
        45.0, description="faces tilted further up or down are not classified; 90: off"
    )


class _Polygon(_Strict):
    name: Name
    polygon: list[tuple[Fraction, Fraction]] = Field(
        description="vertices in normalised image coordinates (0..1, origin top-left)"
    )

    @field_validator("polygon")
    @classmethod
    def _at_least_a_triangle(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return value


class ZoneConfig(_Polygon):
    """An area whose people are counted together."""


class MaskConfig(_Polygon):
    """An area that is never analysed (staff areas, cash desks, a window onto the street): its
    pixels are blanked before any model sees the frame."""


class Anchor(StrEnum):
    """Which point of a face box decides its zone."""

    BOX_CENTER = "box_center"
    BOX_BOTTOM = "box_bottom"


class ReplayMode(StrEnum):
    REALTIME = "realtime"
    FAST = "fast"


class AtEnd(StrEnum):
    """What a replayed file does when it ends."""

    STOP = "stop"
    LOOP = "loop"


class CameraConfig(_Strict):
    name: Name = "camera"
    source: str | int = Field(
        0, description="device index, /dev/videoN, a video file, an image folder or an RTSP URL"
    )
    width: Annotated[int, Field(ge=16)] | None = None
    height: Annotated[int, Field(ge=16)] | None = None
    fps: Annotated[float, Field(gt=0)] | None = None
    replay: ReplayMode = Field(
        ReplayMode.REALTIME, description="pace of a replayed file: its own speed, or flat out"
    )
    image_fps: Annotated[float, Field(gt=0)] = Field(
        10.0, description="time base for an image folder (images have no timestamps)"
    )
    queue_size: Annotated[int, Field(ge=1, le=64)] = 2
    at_end: AtEnd = Field(
        AtEnd.STOP, description="a replayed file that ends: stop this camera, or loop it"
    )
    stall_timeout_s: Annotated[float, Field(ge=1.0, le=600.0)] = Field(
        10.0, description="a live camera silent this long is closed and reopened"
    )
    detector: DetectorConfig = DetectorConfig()
    gate: FaceGateConfig = FaceGateConfig()
    anchor: Anchor = Anchor.BOX_CENTER
    zones: list[ZoneConfig] = Field(
        default_factory=list, description="empty: one zone named after the camera, whole frame"
    )
    masks: list[MaskConfig] = Field(
        default_factory=list,
        description="areas blanked before any model sees the frame (staff areas, cash desks)",
    )

    _source_not_empty = field_validator("source")(_not_blank)

    def effective_zones(self) -> list[ZoneConfig]:
        if self.zones:
            return self.zones
        whole = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
        return [ZoneConfig(name=self.name, polygon=whole)]


class ExpressionConfig(_Strict):
    model_path: Path | None = Field(None, description="override the bundled int8 model")
    min_face_px: Annotated[int, Field(ge=0)] = Field(
        40, description="smaller faces are counted as people but not classified"
    )
    crop_scale: Annotated[float, Field(ge=1.0, le=2.5)] = Field(
        1.25, description="crop side as a multiple of the detector's face box"
    )


class TrackerConfig(_Strict):
    iou_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    max_gap_s: Annotated[float, Field(gt=0.0, le=30.0)] = Field(
        1.0, description="a face unseen for longer starts a new person"
    )
    min_frames: Annotated[int, Field(ge=1, le=100)] = Field(
        3, description="frames a track needs before it counts (filters one-frame false positives)"
    )


class AggregationConfig(_Strict):
    window_s: Annotated[int, Field(ge=5, le=3600)] = 60
    k_threshold: Annotated[int, Field(ge=3, le=1000)] = Field(
        5, description="fewer people than this in a zone-window: no breakdown is published"
    )


class MicrophoneConfig(_Strict):
    """A microphone (or an audio file replayed as one) whose speech counts in `zone`."""

    name: Name = "microphone"
    source: str | int = Field(
        "default",
        description="'default', a PortAudio device index or name (part of it), or a "
        ".wav/.flac/.ogg file to replay",
    )
    zone: Name = Field(
        description="the zone this microphone hears: a camera zone's name (the voice joins "
        "that zone's window) or a zone of its own"
    )
    sample_rate: Annotated[int, Field(ge=8000, le=48000)] = Field(
        16000, description="analysis rate; files are resampled to it"
    )
    replay: ReplayMode = Field(
        ReplayMode.REALTIME, description="pace of a replayed file: its own speed, or flat out"
    )
    block_s: Annotated[float, Field(ge=0.01, le=1.0)] = Field(
        0.1, description="audio handed over per PortAudio callback"
    )
    buffer_s: Annotated[float, Field(ge=1.0, le=120.0)] = Field(
        10.0,
        description="ring buffer; when the analysis falls this far behind, oldest audio is dropped",
    )
    at_end: AtEnd = Field(
        AtEnd.STOP, description="a replayed file that ends: stop this microphone, or loop it"
    )
    stall_timeout_s: Annotated[float, Field(ge=1.0, le=600.0)] = Field(
        3.0, description="a live microphone silent this long is closed and reopened"
    )

    _source_not_empty = field_validator("source")(_not_blank)


class VadConfig(_Strict):
    window_s: Annotated[float, Field(ge=1.0, le=5.0)] = Field(
        2.0, description="analysis window (the model is trained on 2 s clips)"
    )
    hop_s: Annotated[float, Field(ge=0.25, le=5.0)] = 1.0
    min_speech_s: Annotated[float, Field(ge=0.3, le=5.0)] = Field(
        1.0, description="shorter stretches of speech are not analysed"
    )
    snr_db: Annotated[float, Field(ge=3.0, le=40.0)] = Field(
        10.0, description="how far above the noise floor voiced frames must be"
    )
    max_pause_s: Annotated[float, Field(ge=0.1, le=2.0)] = 0.4


class NormalisationConfig(_Strict):
    mode: Literal["off", "learn", "frozen"] = Field(
        "learn",
        description="off: the model's training statistics; learn: the site's own, learned and "
        "slowly adapted; frozen: the site's own as last calibrated, never changed",
    )
    min_windows: Annotated[int, Field(ge=50, le=1_000_000)] = Field(
        300, description="speech windows needed before the site's statistics are used or saved"
    )
    half_life_windows: Annotated[float, Field(ge=100.0)] = 20000.0


class VoiceConfig(_Strict):
    model_path: Path | None = Field(None, description="override the bundled int8 voice model")
    vad: VadConfig = VadConfig()
    normalisation: NormalisationConfig = NormalisationConfig()
    k_windows: Annotated[int, Field(ge=3, le=100_000)] = Field(
        10,
        description="fewer voiced 2 s analysis windows than this in a zone-window: no voice "
        "breakdown (a zone with a camera also needs k_threshold people)",
    )
    numba_cache_dir: Path | None = Field(
        None,
        description="numba's compile cache, should a JIT-compiled function be used "
        "(default: $CACHE_DIRECTORY/numba under systemd, else <state_dir>/numba-cache)",
    )


class HttpConfig(_Strict):
    """A local health and Prometheus metrics endpoint (GET /healthz, GET /metrics)."""

    enabled: bool = False
    host: str = Field("127.0.0.1", description="bind address; keep it local unless firewalled")
    port: Annotated[int, Field(ge=0, le=65535)] = 9750


class StatsConfig(_Strict):
    interval_s: Annotated[float, Field(ge=1.0, le=3600.0)] = 30.0
    http: HttpConfig = HttpConfig()


class SpoolConfig(_Strict):
    """Bounds of the on-disk store-and-forward spool (<state_dir>/spool.sqlite). When one is
    reached the oldest windows are dropped and counted in the stats."""

    max_windows: Annotated[int, Field(ge=10, le=10_000_000)] = 100_000
    max_mb: Annotated[float, Field(gt=0.0, le=10_000.0)] = 50.0
    max_age_h: Annotated[float, Field(gt=0.0, le=24 * 365)] = 720.0


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


class OpeningHours(_Strict):
    """One span of opening hours on the given days. `close` earlier than `open` runs past
    midnight into the next day (a bar open 18:00-02:00)."""

    days: list[Weekday] = Field(min_length=1)
    open: str = Field(description="HH:MM, local time")
    close: str = Field(description="HH:MM, local time; 24:00 for midnight")

    @field_validator("open", "close")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not re.fullmatch(CLOCK_PATTERN, value):
            raise ValueError(f"{value!r} is not a time of day: use HH:MM, 00:00 to 24:00")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> OpeningHours:
        if self.open == self.close:
            raise ValueError("open and close are the same time")
        return self


class ScheduleConfig(_Strict):
    """When sensing is allowed. Outside these hours the cameras and microphones are closed,
    not merely ignored. No `hours` at all: always on."""

    timezone: str = Field("UTC", description="IANA name, e.g. Europe/Paris")
    hours: list[OpeningHours] = Field(default_factory=list)
    closed_dates: list[date] = Field(
        default_factory=list, description="whole days closed (holidays), YYYY-MM-DD"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
            ) from None
        return value


class PrivacyConfig(_Strict):
    """Who answers for the device, and the optional noise. Shown on the visitor notice and in
    the retained privacy manifest."""

    controller: str | None = Field(
        None, description="the organisation responsible for the processing (GDPR controller)"
    )
    contact: str | None = Field(
        None, description="where visitors can ask questions (e-mail, phone or web address)"
    )
    dp_epsilon: Annotated[float, Field(gt=0.0, le=10.0)] | None = Field(
        None,
        description="add discrete Laplace noise to every published count, with this epsilon "
        "per window (smaller: more noise); unset: exact counts",
    )


class HomeAssistantConfig(_Strict):
    """Home Assistant MQTT discovery: the device announces its zones' sensors on
    `<discovery_prefix>/device/<site>/<device>/config` (retained), so Home Assistant shows them with no
    YAML. The announcement describes only topics that are published anyway."""

    enabled: bool = Field(
        True, description="publish the discovery record at every connection; false: publish none"
    )
    discovery_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")] = (
        "homeassistant"
    )
    resend_delay_max_s: Annotated[float, Field(ge=0.0, le=300.0)] = Field(
        10.0,
        description="when Home Assistant announces `online` on <discovery_prefix>/status, the "
        "record is sent again after a random delay up to this (a fleet must not answer at once)",
    )


class LoggingConfig(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(_Strict):
    """The whole daemon configuration (see configs/*.yaml for documented examples)."""

    site: Name
    device: Name = Field(default_factory=lambda: _hostname())
    mqtt: MqttConfig = MqttConfig()
    cameras: list[CameraConfig] = Field(default_factory=list)
    microphones: list[MicrophoneConfig] = Field(default_factory=list)
    expression: ExpressionConfig = ExpressionConfig()
    voice: VoiceConfig = VoiceConfig()
    tracker: TrackerConfig = TrackerConfig()
    aggregation: AggregationConfig = AggregationConfig()
    stats: StatsConfig = StatsConfig()
    spool: SpoolConfig = SpoolConfig()
    logging: LoggingConfig = LoggingConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    inference_threads: Annotated[int, Field(ge=1, le=8)] = 1
    state_dir: Path | None = Field(
        None,
        description="where learned state lives (site normalisation, caches); default: "
        "$STATE_DIRECTORY (systemd), else ~/.local/state/sensekit",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        if not self.cameras and not self.microphones:
            raise ValueError("configure at least one camera or microphone")
        microphones = [mic.name for mic in self.microphones]
        if len(set(microphones)) != len(microphones):
            raise ValueError(f"microphone names must be unique, got {microphones}")
        if set(microphones) & {camera.name for camera in self.cameras}:
            raise ValueError("a microphone cannot have the same name as a camera")
        cameras = [camera.name for camera in self.cameras]
        if len(set(cameras)) != len(cameras):
            raise ValueError(f"camera names must be unique, got {cameras}")
        zones = [zone.name for camera in self.cameras for zone in camera.effective_zones()]
        if len(set(zones)) != len(zones):
            raise ValueError(f"zone names must be unique across cameras, got {zones}")
        return self


def _hostname() -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()) or "device"
    return name[:63].lstrip(".-") or "device"


def _format_location(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def _problems(exc: ValidationError, file: str, lines: dict[KeyPath, int]) -> list[str]:
    problems: list[tuple[int, str]] = []
    for error in exc.errors():
        location = tuple(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see configs/ for the valid keys)"
        message = message.removeprefix("Value error, ")
        line = line_of(lines, location)
        problems.append((line, f"{file}:{line}: {_format_location(location)}: {message}"))
    return [text for _, text in sorted(problems, key=lambda item: item[0])]


def parse_config(
    text: str, file: str = "<config>", overrides: dict[str, Any] | None = None
) -> Config:
    """Validate YAML text; raises ConfigError listing every problem as FILE:LINE: key: message."""
    try:
        data, lines = load_with_lines(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{file}:{line}: (yaml): {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}:1: (yaml): {exc}"]) from None
    if data is None:
        raise ConfigError([f"{file}:1: (top level): the file is empty"])
    if not isinstance(data, dict):
        raise ConfigError([f"{file}:1: (top level): must be a mapping of keys to values"])
    if overrides:
        data = {**data, **overrides}
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, file, lines)) from None


def _relative_to(base: Path, value: Path | None) -> Path | None:
    if value is None or value.is_absolute():
        return value
    return base / value


def resolve_paths(config: Config, base: Path) -> Config:
    """Relative paths in a config file are relative to that file, not to the working directory
    (systemd starts the daemon in /)."""

    def camera(cam: CameraConfig) -> CameraConfig:
        source = cam.source
        if (
            isinstance(source, str)
            and not is_live_source(source)
            and not Path(source).is_absolute()
        ):
            source = str(base / source)
        detector = cam.detector.model_copy(
            update={"model_path": _relative_to(base, cam.detector.model_path)}
        )
        return cam.model_copy(update={"source": source, "detector": detector})

    tls = config.mqtt.tls
    mqtt = config.mqtt.model_copy(
        update={
            "password_file": _relative_to(base, config.mqtt.password_file),
            "tls": tls.model_copy(
                update={
                    "ca_file": _relative_to(base, tls.ca_file),
                    "cert_file": _relative_to(base, tls.cert_file),
                    "key_file": _relative_to(base, tls.key_file),
                }
            ),
        }
    )
    expression = config.expression.model_copy(
        update={"model_path": _relative_to(base, config.expression.model_path)}
    )

    def microphone(mic: MicrophoneConfig) -> MicrophoneConfig:
        source = mic.source
        if is_audio_file(source) and not Path(str(source)).is_absolute():
            source = str(base / str(source))
        return mic.model_copy(update={"source": source})

    voice = config.voice.model_copy(
        update={
            "model_path": _relative_to(base, config.voice.model_path),
            "numba_cache_dir": _relative_to(base, config.voice.numba_cache_dir),
        }
    )
    return config.model_copy(
        update={
            "cameras": [camera(c) for c in config.cameras],
            "microphones": [microphone(m) for m in config.microphones],
            "mqtt": mqtt,
            "expression": expression,
            "voice": voice,
            "state_dir": _relative_to(base, config.state_dir),
        }
    )


def state_dir(config: Config) -> Path:
    """The configured state directory, else systemd's StateDirectory=, else the user's."""
    if config.state_dir is not None:
        return config.state_dir
    from_systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if from_systemd:
        return Path(from_systemd)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "sensekit"


def numba_cache_dir(config: Config) -> Path:
    """The configured cache, else systemd's CacheDirectory= (a cache may be wiped, the spool
    may not), else beside the state."""
    if config.voice.numba_cache_dir is not None:
        return config.voice.numba_cache_dir
    from_systemd = os.environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if from_systemd:
        return Path(from_systemd) / "numba"
    return state_dir(config) / "numba-cache"


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read, validate and resolve a config file; raises ConfigError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}:1: (file): no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}:1: (file): is a directory, not a config file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}:1: (file): cannot read: {exc}"]) from None
    config = parse_config(text, str(path), overrides)
    return resolve_paths(config, path.resolve().parent)
