"""The published contract (docs/contract/) says what the daemon really does.

- The newest schema of each kind in docs/contract/schemas/ is the one the daemon's own tests
  validate every message against (sensekit/schemas/), and the payload builders name it.
- Every version ever published is kept, is a valid JSON Schema, and is filed under its version.
- Every example validates against its schema (Home Assistant's record against Home Assistant's
  documented schema), and an example window's score is the score of its own counts.
- The contract document and the README name the current versions, so neither goes stale.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from sensekit.privacy.manifest import PRIVACY_SCHEMA
from sensekit.publish.payloads import STATS_SCHEMA, STATUS_SCHEMA, WINDOW_SCHEMA
from sensekit.score import net_emotion_score
from tests.homeassistant_schema import DEVICE_DISCOVERY

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "contract"
KINDS = ("window", "stats", "status", "privacy")
CURRENT = {
    "window": WINDOW_SCHEMA,
    "stats": STATS_SCHEMA,
    "status": STATUS_SCHEMA,
    "privacy": PRIVACY_SCHEMA,
}


def versions(kind: str) -> dict[int, Path]:
    folder = CONTRACT / "schemas" / kind
    return {int(path.name.split(".")[0]): path for path in folder.glob("*.schema.json")}


def package_schema(kind: str) -> dict[str, Any]:
    text = resources.files("sensekit.schemas").joinpath(f"{kind}.schema.json").read_text()
    return json.loads(text)


@pytest.mark.parametrize("kind", KINDS)
def test_the_newest_published_schema_is_the_one_the_daemon_uses(kind: str) -> None:
    published = versions(kind)
    newest = max(published)
    assert json.loads(published[newest].read_text()) == package_schema(kind)
    assert CURRENT[kind] == f"sensekit.{kind}/{newest}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_version_is_kept_valid_and_filed_under_its_number(kind: str) -> None:
    published = versions(kind)
    assert sorted(published) == list(range(1, max(published) + 1)), "a version is missing"
    for number, path in published.items():
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith(f"/{kind}/{number}")
        assert schema["properties"]["schema"]["const"] == f"sensekit.{kind}/{number}"
        assert schema["additionalProperties"] is False


def examples() -> list[Path]:
    return sorted((CONTRACT / "examples").glob("*.json"))


def test_there_is_an_example_of_every_kind() -> None:
    names = {path.name for path in examples()}
    for kind in KINDS:
        assert any(name.startswith(kind) for name in names), kind
    assert "homeassistant-discovery.json" in names


@pytest.mark.parametrize("path", examples(), ids=lambda path: path.name)
def test_each_example_validates_against_its_schema(path: Path) -> None:
    payload = json.loads(path.read_text())
    if path.name.startswith("homeassistant"):
        jsonschema.validate(payload, DEVICE_DISCOVERY)
        return
    kind, number = re.fullmatch(r"sensekit\.(\w+)/(\d+)", payload["schema"]).groups()  # type: ignore[union-attr]
    assert payload["schema"] == CURRENT[kind], "examples show the current version"
    schema = json.loads(versions(kind)[int(number)].read_text())
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        payload
    )
    if kind == "window" and payload["faces"]:
        faces = payload["faces"]
        assert faces["net_emotion_score"] == net_emotion_score(faces["expressions"])


@pytest.mark.parametrize("document", ["docs/contract/README.md", "README.md"])
def test_the_documents_name_the_current_versions(document: str) -> None:
    text = (ROOT / document).read_text()
    for current in CURRENT.values():
        assert f"`{current}`" in text, f"{document} does not name {current}"
    for kind, current in CURRENT.items():
        newest = int(current.rsplit("/", 1)[1])
        for old in range(1, newest):
            # Old versions may be named in a change log, never as what is published now.
            for line in text.splitlines():
                if f"sensekit.{kind}/{old}`" in line and "current" in line.lower():
                    pytest.fail(f"{document}: {line.strip()}")
