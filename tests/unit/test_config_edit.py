"""Calibration writes into the installer's config: only the entries it sets may change."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from sensekit.calibration.config_edit import edit_config_text, update_config_file
from sensekit.config import load_config, parse_config
from sensekit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
# the site survey of 2026-11-02
site: shop   # the shop's code
cameras:
  - name: door
    source: 0
    detector: {model: full_range}
    zones:            # drawn by Ana
      - name: outside
        polygon: [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0]]
expression:
  min_face_px: 40     # distant faces
"""


def _unchanged_lines(before: str, after: str) -> set[str]:
    return set(before.splitlines()) & set(after.splitlines())


def test_replacing_a_scalar_keeps_every_other_byte() -> None:
    after = edit_config_text(BASE, {("expression", "min_face_px"): 32})
    assert after == BASE.replace("min_face_px: 40 ", "min_face_px: 32 ")


def test_replacing_a_block_list_keeps_its_key_line_comment_and_indentation() -> None:
    zones = [{"name": "inside", "polygon": [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0)]}]
    after = edit_config_text(BASE, {("cameras", 0, "zones"): zones})
    assert "    zones:            # drawn by Ana\n      - name: inside\n" in after
    assert "        polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0]]\n" in after
    assert "outside" not in after
    assert after.startswith("# the site survey of 2026-11-02\nsite: shop   # the shop's code\n")
    config = parse_config(after)
    assert [z.name for z in config.cameras[0].zones] == ["inside"]


def test_missing_keys_are_added_at_the_end_of_their_mapping() -> None:
    after = edit_config_text(BASE, {("voice", "vad", "snr_db"): 14.5})
    assert after.startswith(BASE.rstrip("\n"))
    assert parse_config(after).voice.vad.snr_db == 14.5


def test_flow_mappings_and_empty_values_are_rewritten_as_blocks() -> None:
    after = edit_config_text(
        BASE,
        {
            ("cameras", 0, "detector", "score_threshold"): 0.65,
            ("cameras", 0, "masks"): [{"name": "till", "polygon": [[0, 0], [1, 0], [1, 1]]}],
        },
    )
    data = yaml.safe_load(after)
    assert data["cameras"][0]["detector"] == {"model": "full_range", "score_threshold": 0.65}
    assert data["cameras"][0]["masks"][0]["name"] == "till"
    assert "    zones:            # drawn by Ana" in after


def test_an_empty_mapping_value_is_filled_in() -> None:
    text = BASE + "stats:\n"
    after = edit_config_text(text, {("stats", "interval_s"): 60.0})
    assert after == BASE + "stats:\n  interval_s: 60.0\n"


def test_a_change_that_makes_the_config_invalid_is_refused_with_file_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(BASE)
    with pytest.raises(ConfigError) as caught:
        update_config_file(path, {("expression", "min_face_px"): -3})
    assert any(p.startswith(f"{path}:") and "min_face_px" in p for p in caught.value.problems)
    assert path.read_text() == BASE


def test_the_file_is_replaced_atomically_with_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(BASE)
    path.chmod(0o640)
    update_config_file(path, {("expression", "min_face_px"): 24})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["site.yaml"]
    assert load_config(path).expression.min_face_px == 24


@pytest.mark.parametrize("name", ["entrance.yaml", "kiosk.yaml", "demo.yaml"])
def test_the_shipped_examples_keep_all_their_comments(name: str) -> None:
    text = (ROOT / "configs" / name).read_text()
    after = edit_config_text(text, {("aggregation", "k_threshold"): 7})
    comments = [line for line in text.splitlines() if "#" in line and "k_threshold" not in line]
    assert all(line in after for line in comments)
    assert yaml.safe_load(after)["aggregation"]["k_threshold"] == 7
