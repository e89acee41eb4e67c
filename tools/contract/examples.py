"""Write docs/contract/examples/: one real message of each kind, from a run of the demo.

    .venv/bin/python -m tools.contract.examples [--output DIR]

The demo pipeline publishes to a private mosquitto and a subscriber records what arrives, so
every example is a message a dashboard really received (pretty-printed; on the wire each is
one compact line). The offline status is the last will the broker would publish, built by the
same function the daemon registers it with.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

from sensekit.broker import LocalBroker
from sensekit.dashboards.messages import BrokerAddress, Message, TopicReader
from sensekit.demo import run_demo
from sensekit.publish.payloads import STATUS_OFFLINE, status_payload

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "docs" / "contract" / "examples"


def record(broker: LocalBroker) -> list[Message]:
    received: list[Message] = []
    lock = threading.Lock()

    def keep(message: Message) -> None:
        with lock:
            received.append(message)

    sensekit = TopicReader(BrokerAddress.from_url(broker.url), keep)
    home = TopicReader(BrokerAddress.from_url(broker.url), keep, prefix="homeassistant")
    sensekit.start()
    home.start()
    try:
        with open("/dev/null", "w") as quiet:
            code = run_demo(broker.url, out=quiet)
        if code != 0:
            raise SystemExit(f"the demo failed (exit {code})")
    finally:
        sensekit.stop()
        home.stop()
    return received


def pick(messages: list[Message]) -> dict[str, dict[str, Any]]:
    """File name -> payload: the first message of each kind worth showing."""

    def first(test: Any) -> dict[str, Any]:
        for message in messages:
            if message.payload is not None and test(message):
                return message.payload
        raise SystemExit("the demo run did not publish every kind of message")

    online = first(lambda m: m.topic.endswith("/status") and m.payload["state"] == "online")
    examples = {
        "status-online.json": online,
        "status-stopped.json": first(
            lambda m: m.topic.endswith("/status") and m.payload["state"] == "stopped"
        ),
        "stats.json": first(lambda m: m.topic.endswith("/stats") and m.payload["cameras"]),
        "privacy.json": first(lambda m: m.topic.endswith("/privacy")),
        "window-faces-and-voice.json": first(
            lambda m: (
                m.topic.endswith("/window")
                and m.payload["voice"]
                and m.payload["faces"]
                and m.payload["faces"]["people"]
            )
        ),
        "window-faces-only.json": first(
            lambda m: (
                m.topic.endswith("/window")
                and m.payload["voice"] is None
                and m.payload["faces"]["people"]
            )
        ),
        "homeassistant-discovery.json": first(lambda m: m.topic.startswith("homeassistant/")),
    }
    will = status_payload(online["site"], online["device"], STATUS_OFFLINE, 0.0)
    will["timestamp"] = online["timestamp"]
    examples["status-offline.json"] = will
    return examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    with LocalBroker() as broker:
        messages = record(broker)
    args.output.mkdir(parents=True, exist_ok=True)
    for name, payload in sorted(pick(messages).items()):
        (args.output / name).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        print(args.output / name)


if __name__ == "__main__":
    main()
