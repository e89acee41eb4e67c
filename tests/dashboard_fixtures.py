"""A recorded message log made by the real thing: the demo pipeline publishing to a real
mosquitto, read back by `TopicReader` exactly as `sensekit watch --record` reads it."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sensekit.broker import LocalBroker
from sensekit.dashboards.messages import BrokerAddress, Message, TopicReader, write_message
from sensekit.demo import run_demo


def record_demo(
    broker: LocalBroker, log_path: Path, clock: Callable[[], float] = time.time
) -> list[Message]:
    """Run `sensekit demo` against `broker` while recording every message under `sensekit/`
    into `log_path`; returns the messages. `clock` sets where the demo's windows fall in time
    (the demo starts its media at the window boundary at or before `clock()`)."""
    received: list[Message] = []
    lock = threading.Lock()
    with log_path.open("w", encoding="utf-8") as out:

        def keep(message: Message) -> None:
            with lock:
                received.append(message)
                write_message(out, message)

        reader = TopicReader(broker_address(broker), keep)
        reader.start()
        try:
            code = run_demo(broker.url, out=io.StringIO(), clock=clock)
            assert code == 0, f"the demo failed with exit code {code}"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with lock:
                    if any(
                        m.topic.endswith("/status") and (m.payload or {}).get("state") == "stopped"
                        for m in received
                    ):
                        break
                time.sleep(0.05)
        finally:
            reader.stop()
    return received


def broker_address(broker: LocalBroker) -> BrokerAddress:
    return BrokerAddress.from_url(broker.url)


def newest_windows(messages: list[Message]) -> dict[str, dict]:
    """Each zone's newest window (by start) in a stream: what a dashboard should show last."""
    newest: dict[str, dict] = {}
    for message in messages:
        payload = message.payload
        if message.topic.endswith("/window") and payload is not None:
            zone = payload["zone"]
            if zone not in newest or payload["window_start"] > newest[zone]["window_start"]:
                newest[zone] = payload
    return newest
