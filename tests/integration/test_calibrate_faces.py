"""`sensekit calibrate faces` end to end on a self-made recording: the real detector, tracker
and classifier; the per-zone report, the JSON and the config edit (comments kept)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensekit.cli import main
from sensekit.config import load_config
from tools.media.scene import scene_with_faces

CONFIG = """\
# a door camera, calibrated on site
site: test-site
cameras:
  - name: door
    source: {video}
    detector:
      model: full_range   # people are far
      score_threshold: 0.5
    zones:
      - name: left        # the street side
        polygon: [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
      - name: right
        polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
privacy:
  controller: test
  contact: test@example.org
"""


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s at 10 fps: four people with ~92 px faces, then five with ~40 px faces (the detector finds two of them), each still
    long enough to make tracks; fresh sensor noise on every frame."""
    path = tmp_path_factory.mktemp("rec") / "site.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for n_faces, head_px, seed in ((4, 150.0, 0), (5, 70.0, 2)):
        image, _ = scene_with_faces(n_faces, head_px, seed=seed)
        for _ in range(40):
            noisy = image.astype(np.float32) + rng.normal(0.0, 3.0, image.shape)
            writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    writer.release()
    return path


def test_calibrate_faces_reports_per_zone_and_writes_the_config(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(CONFIG.format(video=recording), encoding="utf-8")
    report = tmp_path / "faces.json"
    code = main(["calibrate", "faces", "--config", str(config), "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "left" in out and "right" in out and "classified" in out and "too small" in out

    document = json.loads(report.read_text())
    zones = {z["zone"]: z for z in document["zones"]}
    assert set(zones) == {"left", "right"}
    assert (
        sum(z["face_frames"] for z in zones.values()) > 170
    )  # 4 large and ~2 small faces over 40 frames each
    for zone in zones.values():
        if zone["face_frames"]:
            assert sum(zone["share"].values()) == pytest.approx(1.0, abs=1e-3)
    assert document["fit"]["reference"]["samples"] > 0

    text = config.read_text()
    assert "# a door camera, calibrated on site" in text and "# people are far" in text
    loaded = load_config(config)
    camera = loaded.cameras[0]
    settings = document["settings"]
    assert camera.gate.min_face_px == settings["cameras.0.gate.min_face_px"]
    assert camera.gate.max_yaw_deg == settings["cameras.0.gate.max_yaw_deg"]
    assert camera.detector.score_threshold == settings["cameras.0.detector.score_threshold"]
    # The small faces (36-40 px) are below the default 40 px: gated unless the data says
    # they are read as consistently as the large ones.
    shares = [z["share"]["too_small"] for z in zones.values() if z["face_frames"]]
    if camera.gate.min_face_px > 37:
        assert max(shares) > 0.05


def test_dry_run_leaves_the_config_alone(recording: Path, tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(CONFIG.format(video=recording), encoding="utf-8")
    before = config.read_bytes()
    assert main(["calibrate", "faces", "--config", str(config), "--dry-run"]) == 0
    assert config.read_bytes() == before


def test_a_missing_recording_is_a_source_error(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(CONFIG.format(video=tmp_path / "none.avi"), encoding="utf-8")
    code = main(
        ["calibrate", "faces", "--config", str(config), "--video", str(tmp_path / "none.avi")]
    )
    assert code == 4
