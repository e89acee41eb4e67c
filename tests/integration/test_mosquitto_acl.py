"""The fleet's broker settings, proven on a real mosquitto: deploy/raspberrypi/mosquitto/.

The broker runs the shipped `mosquitto.conf` (TLS on a free loopback port instead of 8883, with
certificates made here by openssl) and the shipped `acl.example`, unmodified. The claims of
the README's fleet notes are checked one by one: a device writes its own topics and no
other's, its last will reaches the dashboards, a dashboard reads everything and writes nothing,
and the sensekit daemon itself gets all its messages through.

Negative claims ("never arrives") are made deterministic with a marker: mosquitto delivers the
messages one connection sends in order, and hands a QoS 1 message to the subscribers' queues
before it acknowledges it, so once a later allowed message has arrived, a denied one that was
sent before it would have arrived first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from sensekit.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO_DIR = ROOT / "deploy" / "raspberrypi" / "mosquitto"
ACL = MOSQUITTO_DIR / "acl.example"
CONF = MOSQUITTO_DIR / "mosquitto.conf"

DEVICE_A = "store-1/door"
DEVICE_B = "store-1/till"
OTHER_SITE = "store-2/door"
DASHBOARD = "_dashboard"
HOME_ASSISTANT = "_homeassistant"
PASSWORDS = {
    DEVICE_A: "pw-a",
    DEVICE_B: "pw-b",
    OTHER_SITE: "pw-c",
    DASHBOARD: "pw-dash",
    HOME_ASSISTANT: "pw-ha",
}
TIMEOUT_S = 10.0


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class FleetBroker:
    host: str
    port: int
    ca_file: Path
    folder: Path


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a broker certificate for 127.0.0.1 signed by it."""
    ca_key, ca_cert = folder / "ca.key", folder / "sensekit-ca.crt"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=sensekit test CA", "-keyout", str(ca_key), "-out", str(ca_cert))  # fmt: skip
    key, csr, cert = folder / "broker.key", folder / "broker.csr", folder / "broker.crt"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(csr))  # fmt: skip
    san = folder / "san.cnf"
    san.write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(san), "-out", str(cert))  # fmt: skip
    return ca_cert, cert, key


def shipped_config(shipped: str, port: int, files: dict[str, Path]) -> str:
    """The shipped mosquitto.conf with its paths pointed at `files` and the listener moved to
    a free loopback port; every other line is used as shipped."""
    lines = []
    for line in shipped.splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            lines.append(f"listener {port} 127.0.0.1")
        elif key in files:
            lines.append(f"{key} {files[key]}")
        else:
            lines.append(line)
    lines += ["persistence false", "log_dest stderr", "log_type error"]
    return "\n".join(lines) + "\n"


def mosquitto_binary() -> str:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("mosquitto is not installed: run the README's install command (.ci/run does)")
    return binary


