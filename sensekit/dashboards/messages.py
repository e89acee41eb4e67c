"""sensekit's MQTT messages as a dashboard receives them: from a live broker or a recorded log.

`sensekit watch` and `sensekit report` read the same thing, the published topics, from either
source; a recorded log (`sensekit watch --record FILE`) is one JSON object per line:

    {"received_at": "2026-12-07T10:00:00.123Z", "topic": "...", "retained": false,
     "payload": {...}}

`payload` is the decoded JSON of the message, or null for an empty (deleting) retained message.
Only what was published goes in: the log holds nothing a subscribed dashboard did not get.
"""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sensekit.errors import BrokerError, SensekitError
from sensekit.publish.payloads import utc_iso

log = logging.getLogger(__name__)

KINDS = ("status", "stats", "privacy", "window")


class MessageLogError(SensekitError):
    """A recorded message log that cannot be read (names the file and line)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Message:
    """One message as a subscriber got it. `payload` is None for an empty message (a retained
    topic being cleared)."""

    topic: str
    payload: dict[str, Any] | None
    retained: bool
    received_at: float


@dataclass(frozen=True, slots=True)
class TopicParts:
    """`<prefix>/<site>/<device>/<kind>` or `<prefix>/<site>/<device>/zones/<zone>/window`."""

    site: str
    device: str
    kind: str
    zone: str | None = None

    @property
    def device_key(self) -> str:
        return f"{self.site}/{self.device}"


def parse_topic(topic: str, prefix: str = "sensekit") -> TopicParts | None:
    """The parts of one of sensekit's topics, or None for any other topic."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        return None
    levels = topic[len(head) :].split("/")
    if len(levels) == 3 and levels[2] in KINDS and levels[2] != "window":
        return TopicParts(levels[0], levels[1], levels[2])
    if len(levels) == 5 and levels[2] == "zones" and levels[4] == "window":
        return TopicParts(levels[0], levels[1], "window", levels[3])
    return None


def parse_utc(text: str) -> float:
    """An ISO 8601 time as the payloads write it (`...Z`) to a POSIX timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def decode_payload(raw: bytes) -> dict[str, Any] | None:
    """None for an empty message; a JSON object otherwise. Anything else is not ours."""
    if not raw:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


# the recorded log ----------------------------------------------------------------------------
def log_line(message: Message) -> str:
    return json.dumps(
        {
            "received_at": utc_iso(message.received_at),
            "topic": message.topic,
            "retained": message.retained,
            "payload": message.payload,
        },
        separators=(",", ":"),
    )


def write_message(out: TextIO, message: Message) -> None:
    out.write(log_line(message) + "\n")
    out.flush()


def read_log(path: Path) -> Iterator[Message]:
    """The messages of a recorded log in order. A malformed line stops with its file and line
    (a log is evidence: silently skipping lines would change a report)."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise MessageLogError(f"{path}: cannot read the message log: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                payload = record["payload"]
                if payload is not None and not isinstance(payload, dict):
                    raise ValueError("payload is not an object")
                yield Message(
                    topic=str(record["topic"]),
                    payload=payload,
                    retained=bool(record.get("retained", False)),
                    received_at=parse_utc(str(record["received_at"])),
                )
            except (ValueError, KeyError, TypeError) as exc:
                reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
                raise MessageLogError(
                    f"{path}:{number}: not a sensekit message log line ({reason})"
                ) from None


