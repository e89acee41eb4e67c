"""`sensekit bench`: speed, recall and memory of the vision path, as ratios in one run.

Nothing here is asserted: the numbers go to the README with the command that gives them.
Every ratio compares two measurements taken in the same process, seconds apart, so the
machine's speed cancels out.

- recall: detected faces (IoU >= 0.4 with the known box) over fully visible faces, per variant;
- fps with 1 and with 4 faces: the full per-frame path (decode, detect, crop, classify, track,
  zones, aggregate) on frames of the demo video with that many faces in view;
- efficiency: (decode + bare detector invoke + bare classifier invoke) / full path time;
- marginal face: extra full-path time per additional face, against one bare classifier call;
- batching: one int8 call for 4 faces against 4 calls for 1;
- peak RSS of the process.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sensekit.aggregate import WindowAggregator
from sensekit.config import CameraConfig
from sensekit.demo import bundled
from sensekit.errors import SourceError
from sensekit.health import peak_rss_mb
from sensekit.tracker import Tracker
from sensekit.types import DetectorModel, VideoFrame
from sensekit.vision.detector import DetectorOptions, FaceDetector, iou_matrix
from sensekit.vision.expression import ExpressionClassifier
from sensekit.vision.gate import FaceGate
from sensekit.vision.pipeline import VisionPipeline
from sensekit.zones import ZoneMap

RECALL_IOU = 0.4


KEEP_FRAMES = 8  # frames kept in memory per face count, for the speed runs


@dataclass(slots=True)
class RecallCount:
    found: int = 0
    total: int = 0
    small_found: int = 0
    small_total: int = 0


@dataclass(frozen=True, slots=True)
class DemoScan:
    """One streamed pass over the demo video: decode time, recall, and a few sample frames."""

    decode_ms: float
    fps: float
    recall: dict[DetectorModel, RecallCount]
    samples: dict[int, list[np.ndarray]]  # face count -> frames with that many faces in view


def scan_demo_media(detectors: dict[DetectorModel, FaceDetector]) -> DemoScan:
    """Decode the demo video once, frame by frame (never the whole video in memory)."""
    video = bundled("media/demo/entrance.mp4")
    truth_path = bundled("media/demo/entrance.json")
    if not video.is_file() or not truth_path.is_file():
        raise SourceError(f"demo media missing: {video} / {truth_path}")
    truth = json.loads(truth_path.read_text())
    capture = cv2.VideoCapture(str(video))
    counts = {variant: RecallCount() for variant in detectors}
    samples: dict[int, list[np.ndarray]] = {1: [], 4: []}
    decode_s = 0.0
    decoded = 0
    for faces in truth["frames_gt"]:
        started = time.perf_counter()
        ok, frame = capture.read()
        decode_s += time.perf_counter() - started
        if not ok:
            break
        decoded += 1
        visible = [f for f in faces if f["full"]]
        if len(visible) == len(faces) and len(faces) in samples:
            kept = samples[len(faces)]
            if len(kept) < KEEP_FRAMES:
                kept.append(frame)
        if visible:
            for variant, detector in detectors.items():
                _count_recall(detector, frame, visible, counts[variant])
    capture.release()
    return DemoScan(decode_s * 1000.0 / max(decoded, 1), float(truth["fps"]), counts, samples)


def _count_recall(
    detector: FaceDetector, frame: np.ndarray, visible: list[dict[str, Any]], count: RecallCount
) -> None:
    height, width = frame.shape[:2]
    scale = np.array([width, height, width, height], np.float32)
    truth_boxes = np.array([f["box"] for f in visible], np.float32) / scale
    hits = np.zeros(len(visible), bool)
    detections = detector.detect(frame)
    if detections:
        boxes = np.array(
            [(d.box.xmin, d.box.ymin, d.box.xmax, d.box.ymax) for d in detections], np.float32
        )
        hits = (iou_matrix(truth_boxes, boxes) >= RECALL_IOU).any(axis=1)
    small = (truth_boxes[:, 3] - truth_boxes[:, 1]) * height < 100
    count.found += int(hits.sum())
    count.total += len(visible)
    count.small_found += int(hits[small].sum())
    count.small_total += int(small.sum())


def _median_ms(function: Callable[[], object], repeats: int) -> float:
    for _ in range(min(10, repeats)):
        function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000.0


def measure_variant(
    variant: DetectorModel,
    detector: FaceDetector,
    scan: DemoScan,
    classifier: ExpressionClassifier,
    repeats: int,
) -> dict[str, Any]:
    count = scan.recall[variant]
    result: dict[str, Any] = {
        "variant": variant.value,
        "recall": round(count.found / max(count.total, 1), 4),
        "recall_small_faces": round(count.small_found / max(count.small_total, 1), 4),
        "faces": count.total,
        "small_faces": count.small_total,
    }
    bare_detector = _median_ms(detector.model.invoke, repeats)
    result["bare_detector_ms"] = round(bare_detector, 3)
    for faces, frames in scan.samples.items():
        if frames:
            result[f"faces_{faces}"] = _measure_path(
                detector, classifier, frames, scan, repeats, bare_detector
            )
    if "faces_1" in result and "faces_4" in result:
        extra = (result["faces_4"]["full_ms"] - result["faces_1"]["full_ms"]) / 3.0
        result["marginal_face_ms"] = round(extra, 3)
    return result


def _measure_path(
    detector: FaceDetector,
    classifier: ExpressionClassifier,
    frames: list[np.ndarray],
    scan: DemoScan,
    repeats: int,
    bare_detector_ms: float,
) -> dict[str, Any]:
    camera = CameraConfig(name="bench")
    # Gate nothing: the benchmark times classifying every face it finds.
    gate = FaceGate(min_face_px=0.0, max_yaw_deg=90.0, max_pitch_deg=90.0)
    pipeline = VisionPipeline(detector, classifier, Tracker(), ZoneMap.from_config(camera), gate)
    aggregator = WindowAggregator("bench", "bench", "bench", ["bench"], 60, 5)
    # Bare classifier time for this many faces: one call on an int8 batch already made.
    faces = detector.detect(frames[0])
    batch = classifier.crops(frames[0], faces)
    classifier.model.set_batch_size(max(len(batch), 1))
    bare_classifier = _median_ms(classifier.model.invoke, repeats) if len(batch) else 0.0
    timestamp = 0.0
    samples = []
    for step in range(repeats + 10):
        frame = VideoFrame("bench", step, timestamp, frames[step % len(frames)])
        timestamp += 1.0 / scan.fps
        started = time.perf_counter()
        _, observations = pipeline.process(frame)
        aggregator.add_frame(frame.timestamp, observations)
        elapsed = time.perf_counter() - started
        if step >= 10:
            samples.append(elapsed)
    full_ms = statistics.median(samples) * 1000.0 + scan.decode_ms
    bare_ms = scan.decode_ms + bare_detector_ms + bare_classifier
    return {
        "frames": len(frames),
        "detected_faces": len(faces),
        "full_ms": round(full_ms, 3),
        "fps": round(1000.0 / full_ms, 1),
        "decode_ms": round(scan.decode_ms, 3),
        "bare_classifier_ms": round(bare_classifier, 3),
        "efficiency": round(bare_ms / full_ms, 3),
    }


def batching(classifier: ExpressionClassifier, repeats: int) -> dict[str, float]:
    """One call for 4 faces against 4 calls for one face, on the int8 classifier."""
    model = classifier.model
    model.set_batch_size(1)
    one = _median_ms(model.invoke, repeats)
    model.set_batch_size(4)
    four = _median_ms(model.invoke, repeats)
    model.set_batch_size(1)
    return {
        "bare_classifier_1_ms": round(one, 3),
        "bare_classifier_batch4_ms": round(four, 3),
        "batch4_vs_4_single_calls": round(four / (4 * one), 3),
    }


def run_benchmark(frames: int = 300, output: Path | None = None) -> int:
    detectors = {
        variant: FaceDetector(DetectorOptions(model=variant, num_threads=1))
        for variant in (DetectorModel.SHORT_RANGE, DetectorModel.FULL_RANGE)
    }
    classifier = ExpressionClassifier()
    scan = scan_demo_media(detectors)
    batch = batching(classifier, frames)
    results: dict[str, Any] = {"decode_ms": round(scan.decode_ms, 3), **batch, "variants": []}
    for variant, detector in detectors.items():
        measured = measure_variant(variant, detector, scan, classifier, frames)
        if "marginal_face_ms" in measured:
            measured["marginal_face_vs_bare_classifier"] = round(
                measured["marginal_face_ms"] / batch["bare_classifier_1_ms"], 2
            )
        results["variants"].append(measured)
    results["peak_rss_mb"] = peak_rss_mb()
    print_report(results, sys.stdout)
    if output is not None:
        output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def print_report(results: dict[str, Any], out: Any) -> None:
    print("sensekit bench: demo video 640x480, 1 inference thread", file=out)
    print(
        f"  decode {results['decode_ms']:.2f} ms/frame; int8 classifier bare "
        f"{results['bare_classifier_1_ms']:.3f} ms (1 face), batch of 4 = "
        f"{results['batch4_vs_4_single_calls']:.2f} x four single calls",
        file=out,
    )
    header = f"  {'detector':<12}{'recall':>8}{'<100px':>8}{'bare det':>10}"
    header += f"{'fps 1 face':>12}{'eff 1':>7}{'fps 4 faces':>13}{'eff 4':>7}{'+face':>9}"
    print(header, file=out)
    for v in results["variants"]:
        one, four = v.get("faces_1", {}), v.get("faces_4", {})
        line = f"  {v['variant']:<12}{v['recall']:>8.3f}{v['recall_small_faces']:>8.3f}"
        line += f"{v['bare_detector_ms']:>8.2f}ms"
        line += f"{one.get('fps', float('nan')):>12.1f}{one.get('efficiency', float('nan')):>7.2f}"
        line += (
            f"{four.get('fps', float('nan')):>13.1f}{four.get('efficiency', float('nan')):>7.2f}"
        )
        marginal = v.get("marginal_face_vs_bare_classifier", float("nan"))
        line += f"{marginal:>8.2f}x"
        print(line, file=out)
    print(f"  peak RSS {results['peak_rss_mb']:.0f} MB", file=out)
    print(
        "  eff = (decode + bare detector + bare classifier) / full path; "
        "+face = extra time per face / bare classifier call",
        file=out,
    )
