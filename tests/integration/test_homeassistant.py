"""Home Assistant MQTT discovery on a real mosquitto.

The record the daemon publishes is checked against Home Assistant's documented schema
(tests/homeassistant_schema.py), and its templates are rendered with Jinja2, as Home Assistant
renders them, on the windows and statuses the same run published: every sensor must read the
number the window carries, `None` (Home Assistant's "unknown") where the window has none, and
availability must follow the status topic.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from jinja2 import Environment
from paho.mqtt.enums import CallbackAPIVersion

from sensekit.broker import LocalBroker, free_port
from sensekit.config import Config, MqttConfig, load_config
from sensekit.publish.homeassistant import Discovery, discovery_for, discovery_topic
from sensekit.publish.mqtt import Identity, MqttPublisher
from sensekit.publish.spool import SPOOL_FILE, Spool, SpoolLimits
from sensekit.types import EXPRESSION_LABELS, VOICE_AROUSAL_LABELS
from tests.dashboard_fixtures import record_demo
from tests.homeassistant_schema import DEVICE_DISCOVERY, DISCOVERY_TOPIC
from tests.integration.daemon_process import DaemonProcess, five_faces_video
from tests.mqtt_client import TopicRecorder

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
TEMPLATES = Environment()


def render(template: str, payload: dict[str, Any]) -> str:
    """What Home Assistant makes of a state message: the template with `value_json` bound."""
    return TEMPLATES.from_string(template).render(value_json=payload)


def recorder(broker: LocalBroker, topic: str) -> TopicRecorder:
    return TopicRecorder(broker.host, broker.port, topic)


def on_broker(config: Config, broker: LocalBroker) -> Config:
    return config.model_copy(
        update={"mqtt": MqttConfig(url=broker.url, topic_prefix=config.mqtt.topic_prefix)}
    )


def publisher_for(config: Config, tmp_path: Path) -> MqttPublisher:
    spool = Spool(tmp_path / SPOOL_FILE, SpoolLimits())
    return MqttPublisher(
        config.mqtt,
        Identity(config.site, config.device),
        spool,
        discovery=discovery_for(config),
    )


def publish_raw(broker: LocalBroker, topic: str, payload: bytes, retain: bool = False) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(5)
    assert info.is_published()
    client.disconnect()
    client.loop_stop()


def test_the_demo_run_declares_every_zone_and_each_template_reads_its_window(
    broker: LocalBroker, tmp_path: Path
) -> None:
    config = load_config(DEMO_CONFIG)
    topic = discovery_topic("homeassistant", config.site, config.device)
    assert re.match(DISCOVERY_TOPIC, topic)
    watcher = recorder(broker, "homeassistant/#")
    try:
        messages = record_demo(broker, tmp_path / "demo.jsonl")
        records = [m for m in watcher.wait(1) if m.topic == topic]
    finally:
        watcher.close()
    record = json.loads(records[0].payload)
    jsonschema.validate(record, DEVICE_DISCOVERY)
    components = record["components"]

    # Every zone of the demo, with what it measures: the camera's two zones get people, the
    # score, seven expressions and unclassified; the microphone's zone gets voice too.
    unique_ids = [c["unique_id"] for c in components.values()]
    assert len(unique_ids) == len(set(unique_ids))
    for zone in ("outside", "inside"):
        for key in ("people", "net_emotion_score", *EXPRESSION_LABELS, "unclassified"):
            assert f"{zone}_{key}" in components, f"{zone}_{key} missing"
    for level in VOICE_AROUSAL_LABELS:
        assert f"inside_arousal_{level}" in components
        assert f"outside_arousal_{level}" not in components

    windows = [m for m in messages if m.topic.endswith("/window") and m.payload]
    assert windows, "the demo published no window"
    window_topics = {m.topic for m in windows}
    zone_topics = {c["state_topic"] for c in components.values() if c.get("qos") == 1}
    assert zone_topics == window_topics

    checked = 0
    for message in windows:
        window = message.payload
        assert window is not None
        for component_id, component in components.items():
            if component["state_topic"] != message.topic:
                continue
            shown = render(component["value_template"], window)
            key = component_id.split("_", 1)[1]
            faces, voice = window["faces"], window["voice"]
            if key == "people":
                expected: Any = faces["people"] if faces else None
            elif key == "net_emotion_score":
                expected = faces["net_emotion_score"] if faces else None
            elif key == "unclassified":
                expected = faces["unclassified"] if faces else None
            elif key in EXPRESSION_LABELS:
                expected = faces["expressions"][key] if faces else None
            elif key == "speech_windows":
                expected = voice["windows"] if voice else None
            else:
                expected = voice["arousal"][key.removeprefix("arousal_")] if voice else None
            assert shown == str(expected), f"{component_id}: {shown!r} != {expected!r}"
            checked += 1
        people = components[f"{window['zone']}_people"]
        attributes = json.loads(render(people["json_attributes_template"], window))
        assert attributes["window_id"] == window["window_id"]
    assert checked >= len(windows) * 10

    # The score sensor reads the published number; the demo's zones saw happy visitors.
    scores = [m.payload["faces"]["net_emotion_score"] for m in windows if m.payload["faces"]]
    assert any(score is not None and score > 0 for score in scores)

    # Availability follows the status topic: online is available; offline and stopped are not.
    availability = record["availability"][0]
    assert availability["topic"] == f"sensekit/{config.site}/{config.device}/status"
    states = [m.payload["state"] for m in messages if m.topic == availability["topic"]]
    assert states[0] == "online" and states[-1] == "stopped"
    for state, shown in (("online", "online"), ("offline", "offline"), ("stopped", "offline")):
        assert render(availability["value_template"], {"state": state}) == shown

    # The spool sensor reads the stats (the demo's spool is private: its stats have none).
    stats = [m.payload for m in messages if m.topic.endswith("/stats") and m.payload]
    spool_template = components["spool_depth"]["value_template"]
    for payload in stats:
        expected_depth = payload["spool"]["depth"] if payload["spool"] else None
        assert render(spool_template, payload) == str(expected_depth)
    assert render(spool_template, {"spool": {"depth": 7}}) == "7"


def test_null_values_render_as_none_which_home_assistant_shows_as_unknown() -> None:
    config = load_config(DEMO_CONFIG)
    discovery = discovery_for(config)
    assert discovery is not None
    no_faces = {"faces": None, "voice": None}
    empty_zone = {"faces": {"people": 0, "net_emotion_score": None}, "voice": None}
    components = discovery.payload["components"]
    assert render(components["inside_people"]["value_template"], no_faces) == "None"
    assert render(components["inside_arousal_high"]["value_template"], no_faces) == "None"
    assert render(components["inside_net_emotion_score"]["value_template"], empty_zone) == "None"
    assert render(components["inside_people"]["value_template"], empty_zone) == "0"


def test_home_assistant_online_makes_the_device_send_its_record_again(
    broker: LocalBroker, tmp_path: Path
) -> None:
    config = on_broker(load_config(DEMO_CONFIG), broker)
    config = config.model_copy(
        update={
            "homeassistant": config.homeassistant.model_copy(update={"resend_delay_max_s": 0.5})
        }
    )
    topic = discovery_topic("homeassistant", config.site, config.device)
    watcher = recorder(broker, topic)
    publisher = publisher_for(config, tmp_path)
    try:
        publisher.start()
        first = watcher.wait(1)
        assert first[0].retain is False  # live delivery to an existing subscriber
        # Home Assistant's last will says offline: nothing to do. Its birth says online.
        publish_raw(broker, "homeassistant/status", b"offline")
        publish_raw(broker, "homeassistant/status", b"online")
        again = watcher.wait(2)
        assert json.loads(again[1].payload) == json.loads(first[0].payload)
        assert publisher.discovery_sent == 2
    finally:
        publisher.stop()
        watcher.close()
    # A dashboard that subscribes later still gets the record: it is retained.
    late = recorder(broker, topic)
    try:
        retained = late.wait(1)[0]
        assert retained.retain is True
        jsonschema.validate(json.loads(retained.payload), DEVICE_DISCOVERY)
    finally:
        late.close()


def test_sensors_of_zones_no_longer_configured_are_deleted(
    broker: LocalBroker, tmp_path: Path
) -> None:
    config = on_broker(load_config(DEMO_CONFIG), broker)
    discovery = discovery_for(config)
    assert discovery is not None
    # An earlier run of this device had a zone "counter" that the config no longer has.
    earlier = json.loads(json.dumps(discovery.payload))
    earlier["components"]["counter_people"] = dict(
        earlier["components"]["inside_people"], unique_id="sensekit_old_counter_people"
    )
    publish_raw(broker, discovery.topic, json.dumps(earlier).encode(), retain=True)
    watcher = recorder(broker, discovery.topic)
    publisher = publisher_for(config, tmp_path)
    try:
        publisher.start()
        records = [json.loads(m.payload) for m in watcher.wait(3)]  # earlier, ours, ours + removal
    finally:
        publisher.stop()
        watcher.close()
    removal = records[-1]
    jsonschema.validate(removal, DEVICE_DISCOVERY)
    assert removal["components"]["counter_people"] == {"platform": "sensor"}
    assert set(removal["components"]) - {"counter_people"} == set(discovery.payload["components"])


def test_a_reload_moving_the_prefix_clears_the_old_record(
    broker: LocalBroker, tmp_path: Path
) -> None:
    config = on_broker(load_config(DEMO_CONFIG), broker)
    publisher = publisher_for(config, tmp_path)
    moved = config.model_copy(
        update={
            "homeassistant": config.homeassistant.model_copy(update={"discovery_prefix": "ha2"})
        }
    )
    new = discovery_for(moved)
    assert new is not None
    try:
        publisher.start()
        watcher = recorder(broker, "+/device/#")
        watcher.wait(1)
        publisher.set_discovery(new)
        messages = watcher.wait(3)
        watcher.close()
    finally:
        publisher.stop()
    old_topic = discovery_topic("homeassistant", config.site, config.device)
    assert (old_topic, b"", False) in [(m.topic, m.payload, m.retain) for m in messages]
    assert any(m.topic == new.topic and m.payload for m in messages)
    late = recorder(broker, "+/device/#")
    try:
        retained = late.wait(1)
        time.sleep(0.3)  # a second retained record would arrive right behind the first
        assert [m.topic for m in late.messages] == [new.topic]
    finally:
        late.close()
    assert retained


def test_disabled_discovery_publishes_nothing(broker: LocalBroker, tmp_path: Path) -> None:
    config = on_broker(load_config(DEMO_CONFIG), broker)
    config = config.model_copy(
        update={"homeassistant": config.homeassistant.model_copy(update={"enabled": False})}
    )
    assert discovery_for(config) is None
    publisher = publisher_for(config, tmp_path)
    watcher = recorder(broker, "#")
    try:
        publisher.start()
        messages = watcher.wait(1)  # the status
        publisher.stop()
        messages = watcher.wait(2)  # and stopped
    finally:
        watcher.close()
    assert not [m.topic for m in messages if m.topic.startswith("homeassistant/")]


def site_config(tmp_path: Path, url: str) -> Path:
    """A small device config on the given broker."""
    path = tmp_path / "site.yaml"
    path.write_text(
        "site: shop-12\n"
        "device: door-1\n"
        f"mqtt:\n  url: {url}\n"
        "cameras:\n"
        f"  - name: door\n    source: {ROOT / 'media' / 'demo' / 'entrance.mp4'}\n"
        "    zones:\n"
        "      - name: entry\n        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]\n"
    )
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sensekit", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )


def test_ha_remove_deletes_the_retained_record(broker: LocalBroker, tmp_path: Path) -> None:
    config_file = site_config(tmp_path, broker.url)
    config = load_config(config_file)
    discovery = discovery_for(config)
    assert discovery is not None
    assert discovery.topic == "homeassistant/device/shop-12/door-1/config"
    publish_raw(broker, discovery.topic, json.dumps(discovery.payload).encode(), retain=True)
    before = recorder(broker, discovery.topic)
    assert before.wait(1)[0].retain is True
    before.close()

    shown = run_cli("ha", "show", "--config", str(config_file))
    assert shown.returncode == 0, shown.stderr
    topic_line, _, record = shown.stdout.partition("\n")
    assert topic_line == discovery.topic
    assert json.loads(record) == discovery.payload

    done = run_cli("ha", "remove", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    assert discovery.topic in done.stdout
    assert "publishes the record again" in done.stderr  # enabled is still true: say so

    after = recorder(broker, "homeassistant/#")
    try:
        publish_raw(broker, "homeassistant/marker", b"x")
        messages = after.wait(1)
        assert [m.topic for m in messages] == ["homeassistant/marker"]
    finally:
        after.close()


def test_ha_remove_names_an_unreachable_broker(tmp_path: Path) -> None:
    config_file = site_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}")
    done = run_cli("ha", "remove", "--config", str(config_file), "--timeout", "3")
    assert done.returncode != 0
    assert "cannot connect to broker" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["entrance", "kiosk"])
def test_the_example_configs_declare_valid_records(name: str) -> None:
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    discovery = discovery_for(config)
    assert isinstance(discovery, Discovery)
    assert re.match(DISCOVERY_TOPIC, discovery.topic)
    jsonschema.validate(discovery.payload, DEVICE_DISCOVERY)


def test_a_reload_updates_the_record_of_a_running_daemon(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """`sensekit run` and SIGHUP: a renamed zone's sensors are deleted and the new ones
    declared; a new discovery prefix clears the record under the old one."""
    video = five_faces_video(tmp_path / "five.mp4", seconds=30)
    config = tmp_path / "sensekit.yaml"
    text = (
        f"site: lab\ndevice: pi-7\nmqtt:\n  url: {broker.url}\n"
        f"cameras:\n  - name: cam\n    source: {str(video)!r}\n    replay: realtime\n"
        "    at_end: loop\n    zones:\n      - name: front\n"
        "        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]\n"
        "aggregation:\n  window_s: 5\n"
    )
    config.write_text(text)
    watcher = recorder(broker, "+/device/#")
    daemon = DaemonProcess(config)
    try:
        first = json.loads(watcher.wait(1)[0].payload)
        assert "front_people" in first["components"]
        config.write_text(text.replace("name: front", "name: till"))
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_line("reload: running the new configuration", timeout=60)
        renamed = json.loads(watcher.wait(2)[1].payload)
        assert renamed["components"]["front_people"] == {"platform": "sensor"}
        assert "till_people" in renamed["components"]
        jsonschema.validate(renamed, DEVICE_DISCOVERY)

        config.write_text(
            text.replace("name: front", "name: till") + "homeassistant:\n  discovery_prefix: ha\n"
        )
        daemon.signal(signal.SIGHUP)
        messages = watcher.wait(4, timeout=60)
        assert daemon.stop() == 0, daemon.output
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
        watcher.close()
    assert ("homeassistant/device/lab/pi-7/config", b"", False) in [
        (m.topic, m.payload, m.retain) for m in messages[2:]
    ]
    moved = [json.loads(m.payload) for m in messages if m.topic == "ha/device/lab/pi-7/config"]
    assert moved and "till_people" in moved[0]["components"]
    assert "Traceback" not in daemon.output
