"""Fit a camera's face gating to a short recording of its site, with no labels.

Measure: the real detector runs over the recording at a low threshold (SCORE_FLOOR), with the
tracker, the zones and the classifier, and every detection leaves one row: zone, face size,
detector score, rough yaw and pitch, track id, and the classifier's probabilities (as uint8).
Nothing else is kept: no frame, crop or box is stored, and the rows live in memory only.

Fit, in this order:

1. `detector.score_threshold` (what counts as a face, i.e. a person). Detections in long
   tracks (>= 2 x tracker.min_frames frames) are taken as real faces, detections whose track
   never reached tracker.min_frames as likely false positives. The threshold on a 0.05 grid
   that minimises (real detections lost + false ones kept) wins, ties going to the configured
   value. With fewer than MIN_SAMPLES real detections, or no unconfirmed ones at all (nothing
   to filter), the configured threshold stays.
2. `gate.min_face_px`, `gate.max_yaw_deg`, `gate.max_pitch_deg`, `gate.min_score` (what gets
   classified). The quality signal is consistency: a person's expression rarely changes from
   one frame to the next, so a frame whose top class disagrees with the rest of its track (the
   leave-one-out mean of the track's probabilities) is mostly classifier noise. Agreement is
   measured on the reference faces (>= REFERENCE_PX, |yaw| and |pitch| <= REFERENCE_DEG), then
   in bins walking away from them (smaller, more turned, less sure). A limit stops at the
   first bin whose agreement is more than MARGIN below the reference. A bin with fewer than
   MIN_SAMPLES face-frames cannot be judged (an empty one is skipped): the walk stops there and the limit becomes the
   more permissive of what the data supported so far and the default (with a note).

The rule is only as good as the recording: it needs people who stay in view for a few seconds
at the sizes and angles the site really has. Expressions that truly change within a track lower
agreement everywhere alike, which the reference absorbs.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from sensekit.privacy.masks import ExclusionMask
from sensekit.tracker import Tracker
from sensekit.types import DetectorModel, VideoFrame
from sensekit.vision.detector import FaceDetector
from sensekit.vision.expression import ExpressionClassifier
from sensekit.vision.gate import REASONS, FaceGate, GateReason
from sensekit.vision.pose import head_pose
from sensekit.zones import ZoneMap

SCORE_FLOOR = 0.3
"""The detector threshold while measuring: low enough to see the doubtful detections."""
MIN_SAMPLES = 30
"""Face-frames a bin needs before its agreement is trusted."""
MIN_TRACK_FRAMES = 5
"""Classified frames a track needs for its leave-one-out mean to mean anything."""
REFERENCE_PX = 64.0
REFERENCE_DEG = 15.0
NEAR_FRONTAL_DEG = 20.0
"""Pose bound for the faces the size and score curves are measured on."""
MARGIN = 0.10
"""How far below the reference agreement a bin must fall to count as a clear drop."""

SIZE_EDGES = (64.0, 48.0, 40.0, 32.0, 28.0, 24.0, 20.0, 16.0, 12.0, 0.0)
ANGLE_EDGES = (REFERENCE_DEG, 25.0, 35.0, 45.0, 60.0, 90.0)
SCORE_EDGES = (0.7, 0.6, 0.5, 0.4, 0.3)
"""Faces the detector is at least 0.7 sure of are never gated by score."""
THRESHOLD_GRID = tuple(round(0.30 + 0.05 * i, 2) for i in range(13))  # 0.30 .. 0.90


@dataclass(frozen=True, slots=True)
class Measurements:
    """One row per detection (face-frame) of the recording; arrays of equal length."""

    zone: npt.NDArray[np.str_]  # "" outside every zone
    size_px: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    yaw: npt.NDArray[np.float32]
    pitch: npt.NDArray[np.float32]
    track: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.uint8]  # N x 7, probability * 255
    frames: int
    seconds: float

    def __len__(self) -> int:
        return len(self.size_px)

    @property
    def track_frames(self) -> npt.NDArray[np.int64]:
        """For each row, how many detections its track has over the whole recording."""
        if len(self.track) == 0:
            return np.zeros(0, dtype=np.int64)
        _, inverse, counts = np.unique(self.track, return_inverse=True, return_counts=True)
        return np.asarray(counts[inverse], dtype=np.int64)


def measure(
    frames: Iterable[VideoFrame],
    detector: FaceDetector,
    classifier: ExpressionClassifier,
    tracker: Tracker,
    zones: ZoneMap,
    mask: ExclusionMask,
    model: DetectorModel,
    total: float | None = None,
    progress: Callable[[VideoFrame], float] | None = None,
) -> Measurements:
    """Run the vision path over `frames` and keep the per-detection measurements only."""
    rows: dict[str, list[Any]] = {k: [] for k in ("zone", "size", "score", "yaw", "pitch", "track")}
    probabilities: list[npt.NDArray[np.uint8]] = []
    count, first, last = 0, None, None
    with tqdm(total=total, unit="frame", file=sys.stderr, disable=None) as bar:
        for frame in frames:
            count += 1
            first = frame.timestamp if first is None else first
            last = frame.timestamp
            bar.update(1 if progress is None else progress(frame))
            image = mask.apply(frame.image)
            faces = detector.detect(image)
            if mask and faces:
                anchors = np.array([zones.anchor_point(face.box) for face in faces])
                faces = [
                    f for f, hidden in zip(faces, mask.covers(anchors), strict=True) if not hidden
                ]
            assignments = tracker.update(frame.timestamp, [face.box for face in faces])
            if not faces:
                continue
            width, height = frame.width, frame.height
            pose = head_pose(np.stack([f.keypoints for f in faces]), width, height, model)
            probs = classifier.classify_batch(classifier.crops(image, faces))
            probabilities.append(np.round(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8))
            rows["zone"] += [z or "" for z in zones.assign([face.box for face in faces])]
            rows["size"] += [min(f.box.width * width, f.box.height * height) for f in faces]
            rows["score"] += [f.score for f in faces]
            rows["yaw"] += list(pose.yaw)
            rows["pitch"] += list(pose.pitch)
            rows["track"] += [a.track_id for a in assignments]
    return Measurements(
        zone=np.asarray(rows["zone"], dtype=np.str_),
        size_px=np.asarray(rows["size"], dtype=np.float32),
        score=np.asarray(rows["score"], dtype=np.float32),
        yaw=np.asarray(rows["yaw"], dtype=np.float32),
        pitch=np.asarray(rows["pitch"], dtype=np.float32),
        track=np.asarray(rows["track"], dtype=np.int64),
        probabilities=(
            np.concatenate(probabilities) if probabilities else np.zeros((0, 7), dtype=np.uint8)
        ),
        frames=count,
        seconds=0.0 if first is None or last is None else float(last - first),
    )


def agreement(m: Measurements) -> npt.NDArray[np.float64]:
    """Per row: 1 when its top class equals that of the rest of its track (leave-one-out
    mean), 0 when not, NaN when the track is shorter than MIN_TRACK_FRAMES."""
    result = np.full(len(m), np.nan)
    if len(m) == 0:
        return result
    probs = m.probabilities.astype(np.float64)
    ids, inverse, counts = np.unique(m.track, return_inverse=True, return_counts=True)
    sums = np.zeros((len(ids), probs.shape[1]))
    np.add.at(sums, inverse, probs)
    rest = sums[inverse] - probs
    usable = counts[inverse] >= MIN_TRACK_FRAMES
    same = np.argmax(probs, axis=1) == np.argmax(rest, axis=1)
    result[usable] = same[usable].astype(np.float64)
    return result


@dataclass(frozen=True, slots=True)
class Bin:
    lo: float
    hi: float
    samples: int
    agreement: float | None
    verdict: str  # ok | drop | too_few | empty | not_reached

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.lo,
            "to": self.hi,
            "samples": self.samples,
            "agreement": None if self.agreement is None else round(self.agreement, 3),
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class LimitFit:
    """A fitted limit, the curve it was read from, and why it is what it is."""

    value: float
    bins: tuple[Bin, ...]
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "note": self.note, "bins": [b.as_dict() for b in self.bins]}


def walk(
    values: npt.NDArray[np.float64],
    agree: npt.NDArray[np.float64],
    edges: Sequence[float],
    reference: float | None,
    default: float,
    name: str,
    permissive: Callable[[float, float], float],
) -> LimitFit:
    """Walk bins between consecutive `edges` (ordered from the reference outward).

    The limit starts at edges[0] and moves to the far edge of each bin whose agreement holds
    (within MARGIN of `reference`); it stops at the first clear drop, or, at a bin with too few
    samples, becomes `permissive(limit so far, default)`.
    """
    bins: list[Bin] = []
    limit = edges[0]
    note = ""
    stopped = False
    if reference is None:
        return LimitFit(default, (), f"{name}: too few large frontal faces; default {default:g}")
    for near, far in itertools.pairwise(edges):
        lo, hi = min(near, far), max(near, far)
        inside = (values >= lo) & (values < hi) if far < near else (values > lo) & (values <= hi)
        judged = inside & ~np.isnan(agree)
        samples = int(judged.sum())
        share = float(agree[judged].mean()) if samples else None
        if stopped:
            bins.append(Bin(lo, hi, samples, share, "not_reached"))
            continue
        if samples == 0 and not inside.any():
            # No face of this size/angle at all: nothing to judge and nothing to gate here.
            bins.append(Bin(lo, hi, 0, None, "empty"))
            continue
        if samples < MIN_SAMPLES or share is None:
            bins.append(Bin(lo, hi, samples, share, "too_few"))
            limit = permissive(limit, default)
            note = f"{name}: only {samples} face-frames between {lo:g} and {hi:g}; limit {limit:g}"
            stopped = True
        elif share < reference - MARGIN:
            bins.append(Bin(lo, hi, samples, share, "drop"))
            note = (
                f"{name}: agreement {share:.0%} between {lo:g} and {hi:g} against "
                f"{reference:.0%} for large frontal faces; limit {limit:g}"
            )
            stopped = True
        else:
            bins.append(Bin(lo, hi, samples, share, "ok"))
            limit = far
    if not stopped:
        note = f"{name}: no drop in agreement down to {limit:g}"
    return LimitFit(float(limit), tuple(bins), note)


@dataclass(frozen=True, slots=True)
class ThresholdFit:
    value: float
    real: int
    unconfirmed: int
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "real_detections": self.real,
            "unconfirmed_detections": self.unconfirmed,
            "note": self.note,
        }


def fit_score_threshold(m: Measurements, current: float, min_frames: int) -> ThresholdFit:
    """The detector threshold separating long tracks from never-confirmed ones (see module)."""
    lengths = m.track_frames
    real = m.score[lengths >= 2 * min_frames]
    false = m.score[lengths < min_frames]
    if len(real) < MIN_SAMPLES:
        return ThresholdFit(
            current, len(real), len(false), f"only {len(real)} detections in long tracks: kept"
        )
    if len(false) == 0:
        return ThresholdFit(
            current, len(real), 0, "no unconfirmed detections to filter: threshold kept"
        )
    costs = [
        (int((real < t).sum() + (false >= t).sum()), abs(t - current), t) for t in THRESHOLD_GRID
    ]
    _, _, best = min(costs)
    lost = int((real < best).sum())
    kept = int((false >= best).sum())
    return ThresholdFit(
        best,
        len(real),
        len(false),
        f"{lost} of {len(real)} detections in long tracks lost, {kept} of {len(false)} "
        "unconfirmed ones kept",
    )


@dataclass(frozen=True, slots=True)
class GateFit:
    score_threshold: ThresholdFit
    min_face_px: LimitFit
    max_yaw_deg: LimitFit
    max_pitch_deg: LimitFit
    min_score: LimitFit
    reference_agreement: float | None
    reference_samples: int
    judged_tracks: int

    def gate(self, model: DetectorModel) -> FaceGate:
        return FaceGate(
            min_face_px=self.min_face_px.value,
            min_score=self.min_score.value,
            max_yaw_deg=self.max_yaw_deg.value,
            max_pitch_deg=self.max_pitch_deg.value,
            model=model,
        )

    @property
    def notes(self) -> list[str]:
        return [
            f"detector.score_threshold: {self.score_threshold.note}",
            self.min_face_px.note,
            self.max_yaw_deg.note,
            self.max_pitch_deg.note,
            self.min_score.note,
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "score_threshold": self.score_threshold.as_dict(),
            "min_face_px": self.min_face_px.as_dict(),
            "max_yaw_deg": self.max_yaw_deg.as_dict(),
            "max_pitch_deg": self.max_pitch_deg.as_dict(),
            "min_score": self.min_score.as_dict(),
            "reference": {
                "agreement": None
                if self.reference_agreement is None
                else round(self.reference_agreement, 3),
                "samples": self.reference_samples,
                "tracks_judged": self.judged_tracks,
            },
        }


def fit_gate(
    m: Measurements, defaults: FaceGate, current_threshold: float, min_frames: int
) -> GateFit:
    """Fit the detector threshold and the gate's limits to the measurements (see module)."""
    threshold = fit_score_threshold(m, current_threshold, min_frames)
    agree = agreement(m)
    counted = m.score >= threshold.value
    agree = np.where(counted, agree, np.nan)  # only faces the daemon would see
    size = m.size_px.astype(np.float64)
    yaw, pitch = np.abs(m.yaw.astype(np.float64)), np.abs(m.pitch.astype(np.float64))
    score = m.score.astype(np.float64)
    reference_rows = (
        (size >= REFERENCE_PX)
        & (yaw <= REFERENCE_DEG)
        & (pitch <= REFERENCE_DEG)
        & ~np.isnan(agree)
    )
    samples = int(reference_rows.sum())
    reference = float(agree[reference_rows].mean()) if samples >= MIN_SAMPLES else None
    frontal = (yaw <= NEAR_FRONTAL_DEG) & (pitch <= NEAR_FRONTAL_DEG)
    nan = np.full(len(m), np.nan)

    min_px = walk(
        size,
        np.where(frontal, agree, nan),
        SIZE_EDGES,
        reference,
        defaults.min_face_px,
        "min_face_px",
        min,
    )
    large = size >= min_px.value
    max_yaw = walk(
        yaw,
        np.where(large & (pitch <= NEAR_FRONTAL_DEG), agree, nan),
        ANGLE_EDGES,
        reference,
        defaults.max_yaw_deg,
        "max_yaw_deg",
        max,
    )
    max_pitch = walk(
        pitch,
        np.where(large & (yaw <= NEAR_FRONTAL_DEG), agree, nan),
        ANGLE_EDGES,
        reference,
        defaults.max_pitch_deg,
        "max_pitch_deg",
        max,
    )
    posed = large & (yaw <= max_yaw.value) & (pitch <= max_pitch.value)
    min_score = walk(
        score,
        np.where(posed, agree, nan),
        SCORE_EDGES,
        reference,
        defaults.min_score,
        "min_score",
        min,
    )
    if min_score.value <= threshold.value:
        min_score = LimitFit(
            0.0, min_score.bins, min_score.note + " (no gating beyond the threshold)"
        )
    judged = len(np.unique(m.track[~np.isnan(agreement(m))]))
    return GateFit(threshold, min_px, max_yaw, max_pitch, min_score, reference, samples, judged)


