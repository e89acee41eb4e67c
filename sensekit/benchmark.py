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
from sensekit.vision.pipeline import VisionPipeline
from sensekit.zones import ZoneMap

RECALL_IOU = 0.4


@dataclass(frozen=True, slots=True)
class DemoMedia:
    frames: list[np.ndarray]
    truth: list[list[dict[str, Any]]]
    fps: float
    decode_ms: float


def load_demo_media() -> DemoMedia:
    """Decode the whole demo video once (timing the decode) and read its ground truth."""
    video = bundled("media/demo/entrance.mp4")
    truth_path = bundled("media/demo/entrance.json")
    if not video.is_file() or not truth_path.is_file():
        raise SourceError(f"demo media missing: {video} / {truth_path}")
    truth = json.loads(truth_path.read_text())
    capture = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    started = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    decode_ms = (time.perf_counter() - started) * 1000.0 / max(len(frames), 1)
    capture.release()
    return DemoMedia(frames, truth["frames_gt"], float(truth["fps"]), decode_ms)


def _median_ms(function: Callable[[], object], repeats: int) -> float:
    for _ in range(min(10, repeats)):
        function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000.0


def recall(detector: FaceDetector, media: DemoMedia) -> tuple[float, float, int]:
    """Recall over fully visible faces, overall and for face boxes under 100 px tall."""
    found = total = small_found = small_total = 0
    height, width = media.frames[0].shape[:2]
    for frame, faces in zip(media.frames, media.truth, strict=False):
        visible = [f for f in faces if f["full"]]
        if not visible:
            continue
        detections = detector.detect(frame)
        truth_boxes = np.array([f["box"] for f in visible], np.float32) / [
            width,
            height,
            width,
            height,
        ]
        hits = np.zeros(len(visible), bool)
        if detections:
            boxes = np.array(
                [(d.box.xmin, d.box.ymin, d.box.xmax, d.box.ymax) for d in detections], np.float32
            )
            hits = (iou_matrix(truth_boxes.astype(np.float32), boxes) >= RECALL_IOU).any(axis=1)
        small = (truth_boxes[:, 3] - truth_boxes[:, 1]) * height < 100
        found += int(hits.sum())
        total += len(visible)
        small_found += int(hits[small].sum())
        small_total += int(small.sum())
    return found / max(total, 1), small_found / max(small_total, 1), total


def frames_with(media: DemoMedia, count: int) -> list[int]:
    return [
        i
        for i, faces in enumerate(media.truth)
        if len(faces) == count and all(f["full"] for f in faces)
    ]


def measure_variant(
    variant: DetectorModel, media: DemoMedia, classifier: ExpressionClassifier, repeats: int
) -> dict[str, Any]:
    detector = FaceDetector(DetectorOptions(model=variant, num_threads=1))
    result: dict[str, Any] = {"variant": variant.value}
    overall, small, total = recall(detector, media)
    result.update(recall=round(overall, 4), recall_small_faces=round(small, 4), faces=total)
    bare_detector = _median_ms(detector.model.invoke, repeats)
    result["bare_detector_ms"] = round(bare_detector, 3)
    for count in (1, 4):
        indices = frames_with(media, count)
        if not indices:
            continue
        result[f"faces_{count}"] = _measure_path(
            detector, classifier, media, indices, count, repeats, bare_detector
        )
    if "faces_1" in result and "faces_4" in result:
        extra = (result["faces_4"]["full_ms"] - result["faces_1"]["full_ms"]) / 3.0
        result["marginal_face_ms"] = round(extra, 3)
    return result


def _measure_path(
    detector: FaceDetector,
    classifier: ExpressionClassifier,
    media: DemoMedia,
    indices: list[int],
    count: int,
    repeats: int,
    bare_detector_ms: float,
) -> dict[str, Any]:
    camera = CameraConfig(name="bench")
    pipeline = VisionPipeline(detector, classifier, Tracker(), ZoneMap.from_config(camera), 0)
    aggregator = WindowAggregator("bench", "bench", "bench", ["bench"], 60, 5)
    # Bare classifier time for this many faces: one call on an int8 batch already made.
    grey = cv2.cvtColor(media.frames[indices[0]], cv2.COLOR_BGR2GRAY)
    faces = detector.detect(media.frames[indices[0]])
    batch = classifier.crops(grey, faces)
    classifier.model.set_batch_size(max(len(batch), 1))
    bare_classifier = _median_ms(classifier.model.invoke, repeats) if len(batch) else 0.0
    timestamp = 0.0
    samples = []
    for step in range(repeats + 10):
        index = indices[step % len(indices)]
        frame = VideoFrame("bench", step, timestamp, media.frames[index])
        timestamp += 1.0 / media.fps
        started = time.perf_counter()
        _, observations = pipeline.process(frame)
        aggregator.add_frame(frame.timestamp, observations)
        elapsed = time.perf_counter() - started
        if step >= 10:
            samples.append(elapsed)
    full_ms = statistics.median(samples) * 1000.0 + media.decode_ms
    bare_ms = media.decode_ms + bare_detector_ms + bare_classifier
    return {
        "frames": len(indices),
        "detected_faces": len(faces),
        "full_ms": round(full_ms, 3),
        "fps": round(1000.0 / full_ms, 1),
        "decode_ms": round(media.decode_ms, 3),
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
    media = load_demo_media()
    classifier = ExpressionClassifier()
    batch = batching(classifier, frames)
    results: dict[str, Any] = {"decode_ms": round(media.decode_ms, 3), **batch, "variants": []}
    for variant in (DetectorModel.SHORT_RANGE, DetectorModel.FULL_RANGE):
        measured = measure_variant(variant, media, classifier, frames)
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
