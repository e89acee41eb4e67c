"""MQTT publishing with paho-mqtt 2 (callback API version 2): QoS 1 windows from the spool.

Windows never go to the network directly. `publish_window` commits the window to the durable
spool (publish/spool.py) and returns; a forwarder thread hands the oldest spooled windows to
paho in small batches while connected, and deletes each from the spool on its PUBACK. A batch is
handed over only when the previous one is fully acknowledged: paho resends unacknowledged
messages in order after a reconnect, so delivery stays in order through any number of outages.
During an outage windows accumulate on disk, not in paho's memory.

The broker connection is retried forever with jittered exponential back-off on paho's own
network thread; nothing here blocks the inference loop. A broker that refuses our credentials
is retried too (an operator fixes the config and sends SIGHUP), while windows wait in the spool.

The status topic is retained: `online` once connected, `offline` set by the broker as our last
will if we vanish, `stopped` on a clean shutdown. The privacy manifest (privacy/manifest.py), when
given, is published retained right after `online` on every connection, so a broker that lost
its retained messages (restarted without persistence) gets it back at our next connection.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from sensekit.backoff import Backoff
from sensekit.config import MqttConfig
from sensekit.errors import BrokerError
from sensekit.publish.homeassistant import Discovery
from sensekit.publish.payloads import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    STATUS_STOPPED,
    Topics,
    encode,
    status_payload,
    window_id,
    window_payload,
)
from sensekit.publish.spool import Spool
from sensekit.types import ZoneWindow

log = logging.getLogger(__name__)

QOS = 1
BATCH = 20
"""Windows handed to paho at once; paho's own in-flight limit is 20."""
STALE_BATCH_S = 60.0
"""A batch unacknowledged this long on a live connection is sent again (a lost PUBACK)."""
RECONNECT_MAX_S = 60.0
# CONNACK reason codes that retrying with the same settings cannot fix.
_REFUSALS = {
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


def read_password(config: MqttConfig) -> str | None:
    """The broker password, read from its file at every (re)connection set-up, so a reload
    picks up a rotated password even when the config file itself did not change."""
    if config.password_file is None:
        return None
    try:
        return config.password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BrokerError(
            f"cannot read mqtt.password_file {config.password_file}: {exc.strerror}"
        ) from None


class MqttPublisher:
    def __init__(
        self,
        config: MqttConfig,
        identity: Identity,
        spool: Spool,
        clock: Any = time.time,
        *,
        manifest: dict[str, Any] | None = None,
        discovery: Discovery | None = None,
    ) -> None:
        """`manifest`: the privacy manifest payload, published as given (nothing is stamped on
        it here) retained on the privacy topic at every connection; None publishes none.
        `discovery`: the Home Assistant discovery record, published retained at every
        connection and again (after a random delay) whenever Home Assistant says `online`."""
        self.config = config
        self.identity = identity
        self.spool = spool
        self._manifest = manifest
        self._manifest_lock = threading.Lock()
        self._discovery = discovery
        self._discovery_lock = threading.Lock()
        self._discovery_timer: threading.Timer | None = None
        self._discovery_subscription: int | None = None
        self.discovery_sent = 0
        self.topics = Topics(config.topic_prefix, identity.site, identity.device)
        self._clock = clock
        self._connected = threading.Event()
        self._first_result = threading.Event()
        self.state = "connecting"
        self.last_error: str | None = None
        self.reconnects = 0
        self._ever_connected = False
        self._closing = False
        self._backoff = Backoff(1.0, RECONNECT_MAX_S)
        # Acknowledgement bookkeeping, shared with paho's network thread. paho may call
        # on_publish before publish() has returned the message id to us, so early acks are
        # remembered until the id is registered. Never hold this lock while calling into paho:
        # paho calls on_publish with its own message lock held.
        self._cv = threading.Condition()
        self._windows_in_flight: dict[int, int] = {}  # mid -> spool seq
        self._others_in_flight: set[int] = set()  # status and stats messages
        self._acked_early: set[int] = set()
        self._acked_seqs: list[int] = []
        self._last_progress = time.monotonic()
        self._forwarder: threading.Thread | None = None
        client_id = config.client_id or f"sensekit-{identity.site}-{identity.device}"
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(min_delay=1, max_delay=int(RECONNECT_MAX_S))
        self.password = read_password(config)
        if config.username is not None:
            self._client.username_pw_set(config.username, self.password)
        if config.use_tls:
            self._configure_tls()
        self._client.will_set(
            self.topics.status, self._status(STATUS_OFFLINE), qos=QOS, retain=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

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

    @property
    def _broker(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _retry_later(self) -> float:
        """Set paho's next reconnect delay from our jittered back-off (paho's own doubles
        without jitter); returns it for the log line."""
        delay = self._backoff.next_delay()
        self._client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]
        return delay

    def _publish_manifest(self) -> None:
        """Retained, QoS 1. The lock keeps a connect racing `set_manifest` from publishing the
        old manifest after the new one (the broker would retain the old). Only paho's and our
        _cv are taken under it, and neither is ever held while taking it."""
        with self._manifest_lock:
            if self._manifest is None:
                return
            info = self._client.publish(
                self.topics.privacy, encode(self._manifest), qos=QOS, retain=True
            )
            self._register(info, None)

    def _publish_discovery(self) -> None:
        """Retained, QoS 1, under a lock for the same reason as the manifest. A delayed resend
        that finds the connection gone does nothing: the next connection sends it anyway."""
        with self._discovery_lock:
            if self._discovery is None or not self._client.is_connected():
                return
            info = self._client.publish(
                self._discovery.topic, encode(self._discovery.payload), qos=QOS, retain=True
            )
            self._register(info, None)
            self.discovery_sent += 1
        log.debug("Home Assistant discovery published on %s", self._discovery.topic)

    def _follow_home_assistant(self, client: mqtt.Client) -> None:
        """Listen for Home Assistant's `online` (it lost its entities: restarted, or its MQTT
        integration reloaded) and for our own retained record from an earlier run; publish the
        record once the broker has acknowledged the subscription. The broker sends a retained
        record right behind its acknowledgement, so the one we then receive with the retain
        flag is the earlier run's, not ours: `_remove_stale_components` compares it with ours."""
        discovery = self._discovery
        if discovery is None:
            return
        _, mid = client.subscribe([(discovery.birth_topic, QOS), (discovery.topic, QOS)])
        with self._discovery_lock:
            self._discovery_subscription = mid

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        with self._discovery_lock:
            ours = mid == self._discovery_subscription
        if ours:
            # Granted or refused by the broker's ACL: the record goes out either way.
            self._publish_discovery()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        discovery = self._discovery
        if discovery is None:
            return
        if message.topic == discovery.birth_topic and message.payload == b"online":
            delay = random.uniform(0.0, discovery.resend_delay_max_s)
            log.info(
                "Home Assistant came online: sending the discovery record again in %.1f s", delay
            )
            timer = threading.Timer(delay, self._publish_discovery)
            timer.daemon = True
            with self._discovery_lock:
                if self._discovery_timer is not None:
                    self._discovery_timer.cancel()
                self._discovery_timer = timer
            timer.start()
        elif message.topic == discovery.topic and message.retain and message.payload:
            self._remove_stale_components(message.payload)

    def _remove_stale_components(self, retained: bytes) -> None:
        """A record retained by an earlier run (before a zone was renamed or removed) declares
        components we no longer have: send ours once more with those marked for deletion."""
        try:
            earlier = json.loads(retained)
            components = earlier["components"]
            platforms = {
                key: value["platform"]
                for key, value in components.items()
                if isinstance(value, dict) and len(value) > 1 and "platform" in value
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        with self._discovery_lock:
            if self._discovery is None:
                return
            previous = Discovery(
                self._discovery.topic,
                {"components": {key: {"platform": p} for key, p in platforms.items()}},
                self._discovery.birth_topic,
                self._discovery.resend_delay_max_s,
            )
            current = self._discovery
            self._discovery = current.with_removals(previous)
        if self._discovery is not current:
            log.info(
                "removing %d Home Assistant sensor(s) of zones no longer configured",
                len(self._discovery.payload["components"]) - len(current.payload["components"]),
            )
            self._publish_discovery()
            with self._discovery_lock:
                self._discovery = current

    # paho callbacks run on its network thread -------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            text = str(reason)
            self.last_error = f"broker {self._broker} refused the connection: {text}"
            if text in _REFUSALS:
                self.state = "refused"
                log.error(
                    "%s (check mqtt.username, mqtt.password_file and the broker's ACL, then "
                    "reload with SIGHUP); windows are kept in the spool (%d waiting)",
                    self.last_error,
                    self.spool.depth,
                )
            else:
                log.warning("%s; retrying", self.last_error)
            self._first_result.set()
            return
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._backoff.reset()
        self.state = "connected"
        self.last_error = None
        log.info(
            "connected to broker %s (%d window(s) waiting in the spool)",
            self._broker,
            self.spool.depth,
        )
        info = client.publish(self.topics.status, self._status(STATUS_ONLINE), qos=QOS, retain=True)
        self._register(info, None)
        self._publish_manifest()
        self._follow_home_assistant(client)
        with self._cv:
            self._last_progress = time.monotonic()
            self._connected.set()
            self._cv.notify_all()
        self._first_result.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        delay = self._retry_later()
        if self.state != "refused":
            self.state = "disconnected"
        log.debug("broker %s not reachable; next attempt in %.1f s", self._broker, delay)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._closing:
            return
        delay = self._retry_later()
        if self.state != "refused":
            self.state = "disconnected"
        if was_connected:
            self.last_error = f"lost the connection to broker {self._broker} ({reason})"
            log.warning(
                "%s; reconnecting in %.1f s, windows are kept in the spool", self.last_error, delay
            )

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        with self._cv:
            seq = self._windows_in_flight.pop(mid, None)
            if seq is not None:
                self._acked_seqs.append(seq)
                self._last_progress = time.monotonic()
            elif mid in self._others_in_flight:
                self._others_in_flight.discard(mid)
            else:  # acknowledged before publish() returned the id to us
                self._acked_early.add(mid)
            self._cv.notify_all()

    def _register(self, info: mqtt.MQTTMessageInfo, seq: int | None) -> bool:
        """Remember a message until its acknowledgement; False if paho did not queue it."""
        queued = info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)
        with self._cv:
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
                if seq is not None:
                    self._acked_seqs.append(seq)
                    self._cv.notify_all()
            elif queued and seq is not None:
                self._windows_in_flight[info.mid] = seq
            elif queued and info.mid:
                self._others_in_flight.add(info.mid)
        if not queued:
            log.error("message %s was not queued: %s", info.mid, mqtt.error_string(info.rc))
        return queued

    # the forwarder: spool -> paho, acknowledged -> deleted ---------------------------------
    def _forward(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(
                    lambda: (
                        bool(self._acked_seqs)
                        or self._closing
                        or (
                            self._connected.is_set()
                            and not self._windows_in_flight
                            and self.spool.depth > 0
                        )
                    ),
                    timeout=1.0,
                )
                acked, self._acked_seqs = self._acked_seqs, []
                if self._closing and not acked:
                    return
                idle = self._connected.is_set() and not self._windows_in_flight
                stale = (
                    self._connected.is_set()
                    and bool(self._windows_in_flight)
                    and time.monotonic() - self._last_progress > STALE_BATCH_S
                )
                if stale:
                    log.warning(
                        "%d window(s) unacknowledged for %.0f s; sending them again",
                        len(self._windows_in_flight),
                        STALE_BATCH_S,
                    )
                    self._windows_in_flight.clear()
                    idle = True
            if acked:
                self.spool.remove(acked)
            if idle:
                self._hand_over()

    def _hand_over(self) -> None:
        for window in self.spool.pending(BATCH):
            if not self._connected.is_set():
                return
            info = self._client.publish(window.topic, window.payload, qos=QOS, retain=True)
            if not self._register(info, window.seq):
                return  # keep the order: the rest waits for the next round
            with self._cv:
                self._last_progress = time.monotonic()

    # public --------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, wait_s: float | None = None) -> None:
        """Start the network loop and the forwarder; wait up to `wait_s` for the broker's first
        answer. Only what no retry can fix (a certificate that does not verify) raises."""
        self._forwarder = threading.Thread(target=self._forward, name="mqtt-forward", daemon=True)
        self._forwarder.start()
        try:
            # A first connection in this thread, so that a certificate that does not verify
            # fails now, in words. An unreachable or unresolvable broker (the network may come
            # up after us at boot) is retried in the background.
            self._client.connect(self.config.host, self.config.port, self.config.keepalive_s)
        except ssl.SSLError as exc:
            self.close()
            raise BrokerError(
                f"TLS with broker {self._broker} failed: {exc.reason or exc}"
                " (check mqtt.tls.ca_file and that the broker's certificate names this host)"
            ) from None
        except (OSError, ValueError) as exc:
            self.state = "disconnected"
            self.last_error = f"broker {self._broker} not reachable: {exc}"
            log.warning(
                "%s; retrying in the background, windows wait in the spool", self.last_error
            )
            self._retry_later()
            self._client.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
            self._client.loop_start()
            return
        self._client.loop_start()
        timeout = self.config.connect_timeout_s if wait_s is None else wait_s
        self._first_result.wait(timeout)
        if not self.connected and self.state != "refused":
            log.warning(
                "no answer yet from broker %s; windows wait in the spool until it connects",
                self._broker,
            )

    def publish_window(self, window: ZoneWindow) -> dict[str, Any]:
        """Commit the window to the spool (durable) and return at once; the forwarder sends it."""
        built: dict[str, Any] = {}

        def build(seq: int) -> bytes:
            built.update(window_payload(window, seq))
            return encode(built)

        self.spool.append(window_id(window), self.topics.window(window.zone), build)
        with self._cv:
            self._cv.notify_all()
        return built

    def health(self) -> dict[str, Any]:
        """Connection state for the stats topic."""
        with self._cv:
            in_flight = len(self._windows_in_flight)
        return {
            "connected": self.connected,
            "state": self.state,
            "reconnects": self.reconnects,
            "unacknowledged": in_flight,
            "last_error": self.last_error,
        }

    def set_manifest(self, manifest: dict[str, Any] | None) -> None:
        """Replace the privacy manifest (a reload changed what the device does) and publish
        it now if connected, else at the next connection. None keeps what the broker retains."""
        with self._manifest_lock:
            self._manifest = manifest
        if self.connected:
            self._publish_manifest()

    def set_discovery(self, discovery: Discovery | None) -> None:
        """Replace the Home Assistant record (zones or prefix changed on reload). Components
        that disappeared are deleted; a record under another topic (new prefix, discovery
        turned off) is cleared with an empty retained message."""
        with self._discovery_lock:
            previous = self._discovery
            self._discovery = discovery.with_removals(previous) if discovery else None
        moved = previous is not None and (discovery is None or discovery.topic != previous.topic)
        if previous is not None and moved and self.connected:
            info = self._client.publish(previous.topic, b"", qos=QOS, retain=True)
            self._register(info, None)
            self._client.unsubscribe([previous.birth_topic, previous.topic])
        if discovery is not None and self.connected:
            if moved or previous is None:
                self._follow_home_assistant(self._client)  # publishes when subscribed
            else:
                self._publish_discovery()
                with self._discovery_lock:
                    self._discovery = discovery

    def publish_stats(self, payload: dict[str, Any]) -> None:
        """Best effort (QoS 0): a stats message is stale by the next one, so none is queued
        while the broker is away."""
        if self.connected:
            self._register(
                self._client.publish(self.topics.stats, encode(payload), qos=0, retain=False),
                None,
            )

    def flush(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for the broker to acknowledge every spooled window; returns
        how many are still waiting (they stay in the spool for the next start)."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self.spool.depth or self._acked_seqs:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._forwarder_alive():
                    break
                self._cv.wait(min(remaining, 0.2))
        return self.spool.depth

    def _forwarder_alive(self) -> bool:
        return self._forwarder is not None and self._forwarder.is_alive()

    def stop(self, timeout_s: float = 5.0) -> int:
        """Flush the spool (bounded), publish `stopped`, disconnect. Returns the windows left in
        the spool: not lost, they are sent at the next start."""
        deadline = time.monotonic() + timeout_s
        if self.spool.depth and not self.connected and self.state != "refused":
            # A reconnect may be due within the bound (the broker just came back): wait for it
            # rather than leave the last windows to the next start.
            self._connected.wait(timeout_s)
        remaining = max(deadline - time.monotonic(), 0.0)
        left = self.flush(remaining) if self.connected else self.spool.depth
        if self.connected:
            info = self._client.publish(
                self.topics.status, self._status(STATUS_STOPPED), qos=QOS, retain=True
            )
            self._register(info, None)
            with self._cv:
                self._cv.wait_for(
                    lambda: info.mid not in self._others_in_flight,
                    timeout=max(deadline - time.monotonic(), 1.0),
                )
        if left:
            log.warning(
                "%d window(s) not yet acknowledged by the broker stay in the spool %s and are "
                "sent at the next start",
                left,
                self.spool.path,
            )
        self.close()
        return left

    def close(self) -> None:
        with self._discovery_lock:
            if self._discovery_timer is not None:
                self._discovery_timer.cancel()
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._client.disconnect()
        self._client.loop_stop()
        if self._forwarder is not None:
            self._forwarder.join(timeout=5.0)