# a live broker -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password_file: Path | None = None,
        ca_file: Path | None = None,
    ) -> BrokerAddress:
        """`mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`; a user in the URL
        (`mqtt://user@host`) is taken, a password only from a file (it would otherwise sit in
        the shell history and the process list)."""
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise BrokerError(f"--broker {url!r}: must look like mqtt://HOST:PORT or mqtts://HOST")
        try:
            port = parsed.port
        except ValueError as exc:
            raise BrokerError(f"--broker {url!r}: bad port ({exc})") from None
        tls = parsed.scheme == "mqtts" or ca_file is not None
        password = None
        if password_file is not None:
            try:
                password = password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise BrokerError(f"cannot read {password_file}: {exc.strerror}") from None
        return cls(
            host=parsed.hostname,
            port=port or (8883 if tls else 1883),
            tls=tls,
            username=username or (unquote(parsed.username) if parsed.username else None),
            password=password,
            ca_file=ca_file,
        )

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def client_for(address: BrokerAddress, client_id: str = "") -> mqtt.Client:
    """A paho client (callback API 2) with the address's credentials and TLS set."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(
            ca_certs=str(address.ca_file) if address.ca_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return client


def connect(client: mqtt.Client, address: BrokerAddress, timeout_s: float = 10.0) -> None:
    """Connect and wait for the broker's answer; a refusal or silence raises BrokerError."""
    answered = threading.Event()
    outcome: list[str] = []
    previous = client.on_connect

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.append("" if not reason.is_failure else str(reason))
        answered.set()
        if previous is not None and not reason.is_failure:
            previous(c, userdata, flags, reason, props)

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerError(f"cannot connect to broker {address}: {exc}") from None
    client.loop_start()
    if not answered.wait(timeout_s):
        client.loop_stop()
        raise BrokerError(f"broker {address} did not answer within {timeout_s:.0f} s")
    if outcome[0]:
        client.disconnect()
        client.loop_stop()
        raise BrokerError(
            f"broker {address} refused the connection: {outcome[0]} (check --username and "
            "--password-file, and that the broker's ACL lets this user read sensekit/#)"
        )
    client.on_connect = previous


class TopicReader:
    """Subscribes to everything under a topic prefix and hands each message to `on_message`
    (on paho's network thread). Re-subscribes after a reconnect; a message that is not a JSON
    object is logged and skipped (it is not sensekit's)."""

    def __init__(
        self,
        address: BrokerAddress,
        on_message: Callable[[Message], None],
        *,
        prefix: str = "sensekit",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.address = address
        self.prefix = prefix.rstrip("/")
        self._on_message = on_message
        self._clock = clock or time.time
        self._subscribed = threading.Event()
        self.connected = False
        self._client = client_for(address)
        self._client.on_connect = self._subscribe
        self._client.on_disconnect = self._lost
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.on_message = self._receive
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)

    def _subscribe(self, client: mqtt.Client, *args: Any) -> None:
        self.connected = True
        client.subscribe(f"{self.prefix}/#", qos=1)

    def _lost(self, *args: Any) -> None:
        self.connected = False

    def _receive(self, client: mqtt.Client, userdata: Any, raw: mqtt.MQTTMessage) -> None:
        try:
            payload = decode_payload(raw.payload)
        except ValueError as exc:
            log.warning("ignoring a message on %s: %s", raw.topic, exc)
            return
        self._on_message(Message(raw.topic, payload, bool(raw.retain), self._clock()))

    def start(self, timeout_s: float = 10.0) -> None:
        connect(self._client, self.address, timeout_s)  # subscribes in on_connect
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise BrokerError(f"broker {self.address} did not accept the subscription")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def add_broker_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """The same broker options on every command that reads sensekit's topics."""
    parser.add_argument(
        "--broker",
        required=required,
        metavar="URL",
        help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (a user may be given as mqtt://USER@HOST)",
    )
    parser.add_argument("--username", help="broker user (a dashboard's read-only user)")
    parser.add_argument(
        "--password-file",
        type=Path,
        help="file holding the broker password (never on the command line)",
    )
    parser.add_argument("--ca-file", type=Path, help="CA certificate for mqtts:// (implies TLS)")
    parser.add_argument(
        "--prefix", default="sensekit", help="the devices' mqtt.topic_prefix (default sensekit)"
    )


def address_from_args(args: argparse.Namespace) -> BrokerAddress:
    return BrokerAddress.from_url(
        args.broker,
        username=args.username,
        password_file=args.password_file,
        ca_file=args.ca_file,
    )
