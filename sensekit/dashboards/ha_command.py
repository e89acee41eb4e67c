"""Home Assistant MQTT discovery for this device.

While `homeassistant.enabled` is true (the default), `sensekit run` publishes one retained
device record on `<homeassistant.discovery_prefix>/device/<site>/<device>/config` at
every connection, and again a few seconds (at random, up to homeassistant.resend_delay_max_s)
after Home Assistant announces `online` on `<discovery_prefix>/status`. Home Assistant then
shows the device with, per zone, sensors for people, the net emotion score, each expression,
`unclassified`, speech windows and each arousal level, all read from the retained window
topics; the device is unavailable while its status is `offline` or `stopped`.

  sensekit ha show --config FILE     print the topic and the record the daemon publishes
  sensekit ha remove --config FILE   delete the device from Home Assistant: publishes an empty
                                     retained record on the broker of the config's mqtt section

Set `homeassistant.enabled: false` (and reload) before `remove`, or the daemon publishes the
record again at its next connection."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from sensekit.config import Config, load_config
from sensekit.dashboards.messages import BrokerAddress, client_for, connect
from sensekit.errors import BrokerError
from sensekit.publish.homeassistant import discovery_payload, discovery_topic
from sensekit.publish.mqtt import read_password

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show", help="print the discovery topic and the record the daemon publishes"
    )
    remove = actions.add_parser(
        "remove",
        help="remove the device from Home Assistant (empty retained record on the broker)",
    )
    for action in (show, remove):
        action.add_argument("--config", "-c", required=True, help="the device's YAML config")
    remove.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the broker (default 10)"
    )


def _address(config: Config) -> BrokerAddress:
    mqtt = config.mqtt
    if mqtt.tls.cert_file is not None:
        raise BrokerError(
            "sensekit ha remove does not use client certificates yet: remove the record with "
            f"mosquitto_pub -r -n -t {discovery_topic(config.homeassistant.discovery_prefix, config.site, config.device)}"
        )
    return BrokerAddress(
        host=mqtt.host,
        port=mqtt.port,
        tls=mqtt.use_tls,
        username=mqtt.username,
        password=read_password(mqtt),
        ca_file=mqtt.tls.ca_file,
    )


def remove(config: Config, timeout_s: float) -> str:
    """Publish the empty retained record and wait for the broker's acknowledgement."""
    topic = discovery_topic(config.homeassistant.discovery_prefix, config.site, config.device)
    address = _address(config)
    client = client_for(address, client_id=f"sensekit-ha-remove-{os.getpid()}")
    connect(client, address, timeout_s)
    try:
        info = client.publish(topic, b"", qos=1, retain=True)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise BrokerError(f"broker {address} did not acknowledge the removal of {topic}")
    finally:
        client.disconnect()
        client.loop_stop()
    return topic


def run(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    prefix = config.homeassistant.discovery_prefix
    if args.action == "show":
        print(discovery_topic(prefix, config.site, config.device))
        print(json.dumps(discovery_payload(config), indent=2))
        if not config.homeassistant.enabled:
            print("# homeassistant.enabled is false: the daemon publishes none", file=sys.stderr)
        return 0
    topic = remove(config, args.timeout)
    print(f"removed: empty retained record on {topic}")
    if config.homeassistant.enabled:
        print(
            f"# {args.config}: homeassistant.enabled is true, so the running daemon publishes "
            "the record again at its next connection; set it to false and reload first",
            file=sys.stderr,
        )
    return 0
