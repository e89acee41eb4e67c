"""`sensekit demo`: the bundled media through the whole pipeline to a broker, and back.

A subscriber on the same broker prints every message exactly as a dashboard receives it
(topic, QoS, retained flag, JSON payload), so the demo shows the real contract, not a log.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sensekit.aggregate import window_start
from sensekit.app import Daemon
from sensekit.broker import LocalBroker
from sensekit.config import Config, ReplayMode, load_config
from sensekit.errors import BrokerError
from sensekit.privacy.facts import privacy_facts
from sensekit.privacy.manifest import manifest_payload
from sensekit.publish.homeassistant import discovery_for
from sensekit.publish.mqtt import Identity, MqttPublisher
from sensekit.publish.payloads import STATUS_STOPPED, Topics
from sensekit.publish.spool import SPOOL_FILE, Spool, SpoolLimits

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent


def note(text: str) -> None:
    """The demo's own narration, on stderr so stdout carries only the messages."""
    print(f"# {text}", file=sys.stderr, flush=True)


def bundled(relative: str) -> Path:
    """A file shipped with sensekit: inside the wheel, or in the checkout beside the package."""
    for base in (PACKAGE_DIR, PACKAGE_DIR.parent):
        candidate = base / relative
        if candidate.exists():
            return candidate
    return PACKAGE_DIR.parent / relative


def demo_config_path() -> Path:
    return bundled("configs/demo.yaml")


class MessagePrinter:
    """Subscribes to everything under the device's topics and prints what arrives."""

    def __init__(self, url_host: str, port: int, topics: Topics, out: TextIO) -> None:
        self._topics = topics
        self._out = out
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.stopped = threading.Event()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.on_message = self._on_message
        self._host, self._port = url_host, port

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(f"{self._topics.base}/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        text = message.payload.decode("utf-8", errors="replace")
        try:
            payload = json.loads(text)
        except ValueError:
            payload = {}
        self.messages.append((message.topic, payload, bool(message.retain)))
        flags = f"qos={message.qos}{' retained' if message.retain else ''}"
        # The payload exactly as it arrived: these bytes are the contract.
        print(f"{message.topic}  [{flags}]\n  {text}", file=self._out, flush=True)
        if message.topic == self._topics.status and payload.get("state") == STATUS_STOPPED:
            self.stopped.set()

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise BrokerError(
                f"cannot connect to broker {self._host}:{self._port}: {exc}"
            ) from None
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise BrokerError(f"broker {self._host}:{self._port} did not accept a subscription")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _demo_config(config_path: Path | None, broker_url: str, media: Path | None) -> Config:
    config = load_config(config_path or demo_config_path())
    mqtt_config = config.mqtt.model_copy(update={"url": broker_url})
    cameras = config.cameras
    if media is not None:
        cameras = [cameras[0].model_copy(update={"source": str(media)}), *cameras[1:]]
    return config.model_copy(update={"mqtt": mqtt_config, "cameras": cameras})


def run_demo(
    broker_url: str | None,
    config_path: Path | None = None,
    media: Path | None = None,
    realtime: bool = False,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Returns the process exit code."""
    stop = stop or threading.Event()
    broker: LocalBroker | None = None
    if broker_url is None:
        broker = LocalBroker().start()
        broker_url = broker.url
        note(f"no --broker given: started a private mosquitto on {broker_url} for this demo")
    try:
        config = _demo_config(config_path, broker_url, media)
        if realtime:
            realtime_mode = {"replay": ReplayMode.REALTIME}
            cameras = [c.model_copy(update=realtime_mode) for c in config.cameras]
            mics = [m.model_copy(update=realtime_mode) for m in config.microphones]
            config = config.model_copy(update={"cameras": cameras, "microphones": mics})
        # Start the media at a window boundary, so its windows match the media's timeline.
        start = window_start(clock(), config.aggregation.window_s)
        # A spool of its own, thrown away afterwards: sample windows must never wait in a
        # deployed device's spool to be sent to its real broker later.
        spool_dir = tempfile.TemporaryDirectory(prefix="sensekit-demo-")
        spool = Spool(Path(spool_dir.name) / SPOOL_FILE, SpoolLimits())
        publisher = MqttPublisher(
            config.mqtt,
            Identity(config.site, config.device),
            spool,
            manifest=manifest_payload(privacy_facts(config), clock()),
            discovery=discovery_for(config),
        )
        topics = publisher.topics
        printer = MessagePrinter(config.mqtt.host, config.mqtt.port, topics, out)
        printer.start()
        try:
            daemon = Daemon(config, publisher, replay_start=start, clock=clock)
            publisher.start()
            daemon.start_sources()
            left = daemon.run(stop)
            printer.stopped.wait(10.0)
            time.sleep(0.2)  # let the last in-flight messages print
        finally:
            printer.stop()
            spool.close()
            spool_dir.cleanup()
        windows = sum(1 for topic, _, _ in printer.messages if topic.endswith("/window"))
        note(
            f"demo finished: {daemon.windows_published} windows published, {windows} received "
            f"by the subscriber on {broker_url}"
        )
        return 0 if left == 0 else 1
    finally:
        if broker is not None:
            broker.stop()
            note("private mosquitto stopped")
