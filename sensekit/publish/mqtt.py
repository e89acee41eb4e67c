"""MQTT publishing with paho-mqtt 2 (callback API version 2), QoS 1, TLS and credentials.

The status topic is retained: `online` once connected, `offline` set by the broker as our last
will if we vanish, `stopped` on a clean shutdown. paho keeps QoS 1 messages queued while the
connection is down and resends them after it reconnects.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from sensekit.config import MqttConfig
from sensekit.errors import BrokerError
from sensekit.publish.payloads import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    STATUS_STOPPED,
    Topics,
    encode,
    status_payload,
    window_payload,
)
from sensekit.types import ZoneWindow

log = logging.getLogger(__name__)

QOS = 1
# CONNACK reason codes that retrying cannot fix: the configuration must change.
_FATAL_CONNACK = {
    "Bad user name or password",
    "Not authorized",
    "Client identifier not valid",
    "Unsupported protocol version",
    "Banned",
}


@dataclass(frozen=True, slots=True)
class Identity:
    site: str
    device: str


def _read_password(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BrokerError(f"cannot read mqtt.password_file {path}: {exc.strerror}") from None


class MqttPublisher:
    def __init__(self, config: MqttConfig, identity: Identity, clock: Any = time.time) -> None:
        self.config = config
        self.identity = identity
        self.topics = Topics(config.topic_prefix, identity.site, identity.device)
        self._clock = clock
        self._connected = threading.Event()
        self._first_result = threading.Event()
        self._fatal: str | None = None
        self.reconnects = 0
        self._ever_connected = False
        self._seq = 0
        self._closing = False
        # Message ids the broker has not acknowledged yet (QoS 1 PUBACK). paho keeps these
        # messages queued across reconnects; its MQTTMessageInfo cannot say when a message
        # published while disconnected is finally acknowledged, so we track on_publish.
        self._unacked: set[int] = set()
        self._acked_early: set[int] = set()
        self._acks = threading.Condition()
        client_id = config.client_id or f"sensekit-{identity.site}-{identity.device}"
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(min_delay=1, max_delay=60)
        if config.username is not None:
            password = _read_password(config.password_file) if config.password_file else None
            self._client.username_pw_set(config.username, password)
        if config.use_tls:
            self._configure_tls()
        self._client.will_set(
            self.topics.status, self._status(STATUS_OFFLINE), qos=QOS, retain=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    def _configure_tls(self) -> None:
        tls = self.config.tls
        for label, path in (
            ("ca_file", tls.ca_file),
            ("cert_file", tls.cert_file),
            ("key_file", tls.key_file),
        ):
            if path is not None and not Path(path).is_file():
                raise BrokerError(f"mqtt.tls.{label}: no such file: {path}")
        try:
            self._client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (ssl.SSLError, OSError) as exc:
            raise BrokerError(f"mqtt.tls: cannot load certificates: {exc}") from None
        self._client.tls_insecure_set(tls.insecure)

    def _status(self, state: str) -> bytes:
        return encode(
            status_payload(self.identity.site, self.identity.device, state, self._clock())
        )

    # paho callbacks run on its network thread -------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            text = str(reason)
            if text in _FATAL_CONNACK:
                self._fatal = (
                    f"broker {self.config.host}:{self.config.port} refused the connection: {text}"
                    " (check mqtt.username, mqtt.password_file and the broker's ACL)"
                )
            else:
                log.warning("broker refused the connection: %s; retrying", text)
            self._first_result.set()
            return
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        log.info("connected to broker %s:%s", self.config.host, self.config.port)
        client.publish(self.topics.status, self._status(STATUS_ONLINE), qos=QOS, retain=True)
        self._connected.set()
        self._first_result.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if self._connected.is_set() and not self._closing:
            log.warning("lost the broker connection (%s); reconnecting in the background", reason)
        self._connected.clear()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        with self._acks:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:  # acknowledged before publish() returned to us
                self._acked_early.add(mid)
            self._acks.notify_all()

    def _track(self, info: mqtt.MQTTMessageInfo) -> None:
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # Not queued at all (paho's queue refused it): nothing will ever acknowledge it.
            log.error("message %s was not queued: %s", info.mid, mqtt.error_string(info.rc))
            return
        with self._acks:
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
            else:
                self._unacked.add(info.mid)

    # public --------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def fatal_error(self) -> str | None:
        return self._fatal

    def start(self, wait_s: float | None = None) -> None:
        """Start the network loop; wait up to `wait_s` for the first answer of the broker.

        A refusal of our credentials raises BrokerError (retrying cannot fix it). An
        unreachable broker is logged and retried in the background.
        """
        try:
            # A first connection in this thread, so that what no retry can fix (a certificate
            # that does not verify) fails now, in words, instead of being retried forever in
            # the background. An unreachable or unresolvable broker (the network may come up
            # after us at boot) is retried.
            self._client.connect(self.config.host, self.config.port, self.config.keepalive_s)
        except ssl.SSLError as exc:
            raise BrokerError(
                f"TLS with broker {self.config.host}:{self.config.port} failed: {exc.reason or exc}"
                " (check mqtt.tls.ca_file and that the broker's certificate names this host)"
            ) from None
        except (OSError, ValueError) as exc:
            log.warning(
                "broker %s:%s not reachable (%s); retrying in the background",
                self.config.host,
                self.config.port,
                exc,
            )
            self._client.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
            self._client.loop_start()
            return
        self._client.loop_start()
        timeout = self.config.connect_timeout_s if wait_s is None else wait_s
        self._first_result.wait(timeout)
        if self._fatal:
            self.close()
            raise BrokerError(self._fatal)
        if not self.connected:
            log.warning(
                "no answer yet from broker %s:%s; windows are queued until it connects",
                self.config.host,
                self.config.port,
            )

    def publish_window(self, window: ZoneWindow) -> dict[str, Any]:
        self._seq += 1
        payload = window_payload(window, self._seq)
        info = self._client.publish(
            self.topics.window(window.zone), encode(payload), qos=QOS, retain=True
        )
        self._track(info)
        return payload

    def health(self) -> dict[str, Any]:
        """Connection state for the stats topic."""
        return {
            "connected": self.connected,
            "reconnects": self.reconnects,
            "unacknowledged": self.unacknowledged,
        }

    def publish_stats(self, payload: dict[str, Any]) -> None:
        self._client.publish(self.topics.stats, encode(payload), qos=0, retain=False)

    @property
    def unacknowledged(self) -> int:
        with self._acks:
            return len(self._unacked)

    def flush(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for the broker to acknowledge every queued message; returns
        how many are still unacknowledged."""
        deadline = time.monotonic() + timeout_s
        with self._acks:
            while self._unacked:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._acks.wait(remaining)
            return len(self._unacked)

    def stop(self, timeout_s: float = 5.0) -> int:
        """Publish `stopped`, flush, disconnect. Returns the windows left unacknowledged."""
        self._track(
            self._client.publish(
                self.topics.status, self._status(STATUS_STOPPED), qos=QOS, retain=True
            )
        )
        left = self.flush(timeout_s)
        if left:
            log.error("%d message(s) were not acknowledged by the broker before shutdown", left)
        self.close()
        return left

    def close(self) -> None:
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