@pytest.fixture
def fleet_broker() -> Iterator[FleetBroker]:
    # mosquitto started as root reads its files after dropping to its own user: a folder
    # anyone can read (pytest's tmp_path is private to root).
    with tempfile.TemporaryDirectory(prefix="sensekit-acl-") as name:
        folder = Path(name)
        folder.chmod(0o755)
        ca_cert, cert, key = make_certificates(folder)
        passwd = folder / "sensekit.passwd"
        passwd.write_text("")
        for user, password in PASSWORDS.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(passwd), user, password],
                check=True,
                capture_output=True,
            )
        acl = folder / "sensekit.acl"
        shutil.copyfile(ACL, acl)
        for path in (ca_cert, cert, key, passwd, acl):
            path.chmod(0o644)
        port = free_port()
        config = folder / "mosquitto.conf"
        config.write_text(
            shipped_config(
                CONF.read_text(),
                port,
                {
                    "cafile": ca_cert,
                    "certfile": cert,
                    "keyfile": key,
                    "password_file": passwd,
                    "acl_file": acl,
                },
            )
        )
        process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            if not wait_for_port("127.0.0.1", port, 5.0):
                process.terminate()
                _, stderr = process.communicate(timeout=5)
                pytest.fail(f"mosquitto did not start with the shipped config: {stderr!r}")
            yield FleetBroker("127.0.0.1", port, ca_cert, folder)
        finally:
            process.terminate()
            try:
                process.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Client:
    """One MQTT connection over TLS; records what it receives and how it was disconnected."""

    def __init__(
        self,
        broker: FleetBroker,
        username: str | None,
        *,
        client_id: str = "",
        protocol: int = mqtt.MQTTv311,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.messages: list[Message] = []
        self.disconnected = threading.Event()
        self._cv = threading.Condition()
        self._connack: ReasonCode | None = None
        self._acks: dict[int, ReasonCode] = {}
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
        )
        if username is not None:
            self._client.username_pw_set(username, PASSWORDS.get(username, "wrong"))
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        self._client.tls_set(ca_certs=str(broker.ca_file))
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.on_disconnect = lambda *args: self.disconnected.set()
        self._client.connect(broker.host, broker.port, keepalive=30)
        self._client.loop_start()
        with self._cv:
            assert self._cv.wait_for(lambda: self._connack is not None, TIMEOUT_S)

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        with self._cv:
            self._connack = rc
            self._cv.notify_all()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        with self._cv:
            self._acks[mid] = rc
            self._cv.notify_all()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._cv:
            self.messages.append(Message(message.topic, message.payload, bool(message.retain)))
            self._cv.notify_all()

    @property
    def accepted(self) -> bool:
        return self._connack is not None and not self._connack.is_failure

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self._client.on_subscribe = lambda *args: done.set()
        self._client.subscribe(topic, qos=1)
        assert done.wait(TIMEOUT_S), "subscription not acknowledged"

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        """Publish at QoS 1, wait for the broker's PUBACK and return its reason code (MQTT 3.1.1
        has none: paho reports success for every PUBACK)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        with self._cv:
            assert self._cv.wait_for(lambda: info.mid in self._acks, TIMEOUT_S), (
                f"no PUBACK: {topic}"
            )
            return self._acks.pop(info.mid)

    def wait_for(self, predicate: Callable[[Message], bool]) -> Message:
        with self._cv:
            found: list[Message] = []

            def seen() -> bool:
                found[:] = [m for m in self.messages if predicate(m)]
                return bool(found)

            assert self._cv.wait_for(seen, TIMEOUT_S), f"not received; got {self.messages}"
            return found[0]

    def payloads(self, topic: str) -> list[bytes]:
        with self._cv:
            return [m.payload for m in self.messages if m.topic == topic]

    def vanish(self) -> None:
        """Drop the connection without DISCONNECT, as a device losing power does."""
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def clients(fleet_broker: FleetBroker) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(username: str | None, **kwargs: Any) -> Client:
        client = Client(fleet_broker, username, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def dashboard(clients: Callable[..., Client]) -> Client:
    board = clients(DASHBOARD)
    assert board.accepted
    board.subscribe("sensekit/#")
    return board


def topic(device: str, leaf: str) -> str:
    return f"sensekit/{device}/{leaf}"


def test_a_device_publishes_its_own_topics(clients: Callable[..., Client]) -> None:
    board = dashboard(clients)
    device = clients(DEVICE_A)
    device.publish(topic(DEVICE_A, "status"), b'{"state": "online"}', retain=True)
    device.publish(topic(DEVICE_A, "zones/inside/window"), b"w1", retain=True)
    device.publish(topic(DEVICE_A, "stats"), b"s1")
    board.wait_for(lambda m: m.topic == topic(DEVICE_A, "stats"))
    assert board.payloads(topic(DEVICE_A, "status")) == [b'{"state": "online"}']
    assert board.payloads(topic(DEVICE_A, "zones/inside/window")) == [b"w1"]


def test_a_device_cannot_write_another_devices_topics(clients: Callable[..., Client]) -> None:
    board = dashboard(clients)
    device = clients(DEVICE_A)
    forged = [
        topic(DEVICE_B, "status"),  # same site, other device
        topic(DEVICE_B, "zones/inside/window"),
        topic(OTHER_SITE, "status"),  # other site, same device name
        "sensekit/store-1/status",  # a level above its own
        "sensekit/store-1",
        "other-prefix/store-1/door/status",
    ]
    for name in forged:
        device.publish(name, b"forged", retain=True)
    device.publish(topic(DEVICE_A, "stats"), b"marker")
    board.wait_for(lambda m: m.payload == b"marker")
    assert [m for m in board.messages if m.payload == b"forged"] == []
    # Nor was anything retained there for a dashboard that subscribes later.
    late = dashboard(clients)
    late.subscribe(topic(DEVICE_A, "#"))
    device.publish(topic(DEVICE_A, "stats"), b"marker-2")
    late.wait_for(lambda m: m.payload == b"marker-2")
    assert [m for m in late.messages if m.payload == b"forged"] == []


def test_mqtt5_tells_the_device_it_was_refused(clients: Callable[..., Client]) -> None:
    """With MQTT 5 the PUBACK says "Not authorized" (a client could keep the message)."""
    device = clients(DEVICE_A, protocol=mqtt.MQTTv5)
    refused = device.publish(topic(DEVICE_B, "status"), b"forged")
    allowed = device.publish(topic(DEVICE_A, "status"), b"own")
    assert refused.is_failure and refused.getName() == "Not authorized"
    assert not allowed.is_failure


def test_mqtt311_acknowledges_a_denied_publish_and_drops_it(
    clients: Callable[..., Client],
) -> None:
    """Why the README says to check every new device's status once: sensekit speaks MQTT 3.1.1,
    where a denied QoS 1 publish is acknowledged like any other, so a window sent to a topic
    the ACL refuses leaves the spool and is lost."""
    board = dashboard(clients)
    device = clients(DEVICE_A)
    ack = device.publish(topic(DEVICE_B, "zones/inside/window"), b"lost")
    assert not ack.is_failure  # the broker acknowledged it ...
    device.publish(topic(DEVICE_A, "stats"), b"marker")
    board.wait_for(lambda m: m.payload == b"marker")
    assert board.payloads(topic(DEVICE_B, "zones/inside/window")) == []  # ... and dropped it


def test_the_last_will_reaches_the_dashboard_a_forged_will_does_not(
    clients: Callable[..., Client],
) -> None:
    board = dashboard(clients)
    forger = clients(DEVICE_A, will=(topic(DEVICE_B, "status"), b'{"state": "offline"}'))
    assert forger.accepted
    forger.vanish()
    device = clients(DEVICE_A, will=(topic(DEVICE_A, "status"), b'{"state": "offline"}'))
    device.publish(topic(DEVICE_A, "status"), b'{"state": "online"}', retain=True)
    device.vanish()
    board.wait_for(
        lambda m: m.topic == topic(DEVICE_A, "status") and m.payload == b'{"state": "offline"}'
    )
    assert board.payloads(topic(DEVICE_B, "status")) == []
    # The will is retained: a dashboard that starts later sees the device offline.
    late = dashboard(clients)
    retained = late.wait_for(lambda m: m.topic == topic(DEVICE_A, "status"))
    assert retained.retain and retained.payload == b'{"state": "offline"}'


def test_a_dashboard_reads_everything_and_writes_nothing(clients: Callable[..., Client]) -> None:
    board = dashboard(clients)
    device = clients(DEVICE_A)
    other = clients(OTHER_SITE)
    device.publish(topic(DEVICE_A, "status"), b"a-online", retain=True)
    other.publish(topic(OTHER_SITE, "status"), b"c-online", retain=True)
    board.wait_for(lambda m: m.payload == b"a-online")
    board.wait_for(lambda m: m.payload == b"c-online")
    # The dashboard tries to overwrite a device's retained status and to inject a window.
    board.publish(topic(DEVICE_A, "status"), b'{"state": "stopped"}', retain=True)
    board.publish(topic(DEVICE_A, "zones/inside/window"), b"injected")
    board.publish("sensekit/store-1/new-device/status", b"injected")
    # Its PUBACKs came back: mosquitto had already dropped them. A marker from the device,
    # sent after those acknowledgements, arrives after anything they could have delivered.
    device.publish(topic(DEVICE_A, "stats"), b"marker")
    board.wait_for(lambda m: m.payload == b"marker")
    assert board.payloads(topic(DEVICE_A, "status")) == [b"a-online"]
    assert [m for m in board.messages if m.payload == b"injected"] == []
    late = dashboard(clients)
    retained = late.wait_for(lambda m: m.topic == topic(DEVICE_A, "status"))
    assert retained.payload == b"a-online"


def discovery(device: str) -> str:
    return f"homeassistant/device/{device}/config"


def test_a_device_writes_its_own_discovery_record_and_no_other(
    clients: Callable[..., Client],
) -> None:
    home = clients(HOME_ASSISTANT)
    home.subscribe("homeassistant/#")
    device = clients(DEVICE_A)
    device.publish(discovery(DEVICE_B), b"forged", retain=True)  # same site, other device
    device.publish(discovery(OTHER_SITE), b"forged", retain=True)
    device.publish("homeassistant/device/store-1/config", b"forged", retain=True)
    device.publish("homeassistant/status", b"offline")  # only Home Assistant speaks there
    device.publish(discovery(DEVICE_A), b"record-a", retain=True)
    home.wait_for(lambda m: m.payload == b"record-a")
    assert [m for m in home.messages if m.payload in (b"forged", b"offline")] == []
    late = clients(HOME_ASSISTANT)
    late.subscribe("homeassistant/#")
    retained = late.wait_for(lambda m: m.topic == discovery(DEVICE_A))
    assert retained.retain
    assert [m.topic for m in late.messages] == [discovery(DEVICE_A)]


def test_a_device_hears_home_assistant_come_online_and_reads_only_its_own_record(
    clients: Callable[..., Client],
) -> None:
    other = clients(DEVICE_B)
    other.publish(discovery(DEVICE_B), b"record-b", retain=True)
    device = clients(DEVICE_A)
    device.publish(discovery(DEVICE_A), b"record-a", retain=True)
    for name in ("homeassistant/status", discovery(DEVICE_A), discovery(DEVICE_B)):
        device.subscribe(name)
    home = clients(HOME_ASSISTANT)
    home.publish("homeassistant/status", b"online")
    device.wait_for(lambda m: m.topic == "homeassistant/status" and m.payload == b"online")
    assert device.payloads(discovery(DEVICE_A)) == [b"record-a"]
    assert device.payloads(discovery(DEVICE_B)) == []  # not its record: not readable


def test_home_assistant_reads_the_devices_and_cannot_write_their_topics(
    clients: Callable[..., Client],
) -> None:
    device = clients(DEVICE_A)
    home = clients(HOME_ASSISTANT)
    home.subscribe("sensekit/#")
    home.publish(topic(DEVICE_A, "status"), b"injected", retain=True)
    home.publish(discovery(DEVICE_A), b"injected", retain=True)
    device.publish(topic(DEVICE_A, "status"), b"a-online", retain=True)
    home.wait_for(lambda m: m.payload == b"a-online")
    assert [m for m in home.messages if m.payload == b"injected"] == []
    board = dashboard(clients)
    board.subscribe("homeassistant/#")
    device.publish(topic(DEVICE_A, "stats"), b"marker")
    board.wait_for(lambda m: m.payload == b"marker")
    assert [m for m in board.messages if m.topic.startswith("homeassistant/")] == []


def test_anonymous_and_wrong_passwords_are_refused(clients: Callable[..., Client]) -> None:
    assert not clients(None).accepted
    assert not clients("store-9/unknown").accepted


def test_another_device_cannot_take_over_a_devices_session(
    clients: Callable[..., Client],
) -> None:
    """use_username_as_clientid: device B connecting with A's client id does not push A off."""
    board = dashboard(clients)
    device = clients(DEVICE_A, client_id="sensekit-store-1-door")
    intruder = clients(DEVICE_B, client_id="sensekit-store-1-door")
    assert intruder.accepted
    device.publish(topic(DEVICE_A, "stats"), b"still-here")
    board.wait_for(lambda m: m.payload == b"still-here")
    assert not device.disconnected.is_set()


