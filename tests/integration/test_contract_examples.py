"""The contract's examples can be made again from a real run, and those validate too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema

from tests.homeassistant_schema import DEVICE_DISCOVERY
from tests.mqtt_client import SCHEMAS

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_generator_writes_every_committed_example(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.contract.examples", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    made = {path.name for path in tmp_path.glob("*.json")}
    committed = {path.name for path in (ROOT / "docs" / "contract" / "examples").glob("*.json")}
    assert made == committed
    for path in tmp_path.glob("*.json"):
        payload = json.loads(path.read_text())
        if path.name.startswith("homeassistant"):
            jsonschema.validate(payload, DEVICE_DISCOVERY)
        else:
            kind = payload["schema"].split(".")[1].split("/")[0]
            jsonschema.validate(payload, SCHEMAS[kind])
