"""The privacy manifest on a real mosquitto: published retained (QoS 1) on
<prefix>/<site>/<device>/privacy when the device connects, valid against its JSON schema, equal
to the config's facts, and still there for a subscriber that connects later."""

from __future__ import annotations

import copy
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from sensekit.broker import LocalBroker
from sensekit.config import Config, MqttConfig, load_config
from sensekit.privacy.facts import privacy_facts
from sensekit.privacy.manifest import PRIVACY_SCHEMA, manifest_payload
from sensekit.publish.mqtt import Identity, MqttPublisher
from sensekit.publish.spool import SPOOL_FILE, Spool, SpoolLimits
from tests.integration.daemon_process import DaemonProcess, five_faces_video
from tests.mqtt_client import TopicRecorder

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(resources.files("sensekit.schemas").joinpath("privacy.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


class Retained(TopicRecorder):
    """The recorder with each message decoded: (manifest, retain flag, QoS)."""

    def __init__(self, broker: LocalBroker, topic: str) -> None:
        super().__init__(broker.host, broker.port, topic)

    def wait(self, count: int = 1, timeout: float = 10.0) -> tuple[dict[str, Any], bool, int]:  # type: ignore[override]
        """The `count`-th message, waiting for it."""
        message = super().wait(count, timeout)[count - 1]
        return json.loads(message.payload), message.retain, message.qos


def on_broker(config: Config, broker: LocalBroker) -> Config:
    """The example config pointed at the test broker, without its credentials and TLS files."""
    mqtt_config = MqttConfig(url=broker.url, topic_prefix=config.mqtt.topic_prefix)
    return config.model_copy(update={"mqtt": mqtt_config})


def publisher_for(config: Config, tmp_path: Path) -> tuple[MqttPublisher, Spool]:
    spool = Spool(tmp_path / SPOOL_FILE, SpoolLimits())
    manifest = manifest_payload(privacy_facts(config), time.time())
    identity = Identity(config.site, config.device)
    return MqttPublisher(config.mqtt, identity, spool, manifest=manifest), spool


def privacy_topic(config: Config) -> str:
    return f"{config.mqtt.topic_prefix}/{config.site}/{config.device}/privacy"


@pytest.mark.parametrize("name", ["entrance", "kiosk", "demo"])
def test_the_manifest_is_retained_valid_and_says_what_the_config_says(
    name: str, broker: LocalBroker, tmp_path: Path
) -> None:
    config = on_broker(load_config(ROOT / "configs" / f"{name}.yaml"), broker)
    early = Retained(broker, privacy_topic(config))
    publisher, spool = publisher_for(config, tmp_path)
    try:
        publisher.start()
        assert publisher.connected
        manifest, retain, qos = early.wait()
        assert qos == 1
        VALIDATOR.validate(manifest)
        assert manifest["schema"] == PRIVACY_SCHEMA
        assert (manifest["site"], manifest["device"]) == (config.site, config.device)
        assert manifest["k_threshold"] == config.aggregation.k_threshold
        assert manifest["window_s"] == config.aggregation.window_s
        assert manifest["dp_epsilon"] == config.privacy.dp_epsilon
        assert manifest["controller"] == config.privacy.controller
        assert manifest["contact"] == config.privacy.contact
        assert manifest["masks"] == {
            camera.name: [mask.name for mask in camera.masks]
            for camera in config.cameras
            if camera.masks
        }
        assert manifest["schedule"]["timezone"] == config.schedule.timezone
        always = not config.schedule.hours and not config.schedule.closed_dates
        assert manifest["schedule"]["always_on"] is always
        assert manifest["schedule"]["closed_dates"] == [
            day.isoformat() for day in config.schedule.closed_dates
        ]
        assert (manifest["measures"]["voice"] is None) is (not config.microphones)
        assert manifest["k_windows"] == (config.voice.k_windows if config.microphones else None)
        assert manifest["recorded"] is False and manifest["identified"] is False
    finally:
        early.close()
        publisher.stop(2.0)
        spool.close()
    # A dashboard or an auditor connecting after the device stopped still gets it.
    late = Retained(broker, privacy_topic(config))
    try:
        again, retain, _ = late.wait()
        assert retain is True
        assert again == manifest
    finally:
        late.close()


def test_the_entrance_manifest_in_detail(broker: LocalBroker, tmp_path: Path) -> None:
    config = on_broker(load_config(ROOT / "configs" / "entrance.yaml"), broker)
    publisher, spool = publisher_for(config, tmp_path)
    early = Retained(broker, privacy_topic(config))
    try:
        publisher.start()
        early.wait()  # the broker has the manifest: only now is a subscriber "late"
        late = Retained(broker, privacy_topic(config))
        manifest, retain, _ = late.wait()
        late.close()
        early.close()
    finally:
        publisher.stop(2.0)
        spool.close()
    assert retain is True
    assert manifest["masks"] == {"door": ["cash-desk"]}
    assert manifest["zones"] == ["outside", "inside"]
    assert manifest["dp_epsilon"] is None and manifest["k_windows"] is None
    assert manifest["measures"]["voice"] is None
    assert manifest["measures"]["faces"]["expressions"] == [
        "angry",
        "disgust",
        "fear",
        "happy",
        "sad",
        "surprise",
        "neutral",
    ]
    assert manifest["schedule"]["hours"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri", "sat"], "open": "09:00", "close": "20:00"}
    ]
    assert manifest["schedule"]["closed_dates"] == ["2026-12-25", "2027-01-01"]


def test_a_new_manifest_replaces_the_retained_one(broker: LocalBroker, tmp_path: Path) -> None:
    config = on_broker(load_config(ROOT / "configs" / "kiosk.yaml"), broker)
    publisher, spool = publisher_for(config, tmp_path)
    try:
        publisher.start()
        watcher = Retained(broker, privacy_topic(config))
        first, _, _ = watcher.wait()
        assert first["k_threshold"] == 5
        stricter = config.model_copy(
            update={"aggregation": config.aggregation.model_copy(update={"k_threshold": 9})}
        )
        publisher.set_manifest(manifest_payload(privacy_facts(stricter), time.time()))
        second, _, _ = watcher.wait(2)
        assert second["k_threshold"] == 9
        watcher.close()
    finally:
        publisher.stop(2.0)
        spool.close()
    late = Retained(broker, privacy_topic(config))
    try:
        assert late.wait()[0]["k_threshold"] == 9
    finally:
        late.close()


def test_sensekit_run_publishes_its_manifest(broker: LocalBroker, tmp_path: Path) -> None:
    """The daemon builds the manifest from the config it runs with."""
    video = five_faces_video(tmp_path / "five.mp4", seconds=5)
    config = tmp_path / "sensekit.yaml"
    config.write_text(
        f"""site: lab
device: pi-9
mqtt:
  url: {broker.url}
cameras:
  - name: cam
    source: {str(video)!r}
    replay: realtime
    masks:
      - name: till
        polygon: [[0.9, 0.9], [1.0, 0.9], [1.0, 1.0]]
aggregation:
  window_s: 5
  k_threshold: 7
privacy:
  controller: Lab & Co
  contact: lab@example.com
  dp_epsilon: 0.5
"""
    )
    watcher = Retained(broker, "sensekit/lab/pi-9/privacy")
    daemon = DaemonProcess(config)
    try:
        manifest, _, qos = watcher.wait(timeout=60)
    finally:
        code = daemon.stop()
        watcher.close()
    assert code == 0, daemon.output
    assert qos == 1
    VALIDATOR.validate(manifest)
    assert manifest["k_threshold"] == 7
    assert manifest["dp_epsilon"] == 0.5
    assert manifest["masks"] == {"cam": ["till"]}
    assert manifest["controller"] == "Lab & Co"
    assert manifest["schedule"]["always_on"] is True


def valid_manifest() -> dict[str, Any]:
    config = load_config(ROOT / "configs" / "kiosk.yaml")
    manifest = manifest_payload(privacy_facts(config), 1_767_225_600.0)
    VALIDATOR.validate(manifest)
    return manifest


@pytest.mark.parametrize(
    "where",
    [(), ("measures",), ("measures", "faces"), ("measures", "voice"), ("schedule",)],
    ids=lambda where: ".".join(where) or "top",
)
def test_the_schema_rejects_an_extra_field(where: tuple[str, ...]) -> None:
    manifest = copy.deepcopy(valid_manifest())
    part = manifest
    for key in where:
        part = part[key]
    part["faces_stored"] = True
    errors = list(VALIDATOR.iter_errors(manifest))
    assert errors
    # Under a oneOf (faces: null or an object) the reason sits in the error's context.
    reasons = [error.message for top in errors for error in (top, *top.context)]
    assert any("'faces_stored' was unexpected" in reason for reason in reasons), reasons


def test_the_schema_holds_the_promises_constant() -> None:
    manifest = valid_manifest()
    for key, broken in (("recorded", True), ("identified", True), ("counts_only", False)):
        with pytest.raises(jsonschema.ValidationError):
            VALIDATOR.validate({**manifest, key: broken})
    missing = {key: value for key, value in manifest.items() if key != "k_threshold"}
    with pytest.raises(jsonschema.ValidationError, match="k_threshold"):
        VALIDATOR.validate(missing)
    Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_is_shipped_in_the_package() -> None:
    """The wheel packs sensekit/ whole (pyproject.toml); the schema must live there beside the
    others, where importlib.resources finds it."""
    names = {path.name for path in resources.files("sensekit.schemas").iterdir()}
    assert {"privacy.schema.json", "window.schema.json", "status.schema.json"} <= names
