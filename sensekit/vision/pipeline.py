"""One camera's per-frame path: blank the masked areas, detect, gate, classify the faces that
pass in one call, track, assign zones.

Gated faces (too small, doubtful, turned: `sensekit.vision.gate`) are tracked and counted like
the others but get no probabilities; the window payload counts them as `unclassified`.

Returns only observations (track, zone, probabilities): the frame and the crops end here.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from sensekit.aggregate import Observation
from sensekit.privacy.masks import ExclusionMask
from sensekit.tracker import Tracker
from sensekit.types import ClassifiedFace, ExpressionScores, FrameResult, VideoFrame
from sensekit.vision.detector import FaceDetector
from sensekit.vision.expression import ExpressionClassifier
from sensekit.vision.gate import FaceGate, GateReason
from sensekit.zones import ZoneMap


@dataclass(slots=True)
class StageTimes:
    """Moving averages (ms) of the two model stages, for the health topic and the benchmark."""

    detector_ms: float = 0.0
    expression_ms: float = 0.0
    frames: int = 0

    def add(self, detector_ms: float, expression_ms: float | None) -> None:
        alpha = 0.05 if self.frames > 20 else 1.0 / (self.frames + 1)
        self.detector_ms += alpha * (detector_ms - self.detector_ms)
        if expression_ms is not None:
            self.expression_ms += alpha * (expression_ms - self.expression_ms)
        self.frames += 1


class VisionPipeline:
    def __init__(
        self,
        detector: FaceDetector,
        classifier: ExpressionClassifier,
        tracker: Tracker,
        zones: ZoneMap,
        gate: FaceGate,
        mask: ExclusionMask | None = None,
    ) -> None:
        self.detector = detector
        self.mask = mask or ExclusionMask([])
        self.classifier = classifier
        self.tracker = tracker
        self.zones = zones
        self.gate = gate
        self.times = StageTimes()
        # Face-frames per gate reason since start, for the health/stats message. Per camera
        # only, never per zone: a per-zone count of faces would publish small groups.
        self.gate_counts: Counter[GateReason] = Counter()

    def process(self, frame: VideoFrame) -> tuple[FrameResult, list[Observation]]:
        t0 = time.perf_counter()
        image = self.mask.apply(frame.image)  # masked areas are black before any model runs
        faces = self.detector.detect(image)
        if self.mask and faces:
            anchors = np.array([self.zones.anchor_point(face.box) for face in faces])
            faces = [
                f for f, masked in zip(faces, self.mask.covers(anchors), strict=True) if not masked
            ]
        t1 = time.perf_counter()
        reasons = self.gate.reasons(faces, frame.width, frame.height)
        self.gate_counts.update(reasons)
        passing = [i for i, reason in enumerate(reasons) if reason is GateReason.CLASSIFIED]
        scores: list[ExpressionScores | None] = [None] * len(faces)
        expression_ms = None
        if passing:
            batch = self.classifier.crops(image, [faces[i] for i in passing])
            probabilities = self.classifier.classify_batch(batch)
            for i, p in zip(passing, probabilities, strict=True):
                scores[i] = ExpressionScores(p)
            expression_ms = (time.perf_counter() - t1) * 1000.0
        self.times.add((t1 - t0) * 1000.0, expression_ms)
        assignments = self.tracker.update(frame.timestamp, [face.box for face in faces])
        zone_names = self.zones.assign([face.box for face in faces])
        observations = [
            Observation(
                track_id=assignment.track_id,
                confirmed=assignment.confirmed,
                zone=zone,
                probabilities=None if score is None else score.probabilities,
            )
            for assignment, zone, score in zip(assignments, zone_names, scores, strict=True)
        ]
        result = FrameResult(
            camera=frame.camera,
            timestamp=frame.timestamp,
            faces=tuple(
                ClassifiedFace(face, score) for face, score in zip(faces, scores, strict=True)
            ),
        )
        return result, observations
