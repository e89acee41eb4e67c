"""Home Assistant's documented schema for device-based MQTT discovery, as a JSON Schema.

Written from Home Assistant's MQTT documentation ("Device discovery payload" and the MQTT
sensor's configuration variables) and its `DEVICE_DISCOVERY_SCHEMA`: the device needs at least
one identifier, the origin a name, every component a platform. It accepts only the full option
names (sensekit sends no abbreviations) and only options the documentation lists, so a typo in
an option name, which Home Assistant would reject, fails here too.
"""

from __future__ import annotations

from typing import Any

_TOPIC = {"type": "string", "minLength": 1, "pattern": r"^[^#+]*$|^([^#]*/)?#$|^[^#]*\+[^#]*$"}
_PUBLISH_TOPIC = {"type": "string", "minLength": 1, "pattern": r"^[^#+]+$"}
_TEMPLATE = {"type": "string", "pattern": r"\{\{.*\}\}|\{%.*%\}"}

AVAILABILITY_ITEM = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topic"],
    "properties": {
        "topic": _TOPIC,
        "payload_available": {"type": "string"},
        "payload_not_available": {"type": "string"},
        "value_template": _TEMPLATE,
    },
}

DEVICE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "configuration_url": {"type": "string"},
        "connections": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2}},
        "hw_version": {"type": "string"},
        "identifiers": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
            ]
        },
        "manufacturer": {"type": "string"},
        "model": {"type": "string"},
        "model_id": {"type": "string"},
        "name": {"type": "string"},
        "serial_number": {"type": "string"},
        "suggested_area": {"type": "string"},
        "sw_version": {"type": "string"},
        "via_device": {"type": "string"},
    },
    "anyOf": [{"required": ["identifiers"]}, {"required": ["connections"]}],
}

ORIGIN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "sw_version": {"type": "string"},
        "support_url": {"type": "string", "pattern": r"^https?://"},
    },
}

SENSOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["platform", "state_topic"],
    "properties": {
        "platform": {"const": "sensor"},
        "availability": {"type": "array", "items": AVAILABILITY_ITEM},
        "availability_mode": {"enum": ["all", "any", "latest"]},
        "availability_template": _TEMPLATE,
        "availability_topic": _TOPIC,
        "default_entity_id": {"type": "string"},
        "device_class": {"type": ["string", "null"]},
        "enabled_by_default": {"type": "boolean"},
        "encoding": {"type": "string"},
        "entity_category": {"enum": ["config", "diagnostic"]},
        "entity_picture": {"type": "string"},
        "expire_after": {"type": "integer", "minimum": 0},
        "force_update": {"type": "boolean"},
        "icon": {"type": "string", "pattern": r"^[a-z0-9-]+:[a-z0-9-]+$"},
        "json_attributes_template": _TEMPLATE,
        "json_attributes_topic": _TOPIC,
        "last_reset_value_template": _TEMPLATE,
        "name": {"type": ["string", "null"]},
        "options": {"type": "array", "items": {"type": "string"}},
        "payload_available": {"type": "string"},
        "payload_not_available": {"type": "string"},
        "qos": {"enum": [0, 1, 2]},
        "state_class": {"enum": ["measurement", "measurement_angle", "total", "total_increasing"]},
        "state_topic": _TOPIC,
        "suggested_display_precision": {"type": "integer", "minimum": 0},
        "unique_id": {"type": "string", "minLength": 1},
        "unit_of_measurement": {"type": ["string", "null"]},
        "value_template": _TEMPLATE,
    },
}

REMOVED_COMPONENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["platform"],
    "properties": {"platform": {"const": "sensor"}},
}

DEVICE_DISCOVERY: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["device", "origin", "components"],
    "properties": {
        "device": DEVICE,
        "origin": ORIGIN,
        "components": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[A-Za-z0-9_-]+$"},
            "additionalProperties": {"oneOf": [SENSOR, REMOVED_COMPONENT]},
        },
        "availability": {"type": "array", "items": AVAILABILITY_ITEM},
        "availability_mode": {"enum": ["all", "any", "latest"]},
        "availability_template": _TEMPLATE,
        "availability_topic": _TOPIC,
        "payload_available": {"type": "string"},
        "payload_not_available": {"type": "string"},
        "state_topic": _TOPIC,
        "command_topic": _PUBLISH_TOPIC,
        "qos": {"enum": [0, 1, 2]},
        "encoding": {"type": "string"},
    },
}

DISCOVERY_TOPIC = r"^[A-Za-z0-9_./-]+/device/(?:[A-Za-z0-9_-]+/)?[A-Za-z0-9_-]+/config$"
"""Home Assistant's discovery topic matcher: `<prefix>/<component>/[<node_id>/]<object_id>/config`."""
