"""A test subscriber: collects every message on a broker, validates it against its schema."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.homeassistant_schema import DEVICE_DISCOVERY, DISCOVERY_TOPIC

HA_BIRTH_TOPIC = re.compile(r"^[A-Za-z0-9_./-]+/status$")

SCHEMAS = {
    name: json.loads(
        resources.files("sensekit.schemas").joinpath(f"{name}.schema.json").read_text()
    )
    for name in ("window", "status", "stats", "privacy")
}


def schema_for(topic: str) -> dict[str, Any]:
    if re.match(DISCOVERY_TOPIC, topic):
        return DEVICE_DISCOVERY
    if topic.endswith("/window"):
        return SCHEMAS["window"]
    if topic.endswith("/status"):
        return SCHEMAS["status"]
    if topic.endswith("/stats"):
        return SCHEMAS["stats"]
    if topic.endswith("/privacy"):
        return SCHEMAS["privacy"]
    raise AssertionError(f"message on an unexpected topic: {topic}")


@dataclass(frozen=True)
class Received:
    topic: str
    payload: dict[str, Any]
    retain: bool
    qos: int


class Subscriber:
    def __init__(
        self,
        host: str,
        port: int,
        topic: str = "#",
        ca_file: str | None = None,
        session: str | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """`session`: a client id whose session (subscription and queued QoS 1 messages) the
        broker keeps while this subscriber is away, like a dashboard's durable session."""
        self.messages: list[Received] = []
        self._lock = threading.Condition()
        self._ready = threading.Event()
        if session is None:
            self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        else:
            self._client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=session,
                clean_session=False,
            )
            self._client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)  # type: ignore[arg-type]
        if credentials is not None:
            self._client.username_pw_set(*credentials)
        self._client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *a: self._ready.set()
        self._client.on_message = self._on_message
        if ca_file is not None:
            self._client.tls_set(ca_certs=ca_file)
        self._client.connect(host, port)
        self._client.loop_start()
        assert self._ready.wait(5), "subscription not acknowledged"

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.count("/") == 1 and HA_BIRTH_TOPIC.match(message.topic):
            # Home Assistant's own birth/will (`online`/`offline`), plain text, not ours.
            payload: dict[str, Any] = {"home_assistant": message.payload.decode()}
        else:
            payload = json.loads(message.payload) if message.payload else {}
        if payload and "home_assistant" not in payload:
            jsonschema.validate(payload, schema_for(message.topic))
        with self._lock:
            self.messages.append(
                Received(message.topic, payload, bool(message.retain), message.qos)
            )
            self._lock.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> Received:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching message within {timeout} s; got {[m.topic for m in self.messages]}"
                    )
                self._lock.wait(remaining)

    def windows(self) -> list[dict[str, Any]]:
        return [m.payload for m in self.messages if m.topic.endswith("/window")]

    def unique_windows(self) -> list[dict[str, Any]]:
        """Windows as a dashboard keeps them: the first copy of each window_id, in order of
        arrival (a replay after a crash, or a retained copy, may repeat one)."""
        seen: set[str] = set()
        unique = []
        for window in self.windows():
            if window["window_id"] not in seen:
                seen.add(window["window_id"])
                unique.append(window)
        return unique

    def states(self) -> list[str]:
        return [
            m.payload["state"] for m in self.messages if m.topic.endswith("/status") and m.payload
        ]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass(frozen=True)
class RawMessage:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class TopicRecorder:
    """Keeps every message on one topic filter as it arrived: raw bytes (an empty retained
    message is a deletion, not JSON), retain flag and QoS, for tests of retained topics."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[RawMessage] = []
        self._arrived = threading.Condition()
        subscribed = threading.Event()
        self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self._client.on_connect = lambda client, *args: client.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()
        assert subscribed.wait(5), "subscription not acknowledged"

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self.messages.append(
                RawMessage(message.topic, bytes(message.payload), bool(message.retain), message.qos)
            )
            self._arrived.notify_all()

    def wait(self, count: int, timeout: float = 15.0) -> list[RawMessage]:
        """The first `count` messages, waiting for them."""
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"{len(self.messages)} message(s) within {timeout} s, wanted {count}"
            )
            return list(self.messages)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
