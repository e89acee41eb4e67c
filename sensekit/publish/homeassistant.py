"""Home Assistant MQTT discovery: one retained device record that declares every zone's sensors.

Device-based discovery (Home Assistant 2024.11+): one message on
`<discovery_prefix>/device/<site>/<device>/config` carries the device, the origin and all its components,
instead of one message per entity. Every sensor reads a topic sensekit publishes anyway (the
retained zone windows, the stats), through a template; nothing new about the visitors is sent.

- Availability comes from the device's retained `status` topic: `online` is available, `offline`
  (the last will) and `stopped` are not.
- A value that does not exist (a zone's `faces` or `voice` is null, no classified visit for the
  score) renders as `None`, which Home Assistant shows as "unknown", not as 0.
- Components that disappear from the configuration (a zone renamed or removed) are sent once
  more as `{"platform": "sensor"}` alone, which is how Home Assistant is told to delete them.
- An empty retained payload on the same topic removes the device (`sensekit ha remove`).

Names: the record's topic is `<discovery_prefix>/device/<site>/<device>/config` (see
`discovery_topic`), with anything but letters, digits, `_` and `-` replaced by `_` (Home
Assistant's discovery topics allow nothing else); the device identifier is
`sensekit_<site>_<device>`, and each sensor's unique id adds the zone and the measurement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sensekit import __version__
from sensekit.config import Config
from sensekit.publish.payloads import Topics
from sensekit.types import EXPRESSION_LABELS, VOICE_AROUSAL_LABELS

ORIGIN_URL = "https://github.com/sensekit/sensekit"
PLATFORM = "sensor"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

AVAILABLE_TEMPLATE = "{{ 'online' if value_json.state == 'online' else 'offline' }}"


def object_id(*parts: str) -> str:
    return _UNSAFE.sub("_", "_".join(parts))


def discovery_topic(discovery_prefix: str, site: str, device: str) -> str:
    """`<prefix>/device/<site>/<device>/config`: Home Assistant's `<node_id>/<object_id>` form.
    The two levels are the device's MQTT username (`<site>/<device>`), so one ACL line,
    `pattern write homeassistant/device/%u/config`, lets each device write its own record and
    no other's (deploy/raspberrypi/mosquitto/acl.example)."""
    return f"{discovery_prefix}/device/{object_id(site)}/{object_id(device)}/config"


def birth_topic(discovery_prefix: str) -> str:
    """Where Home Assistant announces `online` when it (re)starts."""
    return f"{discovery_prefix}/status"


def _faces_value(path: str) -> str:
    return f"{{{{ value_json.faces.{path} if value_json.faces else None }}}}"


def _voice_value(path: str) -> str:
    return f"{{{{ value_json.voice.{path} if value_json.voice else None }}}}"


WINDOW_ATTRIBUTES_TEMPLATE = (
    "{{ {'window_id': value_json.window_id, 'window_start': value_json.window_start, "
    "'window_end': value_json.window_end, 'complete': value_json.complete, "
    "'k_threshold': value_json.k_threshold, 'dp_epsilon': value_json.dp_epsilon} | tojson }}"
)


@dataclass(frozen=True, slots=True)
class ZoneSources:
    zone: str
    faces: bool
    voice: bool


def zone_sources(config: Config) -> list[ZoneSources]:
    """Every zone that publishes windows, in config order, with what it measures."""
    faces = [zone.name for camera in config.cameras for zone in camera.effective_zones()]
    voice = [mic.zone for mic in config.microphones]
    ordered = list(dict.fromkeys([*faces, *voice]))
    return [ZoneSources(zone, zone in faces, zone in voice) for zone in ordered]


def _sensor(
    config: Config,
    zone: str,
    key: str,
    name: str,
    template: str,
    *,
    unit: str | None,
    icon: str,
    state_topic: str,
) -> tuple[str, dict[str, Any]]:
    component_id = object_id(zone, key)
    sensor: dict[str, Any] = {
        "platform": PLATFORM,
        "unique_id": object_id("sensekit", config.site, config.device, zone, key),
        "name": name,
        "state_topic": state_topic,
        "value_template": template,
        "state_class": "measurement",
        "icon": icon,
        "qos": 1,
    }
    if unit is not None:
        sensor["unit_of_measurement"] = unit
    return component_id, sensor