def run_daemon(
    tmp_path: Path, broker: FleetBroker, username: str
) -> subprocess.CompletedProcess[str]:
    """The real daemon as device `username`, on a short blank replayed video."""
    site, device = username.split("/")
    video = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(30):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    password = tmp_path / "mqtt.password"
    password.write_text(PASSWORDS[username] + "\n")
    config = tmp_path / "sensekit.yaml"
    config.write_text(
        f"site: {site}\ndevice: {device}\n"
        f"mqtt:\n  url: mqtts://{broker.host}:{broker.port}\n  username: {username}\n"
        f"  password_file: {password}\n  tls:\n    ca_file: {broker.ca_file}\n"
        f"cameras:\n  - name: door\n    source: {str(video)!r}\n    replay: fast\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "sensekit", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_daemon_gets_every_message_through_the_acl(
    tmp_path: Path, fleet_broker: FleetBroker, clients: Callable[..., Client]
) -> None:
    board = dashboard(clients)
    home = clients(HOME_ASSISTANT)
    home.subscribe("homeassistant/#")
    result = run_daemon(tmp_path, fleet_broker, DEVICE_A)
    assert result.returncode == 0, result.stderr
    # Its Home Assistant discovery record went through too, on the topic the ACL allows.
    record = home.wait_for(lambda m: m.topic == discovery(DEVICE_A))
    assert json.loads(record.payload)["device"]["identifiers"] == ["sensekit_store-1_door"]
    board.wait_for(lambda m: m.topic == topic(DEVICE_A, "status") and b'"stopped"' in m.payload)
    topics = {m.topic for m in board.messages}
    assert {
        topic(DEVICE_A, "status"),
        topic(DEVICE_A, "privacy"),
        topic(DEVICE_A, "zones/door/window"),
    } <= topics, topics
    assert all(name.startswith(f"sensekit/{DEVICE_A}/") for name in topics)
    states = [m.payload for m in board.messages if m.topic == topic(DEVICE_A, "status")]
    assert b'"online"' in states[0] and b'"stopped"' in states[-1]
