"""`sensekit selftest` as an installer runs it: a real process, the real models and media."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from sensekit.selftest import SelftestReport, VisionWindow, check_vision, check_voice
from tests.conftest import ROOT


def run_selftest(tmp_path: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "PYTHONPATH": str(pythonpath or ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "sensekit", "selftest", "--json"],
        capture_output=True,
        text=True,
        cwd=home,
        env=env,
        timeout=600,
    )


def test_selftest_passes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    result = run_selftest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True
    names = {check["name"] for check in report["checks"]}
    for model in (ROOT / "models").rglob("*.tflite"):
        assert f"model {model.relative_to(ROOT / 'models')}" in names
    assert {"face detection", "people per zone", "expression", "speech", "release gate"} <= names
    assert all(check["passed"] for check in report["checks"])
    assert report["machine"]["interpreter"].startswith("ai-edge-litert ")
    # Its scratch state directory is gone, and nothing was written anywhere else.
    assert list((tmp_path / "home").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_selftest_fails_on_a_corrupt_model(tmp_path: Path) -> None:
    """An installed copy whose expression model is damaged: exit 1, and the report says which
    model and why."""
    install = tmp_path / "install"
    shutil.copytree(ROOT / "sensekit", install / "sensekit")
    shutil.copytree(ROOT / "models", install / "models")
    shutil.copytree(ROOT / "configs", install / "configs")
    shutil.copytree(ROOT / "media" / "demo", install / "media" / "demo")
    model = install / "models" / "fer_mini_xception_int8.tflite"
    model.write_bytes(b"TFL3" + bytes(range(256)) * 4)
    result = run_selftest(tmp_path, pythonpath=install)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    failed = {c["name"]: c["detail"] for c in report["checks"] if not c["passed"]}
    assert "cannot load model" in failed["model fer_mini_xception_int8.tflite"]
    assert "model face_detection_full_range_sparse.tflite" not in failed


def test_the_vision_checks_fail_on_poor_results() -> None:
    report = SelftestReport()
    weak = VisionWindow(frames=200, faces_visible=500, faces_found=400, false_positives=30)
    weak.frames_with_faces = 200
    check_vision(report, weak, {"outside": 5, "inside": 2})
    failed = {c.name for c in report.checks if not c.passed}
    assert failed == {"face detection", "false detections", "people per zone", "expression"}


def test_the_speech_check_fails_outside_the_ground_truth_bounds() -> None:
    from sensekit.types import VoiceTally

    bounds = {"min_windows": 2, "max_windows": 6, "speech_s": 4.37}
    for heard, passes in ((0, False), (2, True), (6, True), (9, False)):
        counts = np.zeros((3, 7), np.int64)
        counts[1, 0] = heard
        tally = VoiceTally("inside", ("counter",), 0.0, 20.0, True, 20.0, counts)
        report = SelftestReport()
        check_voice(report, [tally], bounds, 20.0)
        assert report.checks[0].passed is passes
