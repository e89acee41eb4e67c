"""What privacy costs per frame and per window, as ratios to the work it sits beside.

- masks: blanking the masks of configs/entrance.yaml (a cash desk) in a decoded frame of the
  demo video, against running the full-range face detector on the same frame;
- release: the release gate on a window of 20 visits, against the same frame's detection.

.venv/bin/python bench/privacy.py [--frames 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

from sensekit.config import load_config
from sensekit.privacy.masks import ExclusionMask
from sensekit.privacy.release import ReleaseGate, ReleasePolicy
from sensekit.types import DetectorModel, FaceTally, Visit, ZoneTally
from sensekit.vision.detector import DetectorOptions, FaceDetector

ROOT = Path(__file__).resolve().parents[1]


def per_call_ms(function: Callable[[Any], object], items: Sequence[Any]) -> float:
    for item in items[:10]:
        function(item)  # warm-up: first calls pay for allocation and caches
    start = time.perf_counter()
    for item in items:
        function(item)
    return (time.perf_counter() - start) / len(items) * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    capture = cv2.VideoCapture(str(ROOT / "media" / "demo" / "entrance.mp4"))
    frames = []
    while len(frames) < args.frames:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    camera = load_config(ROOT / "configs" / "entrance.yaml").cameras[0]
    mask = ExclusionMask.from_config(camera)
    detector = FaceDetector(DetectorOptions(model=DetectorModel.FULL_RANGE))
    gate = ReleaseGate(ReleasePolicy(k_threshold=5, k_windows=10))
    rng = np.random.default_rng(0)
    tallies = []
    for i in range(len(frames)):
        start = 60.0 * i
        visits = tuple(Visit(int(rng.integers(1000)), rng.dirichlet(np.ones(7))) for _ in range(20))
        faces = FaceTally("door", "cam", start, start + 60, True, 600, visits)
        tallies.append(ZoneTally("s", "d", "door", start, start + 60, True, True, faces, None))
    detect_ms = per_call_ms(detector.detect, frames)
    mask_ms = per_call_ms(mask.apply, frames)
    release_ms = per_call_ms(gate.release, tallies)
    print(f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}")
    print(f"detector (full range)   {detect_ms:7.3f} ms/frame")
    print(
        f"masks (entrance.yaml)   {mask_ms:7.3f} ms/frame   = {mask_ms / detect_ms:.3f} x detector"
    )
    print(
        f"release gate, 20 visits {release_ms:7.3f} ms/window = {release_ms / detect_ms:.3f} x one frame's detection"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