def discovery_components(config: Config) -> dict[str, dict[str, Any]]:
    """Per zone: people, the net emotion score, each expression and `unclassified` (zones with
    a camera); speech windows and each arousal level (zones with a microphone). Per device:
    the spool depth (diagnostic, from the stats)."""
    topics = Topics(config.mqtt.topic_prefix, config.site, config.device)
    components: dict[str, dict[str, Any]] = {}
    for sources in zone_sources(config):
        zone = sources.zone
        window = topics.window(zone)
        title = zone.replace("_", " ").replace("-", " ").capitalize()
        if sources.faces:
            cid, people = _sensor(
                config, zone, "people", f"{title} people", _faces_value("people"),
                unit="people", icon="mdi:account-group", state_topic=window,
            )  # fmt: skip
            people["json_attributes_topic"] = window
            people["json_attributes_template"] = WINDOW_ATTRIBUTES_TEMPLATE
            components[cid] = people
            cid, score = _sensor(
                config, zone, "net_emotion_score", f"{title} net emotion score",
                _faces_value("net_emotion_score"), unit=None,
                icon="mdi:emoticon-outline", state_topic=window,
            )  # fmt: skip
            score["suggested_display_precision"] = 1
            components[cid] = score
            for label in (*EXPRESSION_LABELS, "unclassified"):
                path = "unclassified" if label == "unclassified" else f"expressions.{label}"
                cid, sensor = _sensor(
                    config, zone, label, f"{title} {label}", _faces_value(path),
                    unit="people", icon="mdi:emoticon", state_topic=window,
                )  # fmt: skip
                components[cid] = sensor
        if sources.voice:
            cid, sensor = _sensor(
                config, zone, "speech_windows", f"{title} speech windows",
                _voice_value("windows"), unit="windows", icon="mdi:account-voice",
                state_topic=window,
            )  # fmt: skip
            components[cid] = sensor
            for level in VOICE_AROUSAL_LABELS:
                cid, sensor = _sensor(
                    config, zone, f"arousal_{level}", f"{title} {level} arousal speech",
                    _voice_value(f"arousal.{level}"), unit="windows",
                    icon="mdi:waveform", state_topic=window,
                )  # fmt: skip
                components[cid] = sensor
    spool_id = object_id("sensekit", config.site, config.device, "spool_depth")
    components["spool_depth"] = {
        "platform": PLATFORM,
        "unique_id": spool_id,
        "name": "Spool depth",
        "state_topic": topics.stats,
        "value_template": "{{ value_json.spool.depth if value_json.spool else None }}",
        "state_class": "measurement",
        "unit_of_measurement": "windows",
        "entity_category": "diagnostic",
        "icon": "mdi:tray-full",
        "expire_after": int(3 * config.stats.interval_s),
        "qos": 0,
    }
    return components


def discovery_payload(config: Config) -> dict[str, Any]:
    topics = Topics(config.mqtt.topic_prefix, config.site, config.device)
    return {
        "device": {
            "identifiers": [object_id("sensekit", config.site, config.device)],
            "name": f"sensekit {config.site} {config.device}",
            "manufacturer": "sensekit",
            "model": "anonymous emotion statistics",
            "sw_version": __version__,
        },
        "origin": {"name": "sensekit", "sw_version": __version__, "support_url": ORIGIN_URL},
        "availability": [{"topic": topics.status, "value_template": AVAILABLE_TEMPLATE}],
        "components": discovery_components(config),
        "qos": 1,
    }


@dataclass(frozen=True, slots=True)
class Discovery:
    """What the publisher announces to Home Assistant, and where."""

    topic: str
    payload: dict[str, Any]
    birth_topic: str
    resend_delay_max_s: float

    def with_removals(self, previous: Discovery | None) -> Discovery:
        """This record plus a bare `{"platform": ...}` for every component the previous one had
        and this one lacks: Home Assistant deletes those."""
        if previous is None or previous.topic != self.topic:
            return self
        gone = set(previous.payload["components"]) - set(self.payload["components"])
        if not gone:
            return self
        components = dict(self.payload["components"])
        for component_id in sorted(gone):
            components[component_id] = {
                "platform": previous.payload["components"][component_id]["platform"]
            }
        return Discovery(
            self.topic,
            {**self.payload, "components": components},
            self.birth_topic,
            self.resend_delay_max_s,
        )


def discovery_for(config: Config) -> Discovery | None:
    settings = config.homeassistant
    if not settings.enabled:
        return None
    return Discovery(
        topic=discovery_topic(settings.discovery_prefix, config.site, config.device),
        payload=discovery_payload(config),
        birth_topic=birth_topic(settings.discovery_prefix),
        resend_delay_max_s=settings.resend_delay_max_s,
    )