@dataclass(frozen=True, slots=True)
class ZoneReport:
    zone: str
    face_frames: int
    tracks: int
    median_size_px: float | None
    shares: dict[str, float] = field(default_factory=dict)  # per GateReason value

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "face_frames": self.face_frames,
            "tracks": self.tracks,
            "median_size_px": self.median_size_px,
            "share": {k: round(v, 4) for k, v in self.shares.items()},
        }


def zone_report(
    m: Measurements, zones: Sequence[str], threshold: float, gate: FaceGate
) -> list[ZoneReport]:
    """Per zone, what the daemon would do with this recording under `threshold` and `gate`."""
    counted = m.score >= threshold
    codes = gate.decide(m.size_px, m.score, m.yaw, m.pitch)
    reports = []
    for name in zones:
        rows = counted & (m.zone == name)
        n = int(rows.sum())
        shares = {
            reason.value: (float((codes[rows] == i).sum()) / n if n else 0.0)
            for i, reason in enumerate(REASONS)
        }
        reports.append(
            ZoneReport(
                zone=name,
                face_frames=n,
                tracks=len(np.unique(m.track[rows])),
                median_size_px=round(float(np.median(m.size_px[rows])), 1) if n else None,
                shares=shares,
            )
        )
    return reports


def format_table(reports: Sequence[ZoneReport]) -> str:
    """The per-zone table printed on stdout."""
    header = (
        f"{'zone':<16} {'face-frames':>11} {'tracks':>6} {'median px':>9} "
        f"{'classified':>10} {'too small':>9} {'low score':>9} {'turned':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in reports:
        size = "-" if r.median_size_px is None else f"{r.median_size_px:.0f}"

        def pct(reason: GateReason, report: ZoneReport = r) -> str:
            return f"{report.shares[reason.value]:.0%}" if report.face_frames else "-"

        lines.append(
            f"{r.zone:<16} {r.face_frames:>11} {r.tracks:>6} {size:>9} "
            f"{pct(GateReason.CLASSIFIED):>10} {pct(GateReason.TOO_SMALL):>9} "
            f"{pct(GateReason.LOW_SCORE):>9} {pct(GateReason.TURNED):>7}"
        )
    return "\n".join(lines)
