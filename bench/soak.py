"""Soak test: `sensekit run` on an endlessly looped, accelerated replay while the broker is
bounced every few minutes. Reports windows produced vs delivered (by id), duplicates, and the
daemon's memory, thread and file-descriptor counts over time. Asserts nothing; prints numbers.

.venv/bin/python bench/soak.py [--minutes 30] [--bounce-every 180] [--down 20] [--json FILE]

The daemon replays the bundled entrance video flat out (`replay: fast`, `at_end: loop`), with
5 s windows in two zones, so one wall-clock minute holds many media minutes of windows. The
broker is a persistent mosquitto, and the "dashboard" subscriber keeps a durable session, so a
window missing at the end is missing because of sensekit, not because of the test rig.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sensekit.broker import LocalBroker  # noqa: E402
from tests.integration.daemon_process import DaemonProcess  # noqa: E402
from tests.mqtt_client import Subscriber  # noqa: E402

VIDEO = ROOT / "media" / "demo" / "entrance.mp4"


def process_sample(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":")[1].strip() for line in status if ":" in line}
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024.0,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def write_config(directory: Path, broker: LocalBroker) -> Path:
    config = directory / "soak.yaml"
    config.write_text(
        f"""site: soak
device: bench
state_dir: {directory / "state"}
mqtt:
  url: {broker.url}
  keepalive_s: 10
cameras:
  - name: door
    source: {str(VIDEO)!r}
    replay: fast
    at_end: loop
    detector:
      model: full_range
    zones:
      - name: outside
        polygon: [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
      - name: inside
        polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
aggregation:
  window_s: 5
stats:
  interval_s: 10
logging:
  level: INFO
"""
    )
    return config


def soak(minutes: float, bounce_every_s: float, down_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sensekit-soak-") as tmp:
        directory = Path(tmp)
        broker = LocalBroker(persistent=True).start()
        dashboard = Subscriber(broker.host, broker.port, session="soak-dashboard")
        daemon = DaemonProcess(write_config(directory, broker))
        started = time.monotonic()
        samples: list[dict[str, float]] = []
        bounces = 0
        next_bounce = started + bounce_every_s
        warm_up_s = min(120.0, minutes * 60 / 4)
        try:
            daemon.wait_for_line("window ", timeout=120)
            while time.monotonic() - started < minutes * 60:
                time.sleep(5.0)
                sample = process_sample(daemon.process.pid)
                sample["t_s"] = round(time.monotonic() - started, 1)
                samples.append(sample)
                if time.monotonic() >= next_bounce:
                    broker.stop()
                    time.sleep(down_s)
                    broker.start()
                    bounces += 1
                    next_bounce = time.monotonic() + bounce_every_s
                    print(
                        f"{sample['t_s']:7.0f} s: broker bounced ({bounces}), "
                        f"RSS {sample['rss_mb']:.1f} MB, threads {sample['threads']}, "
                        f"fds {sample['fds']}, windows {len(daemon.window_ids())}",
                        flush=True,
                    )
            code = daemon.stop(timeout=120)
            dashboard.wait_for(
                lambda m: m.topic.endswith("/status") and m.payload.get("state") == "stopped",
                timeout=120,
            )
        finally:
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGKILL)
            dashboard.close()
            broker.remove()
        produced = daemon.window_ids()
        received = [w["window_id"] for w in dashboard.windows()]
        unique = dashboard.unique_windows()
        seqs = [w["seq"] for w in unique]
        after_warm_up = [s for s in samples if s["t_s"] >= warm_up_s]
        first, last = after_warm_up[0], after_warm_up[-1]
        return {
            "minutes": minutes,
            "bounces": bounces,
            "exit_code": code,
            "windows_produced": len(produced),
            "windows_delivered_unique": len(unique),
            "produced_equals_delivered": set(produced) == {w["window_id"] for w in unique},
            "in_order": seqs == sorted(seqs),
            "duplicates": len(received) - len(unique),
            "warm_up_s": warm_up_s,
            "rss_mb_after_warm_up": round(first["rss_mb"], 1),
            "rss_mb_end": round(last["rss_mb"], 1),
            "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
            "rss_max_mb": round(max(s["rss_mb"] for s in samples), 1),
            "threads_after_warm_up": first["threads"],
            "threads_end": last["threads"],
            "threads_max": max(s["threads"] for s in samples),
            "fds_after_warm_up": first["fds"],
            "fds_end": last["fds"],
            "fds_max": max(s["fds"] for s in samples),
            "samples": samples,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--bounce-every", type=float, default=180.0, help="seconds")
    parser.add_argument("--down", type=float, default=20.0, help="seconds the broker is away")
    parser.add_argument("--json", help="write the results (with all samples) here")
    args = parser.parse_args()
    result = soak(args.minutes, args.bounce_every, args.down)
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
