"""Regenerate `media/demo/`: a 60 s synthetic store-entrance video with exact ground truth.

    .venv/bin/python tools/media/make_demo_media.py            # from the repository root

Why a generated video: the demo and the integration tests need a file that the real
pipeline (OpenCV decode, BlazeFace, tracker, zones, windows) can replay, whose correct per-zone,
per-window people counts are known in advance. Every person is a pasted copy of a public-domain
NASA portrait (see tools/media/scene.py), so frame-exact face boxes come for free.

The timeline is written by hand so that no count depends on a marginal case: nobody crosses the
zone line within 2 s, or enters or leaves within 1 s, of a window boundary, and every
(appearance, window, zone) presence is either absent or at least 2 s of fully visible face. `validate()` checks all of it, and the
real detectors are run over the decoded video to prove the faces are findable: the script fails
if the full-range model finds any appearance in fewer than 95 % of its fully visible frames.

Needs Debian's ffmpeg (libx264) to encode; nothing here is needed at run time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a script: make `tools` and `sensekit` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.media.scene import (
    BGRImage,
    FaceTruth,
    Person,
    PixelBox,
    Placement,
    boxes_apart,
    compose,
    face_box,
    head_extent,
    iou,
    match,
    store_background,
)

REPO = Path(__file__).resolve().parents[2]
FPS = 10
WIDTH, HEIGHT = 640, 480
DURATION_S = 60.0
FRAMES = round(DURATION_S * FPS)
WINDOW_S = 20.0
ZONE_SPLIT_X = 0.5  # outside: x < 0.5, inside: x >= 0.5 (normalised box centre)
ZONES = {
    "outside": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]],
    "inside": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]],
}
FADE_S = 0.5  # people who appear or vanish inside the frame fade over this long
TOP_Y, BOTTOM_Y = 125.0, 345.0  # two walking lanes: far (small heads) and near (big heads)
OFF_LEFT, OFF_RIGHT = -70.0, WIDTH + 70.0  # face centres just outside the frame

# Layout rules the timeline must obey (checked by validate()).
MAX_IN_VIEW = 5
MIN_FACE_GAP_PX = 30.0
MAX_SPEED_PX_PER_FRAME = 12.0
MIN_DURATION_S = 3.0
MIN_PRESENCE_S = 2.0  # in a zone during a window: 0 or at least this long
EVENT_MARGIN_S = 1.0  # no entry, exit or zone change this close to a window boundary
MIN_RECALL = 0.95  # full-range detector, per appearance, over fully visible frames
IOU_MATCH = 0.5


@dataclass(frozen=True, slots=True)
class Appearance:
    """One continuous presence of one person: a look, a path of keyframes, how it starts/ends.

    `path` holds (t seconds, x, y) of the face centre; positions between keyframes are linear
    (walking), repeated positions mean standing. A path that starts or ends off-frame is a walk
    in or out through the edge; `fade_in`/`fade_out` make someone appear or vanish in place.
    """

    person: Person
    path: tuple[tuple[float, float, float], ...]
    fade_in: bool = True
    fade_out: bool = True
    note: str = ""

    @property
    def start_s(self) -> float:
        return self.path[0][0]

    @property
    def end_s(self) -> float:
        return self.path[-1][0]

    def placement(self, t: float) -> Placement | None:
        """Where this person is at media time t (None if not in the scene at all)."""
        if t < self.start_s or t > self.end_s:
            return None
        x, y = _interpolate(self.path, t)
        # A slow sway while standing and a bob while walking, so nobody is a frozen sticker
        # (a tracker that only ever sees static boxes is not being tested).
        phase = self.person.appearance_id * 1.7
        x += 3.0 * math.sin(2 * math.pi * t / 4.3 + phase)
        y += 2.0 * math.sin(2 * math.pi * t / 1.1 + phase)
        alpha = 1.0
        if self.fade_in:
            alpha = min(alpha, (t - self.start_s) / FADE_S)
        if self.fade_out:
            alpha = min(alpha, (self.end_s - t) / FADE_S)
        alpha = max(0.0, min(1.0, alpha))
        return Placement(self.person, (x, y), alpha) if alpha > 0 else None


def _interpolate(path: tuple[tuple[float, float, float], ...], t: float) -> tuple[float, float]:
    for (t0, x0, y0), (t1, x1, y1) in itertools.pairwise(path):
        if t0 <= t <= t1:
            f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
            return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
    return path[-1][1], path[-1][2]


def walk(t0: float, x0: float, x1: float, speed_px_s: float) -> float:
    """When a walk from x0 starting at t0 reaches x1 at a steady speed."""
    return t0 + abs(x1 - x0) / speed_px_s


def timeline() -> list[Appearance]:
    """The hand-made scenario (times in seconds, x/y of the face centre in pixels).

    Windows are [0, 20), [20, 40), [40, 60); zones split at x = 320. Intended counts:
    outside 5 / 4 / 0 and inside 2 / 6 / 6 people. Looks vary so that neighbours differ:
    mirror, light, colour and a small tilt, all within what the detector tolerates.
    """
    top, bottom = TOP_Y, BOTTOM_Y

    def stand(t0: float, t1: float, x: float, y: float) -> tuple[tuple[float, float, float], ...]:
        return ((t0, x, y), (t1, x, y))

    a2_arrive = walk(2.0, OFF_LEFT, 450.0, 80.0)
    a4_arrive = walk(23.0, 140.0, 540.0, 60.0)
    a5_gone = walk(26.0, 90.0, OFF_LEFT, 80.0)
    a7_arrive = walk(28.5, OFF_LEFT, 380.0, 80.0)
    a11_arrive = walk(33.0, OFF_RIGHT, 575.0, 60.0)
    a11_gone = walk(50.0, 575.0, OFF_RIGHT, 60.0)
    a14_gone = walk(55.0, 450.0, OFF_RIGHT, 80.0)
    return [
        Appearance(
            Person(1, 125.0),
            stand(1.0, 13.0, 95.0, top),
            note="waits outside",
        ),
        Appearance(
            Person(2, 190.0, mirror=True, gain=0.92, gamma=1.05, tint=(0.93, 1.0, 1.07)),
            ((2.0, OFF_LEFT, bottom), (a2_arrive, 450.0, bottom), (12.0, 450.0, bottom)),
            fade_in=False,
            note="walks in from the street, through the door",
        ),
        Appearance(
            Person(3, 135.0, mirror=True, gain=1.06, contrast=1.08, rotation_deg=5.0),
            stand(4.0, 17.0, 235.0, top + 5.0),
            note="waits outside",
        ),
        Appearance(
            Person(4, 170.0, gain=0.95, tint=(1.06, 1.0, 0.95), rotation_deg=-4.0),
            (
                (13.0, 140.0, bottom),
                (23.0, 140.0, bottom),
                (a4_arrive, 540.0, bottom),
                (31.0, 540.0, bottom),
            ),
            note="waits outside, then goes in",
        ),
        Appearance(
            Person(5, 112.0, mirror=True, gamma=0.92, tint=(0.97, 1.0, 1.03)),
            ((15.5, 90.0, top - 5.0), (26.0, 90.0, top - 5.0), (a5_gone, OFF_LEFT, top - 5.0)),
            fade_out=False,
            note="waits outside, then walks off along the street",
        ),
        Appearance(
            Person(6, 125.0, mirror=True, contrast=0.95, tint=(1.05, 1.0, 0.96)),
            stand(3.0, 16.0, 520.0, top),
            note="browses inside",
        ),
        Appearance(
            Person(7, 160.0, gain=1.04, gamma=1.08, rotation_deg=3.0),
            ((28.5, OFF_LEFT, bottom), (a7_arrive, 380.0, bottom), (46.0, 380.0, bottom)),
            fade_in=False,
            note="walks in from the street, through the door, stays",
        ),
        Appearance(
            Person(8, 140.0, gain=0.9, contrast=1.05, tint=(0.95, 1.0, 1.05)),
            stand(24.0, 37.0, 230.0, top + 5.0),
            note="waits outside",
        ),
        Appearance(
            Person(9, 135.0, tint=(1.04, 1.02, 0.95), rotation_deg=-2.0),
            stand(22.5, 33.0, 560.0, top - 5.0),
            note="browses inside",
        ),
        Appearance(
            Person(10, 130.0, mirror=True, gain=1.05, gamma=0.95),
            stand(24.5, 45.0, 410.0, top),
            note="browses inside",
        ),
        Appearance(
            Person(
                11, 165.0, mirror=True, contrast=1.06, tint=(0.96, 1.0, 1.04), rotation_deg=-3.0
            ),
            (
                (33.0, OFF_RIGHT, bottom),
                (a11_arrive, 575.0, bottom),
                (50.0, 575.0, bottom),
                (a11_gone, OFF_RIGHT, bottom),
            ),
            fade_in=False,
            fade_out=False,
            note="comes from the back of the store, leaves to the back",
        ),
        Appearance(
            Person(12, 115.0, gain=1.02, tint=(1.03, 0.98, 0.97)),
            stand(36.0, 47.0, 565.0, top - 5.0),
            note="browses inside",
        ),
        Appearance(
            Person(13, 145.0, mirror=True, gain=0.96, rotation_deg=4.0),
            stand(48.0, 57.0, 480.0, top - 5.0),
            note="browses inside",
        ),
        Appearance(
            Person(14, 215.0, gain=1.0, contrast=1.04, tint=(0.98, 1.0, 1.02)),
            (
                (52.0, 450.0, bottom + 15.0),
                (55.0, 450.0, bottom + 15.0),
                (a14_gone, OFF_RIGHT, bottom + 15.0),
            ),
            fade_out=False,
            note="steps in front of the camera, leaves to the back",
        ),
    ]


# ----------------------------------------------------------------------------- ground truth


@dataclass(slots=True)
class FrameFace:
    """One face in one frame, as stored in entrance.json's frames_gt."""

    appearance: int
    box: PixelBox  # clipped to the frame: what a detector can report
    full: bool  # whole face in frame and not fading: the frames recall is measured on
    alpha: float
    extent: PixelBox = field(repr=False)  # the whole head, for the overlap checks

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    def zone(self) -> str:
        return "outside" if self.center[0] / WIDTH < ZONE_SPLIT_X else "inside"


def frame_time(index: int) -> float:
    return index / FPS


def frame_placements(appearances: list[Appearance], index: int) -> list[Placement]:
    """The placements drawn in frame `index`: bigger heads (nearer the camera) last."""
    t = frame_time(index)
    found = [p for a in appearances if (p := a.placement(t)) is not None]
    return sorted(found, key=lambda p: p.person.head_px)


def ground_truth(placements: list[Placement]) -> list[FrameFace]:
    """The faces of one frame, computed from the placements alone (no drawing needed)."""
    faces = []
    for placement in placements:
        person = placement.person
        truth = FaceTruth(person.appearance_id, face_box(person, placement.center), placement.alpha)
        x0, y0, x1, y1 = truth.clipped(WIDTH, HEIGHT)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            continue  # walking in or out, face not yet or no longer in the frame
        faces.append(
            FrameFace(
                truth.appearance_id,
                (x0, y0, x1, y1),
                truth.fully_visible(WIDTH, HEIGHT),
                truth.alpha,
                head_extent(person, placement.center),
            )
        )
    return sorted(faces, key=lambda f: f.appearance)


def all_ground_truth(appearances: list[Appearance]) -> list[list[FrameFace]]:
    return [ground_truth(frame_placements(appearances, i)) for i in range(FRAMES)]


def render(appearances: list[Appearance]) -> Iterator[BGRImage]:
    background = store_background((WIDTH, HEIGHT), seed=0)
    for index in range(FRAMES):
        image, _ = compose(background, frame_placements(appearances, index))
        yield image


def windows() -> list[tuple[float, float]]:
    count = math.ceil(DURATION_S / WINDOW_S)
    return [(i * WINDOW_S, min((i + 1) * WINDOW_S, DURATION_S)) for i in range(count)]


def presence_frames(
    frames_gt: list[list[FrameFace]], start_s: float, end_s: float, only_full: bool
) -> dict[tuple[int, str], int]:
    """Frames per (appearance, zone) inside [start_s, end_s), by box centre."""
    counts: dict[tuple[int, str], int] = {}
    for index, faces in enumerate(frames_gt):
        if not start_s <= frame_time(index) < end_s:
            continue
        for face in faces:
            if only_full and not face.full:
                continue
            key = (face.appearance, face.zone())
            counts[key] = counts.get(key, 0) + 1
    return counts


def expected_windows(frames_gt: list[list[FrameFace]]) -> list[dict[str, object]]:
    result = []
    for start, end in windows():
        frames = presence_frames(frames_gt, start, end, only_full=False)
        for zone in ZONES:
            people = sorted(
                {a for (a, z), n in frames.items() if z == zone and n >= MIN_PRESENCE_S * FPS}
            )
            result.append(
                {
                    "start_s": start,
                    "end_s": end,
                    "zone": zone,
                    "people": len(people),
                    "appearances": people,
                }
            )
    return result


# ----------------------------------------------------------------------------- validation


def validate(appearances: list[Appearance], frames_gt: list[list[FrameFace]]) -> list[str]:
    """Every layout rule of the brief, as messages (empty means the timeline is sound)."""
    problems: list[str] = []
    ids = [a.person.appearance_id for a in appearances]
    if len(set(ids)) != len(ids):
        problems.append("appearance ids are not unique")
    boundaries = [start for start, _ in windows()] + [DURATION_S]
    previous: dict[int, FrameFace] = {}
    seen: dict[int, list[int]] = {}
    for index, faces in enumerate(frames_gt):
        t = frame_time(index)
        if len(faces) > MAX_IN_VIEW:
            problems.append(f"{t:.1f}s: {len(faces)} faces in view")
        for i, a in enumerate(faces):
            for b in faces[i + 1 :]:
                if not boxes_apart(a.box, b.box, MIN_FACE_GAP_PX):
                    problems.append(f"{t:.1f}s: faces {a.appearance} and {b.appearance} too close")
                if not boxes_apart(a.extent, b.extent, 0.0):
                    problems.append(f"{t:.1f}s: heads {a.appearance} and {b.appearance} overlap")
        current = {f.appearance: f for f in faces}
        for aid, face in current.items():
            seen.setdefault(aid, []).append(index)
            before = previous.get(aid)
            if before is not None:
                # The head's extent moves exactly with the face centre, and unlike the clipped
                # box it does not jump while a face slides over the frame edge.
                step = math.dist(face.extent[:2], before.extent[:2])
                if step > MAX_SPEED_PX_PER_FRAME:
                    problems.append(f"{t:.1f}s: appearance {aid} moves {step:.1f} px/frame")
                # Stricter than for entries: a crossing must leave >= 2 s on each side.
                if before.zone() != face.zone() and _near(t, boundaries, MIN_PRESENCE_S):
                    problems.append(f"{t:.1f}s: appearance {aid} changes zone near a boundary")
        previous = current
    for aid, indices in seen.items():
        if indices != list(range(indices[0], indices[-1] + 1)):
            problems.append(f"appearance {aid} is not one continuous presence")
        first, last = frame_time(indices[0]), frame_time(indices[-1])
        if last - first < MIN_DURATION_S:
            problems.append(f"appearance {aid} lasts only {last - first:.1f}s")
        for event in (first, last):
            if _near(event, boundaries, EVENT_MARGIN_S):
                problems.append(f"appearance {aid} enters or leaves at {event:.1f}s")
    missing = set(ids) - set(seen)
    if missing:
        problems.append(f"appearances never in view: {sorted(missing)}")
    for start, end in windows():
        loose = presence_frames(frames_gt, start, end, only_full=False)
        strict = presence_frames(frames_gt, start, end, only_full=True)
        for key, n in loose.items():
            if strict.get(key, 0) < MIN_PRESENCE_S * FPS:
                problems.append(
                    f"window {start:.0f}-{end:.0f}s: appearance {key[0]} in {key[1]} is marginal"
                    f" ({n} frames seen, {strict.get(key, 0)} fully visible)"
                )
    return problems


def _near(t: float, boundaries: list[float], margin: float) -> bool:
    """Within `margin` of a window boundary, the stream's own start and end included."""
    inner = [b for b in boundaries if 0.0 < b < DURATION_S]
    return any(abs(t - b) < margin for b in inner) or t < margin or t > DURATION_S - margin


# ----------------------------------------------------------------------------- encoding


def encode(frames: Iterator[BGRImage], path: Path) -> None:
    """H.264 through Debian's ffmpeg, piped raw frames: small, and OpenCV's FFmpeg reads it.

    No B-frames, so decode order equals presentation order and CAP_PROP_POS_MSEC is exact;
    bitexact flags keep version strings out, so a rerun gives the same bytes.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg not found: apt-get install -y ffmpeg (only needed to build media)")
    command = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
        "-i", "-",
        "-c:v", "libx264", "-preset", "slow", "-crf", "22", "-pix_fmt", "yuv420p",
        "-bf", "0", "-g", str(FPS * 5), "-threads", "1",
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
        "-movflags", "+faststart",
        str(path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert process.stdin is not None
    try:
        for frame in frames:
            process.stdin.write(np.ascontiguousarray(frame).tobytes())
    finally:
        process.stdin.close()
        if process.wait() != 0:
            raise SystemExit(f"ffmpeg failed with exit code {process.returncode}")


def decode(path: Path) -> Iterator[tuple[float, BGRImage]]:
    """Frames and media times as the daemon's replay source will see them."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"OpenCV cannot open {path}")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, np.asarray(frame, np.uint8)
    finally:
        capture.release()


def check_container(path: Path) -> dict[str, float]:
    capture = cv2.VideoCapture(str(path))
    info = {
        "frames": capture.get(cv2.CAP_PROP_FRAME_COUNT),
        "fps": capture.get(cv2.CAP_PROP_FPS),
        "width": capture.get(cv2.CAP_PROP_FRAME_WIDTH),
        "height": capture.get(cv2.CAP_PROP_FRAME_HEIGHT),
    }
    capture.release()
    expected = {"frames": FRAMES, "fps": FPS, "width": WIDTH, "height": HEIGHT}
    for key, value in expected.items():
        if abs(info[key] - value) > 1e-6:
            raise SystemExit(f"{path}: OpenCV reports {key}={info[key]}, expected {value}")
    return info


# ----------------------------------------------------------------------------- detection


@dataclass(slots=True)
class Recall:
    hits: dict[int, int] = field(default_factory=dict)
    visible: dict[int, int] = field(default_factory=dict)
    ious: list[float] = field(default_factory=list)
    false_positives: int = 0

    def of(self, aid: int) -> float:
        return self.hits.get(aid, 0) / max(self.visible.get(aid, 0), 1)

    def overall(self, ids: list[int] | None = None) -> float:
        keys = self.visible.keys() if ids is None else ids
        return sum(self.hits.get(k, 0) for k in keys) / max(
            sum(self.visible.get(k, 0) for k in keys), 1
        )


def measure_recall(
    video: Path, frames_gt: list[list[FrameFace]], models: dict[str, Path]
) -> dict[str, Recall]:
    """Run the real detectors over the decoded video and match them to the ground truth.

    A fully visible face counts as found when a detection overlaps it with IoU >= 0.5; a
    detection that matches no face at all (partial and fading ones included) is a false
    positive. Timestamps are checked on the way: frame i must be at i / fps seconds.
    """
    from sensekit.types import DetectorModel
    from sensekit.vision.detector import DetectorOptions, FaceDetector

    detectors = {
        name: FaceDetector(
            DetectorOptions(model=DetectorModel(name), model_path=path, score_threshold=0.5)
        )
        for name, path in models.items()
    }
    results = {name: Recall() for name in detectors}
    index = -1
    for index, (media_s, image) in enumerate(decode(video)):
        if abs(media_s - frame_time(index)) > 1e-3:
            raise SystemExit(f"frame {index}: CAP_PROP_POS_MSEC gives {media_s:.3f}s")
        faces = frames_gt[index]
        for name, detector in detectors.items():
            found = [
                (f.box.xmin * WIDTH, f.box.ymin * HEIGHT, f.box.xmax * WIDTH, f.box.ymax * HEIGHT)
                for f in detector.detect(image)
            ]
            matched = match([f.box for f in faces], found, IOU_MATCH)
            result = results[name]
            for face, hit in zip(faces, matched, strict=True):
                if not face.full:
                    continue
                result.visible[face.appearance] = result.visible.get(face.appearance, 0) + 1
                if hit is not None:
                    result.hits[face.appearance] = result.hits.get(face.appearance, 0) + 1
                    result.ious.append(iou(face.box, found[hit]))
            # A detection that touches no face at all, partial and fading ones included.
            result.false_positives += sum(
                all(iou(f.box, box) < 0.1 for f in faces) for box in found
            )
    if index + 1 != FRAMES:
        raise SystemExit(f"{video}: decoded {index + 1} frames, expected {FRAMES}")
    return results


# ----------------------------------------------------------------------------- outputs


def appearance_records(
    appearances: list[Appearance],
    frames_gt: list[list[FrameFace]],
    recall: dict[str, Recall] | None,
) -> list[dict[str, object]]:
    records = []
    for appearance in appearances:
        person = appearance.person
        aid = person.appearance_id
        indices = [
            i for i, faces in enumerate(frames_gt) if any(f.appearance == aid for f in faces)
        ]
        zones_seen: list[str] = []
        crossings: list[float] = []
        for index in indices:
            zone = next(f for f in frames_gt[index] if f.appearance == aid).zone()
            if zones_seen and zones_seen[-1] != zone:
                crossings.append(frame_time(index))
            if not zones_seen or zones_seen[-1] != zone:
                zones_seen.append(zone)
        first_x, last_x = appearance.path[0][1], appearance.path[-1][1]
        record: dict[str, object] = {
            "id": aid,
            "first_frame": indices[0],
            "last_frame": indices[-1],
            "first_s": frame_time(indices[0]),
            "last_s": frame_time(indices[-1]),
            "enters": "fade" if appearance.fade_in else _edge(first_x),
            "leaves": "fade" if appearance.fade_out else _edge(last_x),
            "zones": zones_seen,
            "zone_change_s": crossings,
            "note": appearance.note,
            "head_px": person.head_px,
            "face_px": round(person.face_size[1], 1),
            "mirror": person.mirror,
            "gain": person.gain,
            "contrast": person.contrast,
            "gamma": person.gamma,
            "tint_bgr": list(person.tint),
            "rotation_deg": person.rotation_deg,
        }
        if recall is not None:
            record["fully_visible_frames"] = next(iter(recall.values())).visible.get(aid, 0)
            record["recall"] = {name: round(r.of(aid), 4) for name, r in recall.items()}
        records.append(record)
    return records


def _edge(x: float) -> str:
    return "left edge" if x < 0 else "right edge" if x > WIDTH else "fade"


def recall_summary(
    recall: dict[str, Recall], appearances: list[Appearance]
) -> dict[str, dict[str, object]]:
    small = [a.person.appearance_id for a in appearances if a.person.head_px < 150]
    return {
        name: {
            "score_threshold": 0.5,
            "iou_match": IOU_MATCH,
            "overall": round(r.overall(), 4),
            "heads_under_150px": round(r.overall(small), 4),
            "mean_iou": round(float(np.mean(r.ious)), 3) if r.ious else None,
            "false_positives": r.false_positives,
            "min_appearance": round(min(r.of(k) for k in r.visible), 4),
        }
        for name, r in recall.items()
    }


def write_json(
    path: Path,
    appearances: list[Appearance],
    frames_gt: list[list[FrameFace]],
    recall: dict[str, Recall] | None,
) -> dict[str, object]:
    document: dict[str, object] = {
        "source": (
            "synthetic, made by tools/media/make_demo_media.py: copies of scikit-image's"
            " data.astronaut() (NASA photograph of Eileen Collins, public domain) pasted on a"
            " drawn store background"
        ),
        "video": "entrance.mp4",
        "license": "CC0-1.0",
        "fps": FPS,
        "width": WIDTH,
        "height": HEIGHT,
        "frames": FRAMES,
        "duration_s": DURATION_S,
        "zones": ZONES,
        "anchor": "box_center",
        "window_s": WINDOW_S,
        "box_format": "pixels x0,y0,x1,y1 clipped to the frame; full = whole face visible, alpha 1",
        "appearances": appearance_records(appearances, frames_gt, recall),
        "expected_windows": expected_windows(frames_gt),
        "detector_recall": recall_summary(recall, appearances) if recall else None,
        "frames_gt": [
            [
                {
                    "appearance": f.appearance,
                    "box": [round(v, 1) for v in f.box],
                    "full": f.full,
                    "alpha": round(f.alpha, 2),
                }
                for f in faces
            ]
            for faces in frames_gt
        ],
    }
    # One appearance, window or frame per line: diffable, and 600 frames stay 600 lines.
    lines = []
    for key, value in document.items():
        if isinstance(value, list) and key != "zones":
            items = ",\n  ".join(json.dumps(item) for item in value)
            lines.append(f" {json.dumps(key)}: [\n  {items}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    assert json.loads(text) == json.loads(json.dumps(document))
    path.write_text(text)
    return document


README_TEMPLATE = """\
# Demo media: `entrance.mp4`

A 60 s synthetic store-entrance video with exact ground truth, for `sensekit demo`, the
integration tests and the README's walkthrough. Regenerate it (deterministic) from the
repository root with:

```
.venv/bin/python tools/media/make_demo_media.py
```

It needs Debian's `ffmpeg` (libx264) to encode and scikit-image for the source photo; neither is
needed at run time. The script also runs both BlazeFace models over the decoded video and
fails if the full-range model finds any person in fewer than 95 % of the frames where their
face is fully visible.

## Provenance and licence

- Faces: every "person" is a copy of the head in scikit-image's `data.astronaut()`, a NASA
  photograph of astronaut Eileen Collins. NASA photographs are in the public domain; the image
  ships inside the scikit-image package (nothing is downloaded). Copies are scaled, mirrored,
  relit (gain, contrast, gamma), tinted and tilted by at most 5° to look like different people
  (`tools/media/scene.py`).
- Background: drawn with numpy/OpenCV (street, door frame, shelves); no photograph, no faces.
- Licence of the derived media (`entrance.mp4`, `entrance.json`): public domain, CC0 1.0.
- The faces are all the same real person. The expressions are all one smile, so the demo
  exercises the counting and the k-threshold, not expression accuracy.

## Format

| | |
|---|---|
| `entrance.mp4` | {width}x{height}, {fps} fps, {frames} frames ({duration:.0f} s), H.264 (yuv420p, no B-frames), {size_kb} KB |
| `entrance.json` | ground truth: appearances, per-frame face boxes, expected counts, measured recall |

Decoded with `cv2.VideoCapture`, frame *i* has `CAP_PROP_POS_MSEC` = 100·*i*, and
`CAP_PROP_FRAME_COUNT` is {frames} (both checked by the generator).

`entrance.json` keys: `zones` (normalised polygons: `outside` x < 0.5, `inside` x ≥ 0.5),
`anchor` (`box_center`: a face belongs to the zone holding its box centre), `window_s` (20:
tumbling windows from media time 0), `appearances` (one continuous presence each; someone who
leaves and comes back would be a new one), `frames_gt` (one list per frame of
`{{"appearance", "box": [x0, y0, x1, y1] px clipped to the frame, "full", "alpha"}}`; `full` is
false while a face slides over the frame edge or fades), `expected_windows` and
`detector_recall`.

## Timeline

Faces are in two lanes: far (top, heads {far} px from hair to chin) and near (bottom, heads
{near} px); the face box is 0.61 of the head height. The door is in the middle of the frame;
`outside` is the street on the left. Times are of the first and last frame with any part of
the face in the frame; "zones" lists the zones in order, with the time the box centre crossed
x = 0.5.

| id | head px | in view (s) | enters | zones | leaves | what | recall full / short |
|---:|---:|---|---|---|---|---|---|
{timeline_rows}

Rules the generator checks: at most {max_in_view} faces at once, face boxes ≥ {gap:.0f} px apart and
heads never overlapping, ≤ {speed:.0f} px per frame, every appearance ≥ {min_dur:.0f} s, no entry, exit or
zone change within 1 s of a window boundary (in practice all are ≥ 2 s away), and every
presence of a person in a zone during a window is either absent or ≥ 2 s of fully visible
face. So counting "≥ 2 s in the zone" or "≥ 1 s" or "seen at all" gives the same numbers.

## Expected counts (window × zone)

`people` = distinct appearances whose box centre is in the zone for ≥ 2 s of the window. With
the demo's k-threshold of 5, a window with fewer than 5 people publishes only its count.

| window | outside | inside |
|---|---|---|
{count_rows}

## Measured detector recall

Both BlazeFace models through LiteRT (`sensekit.vision.detector`), score threshold 0.5, on
every decoded frame; a fully visible face counts as found when a detection overlaps its
ground-truth box with IoU ≥ 0.5. The numbers are of the detector code at generation time
(they moved when the letterbox switched from area to bilinear resizing): rerun the generator
after changing the detector; the video itself does not change.

| model | overall | heads < 150 px | worst appearance | mean IoU | false positives (in {frames} frames) |
|---|---|---|---|---|---|
{recall_rows}

{weak_text}
"""


def _zones_text(record: dict[str, object]) -> str:
    zones = record["zones"]
    changes = record["zone_change_s"]
    assert isinstance(zones, list) and isinstance(changes, list)
    text = str(zones[0])
    for zone, at in zip(zones[1:], changes, strict=True):
        text += f" → {zone} at {at:.1f} s"
    return text


def write_readme(
    path: Path,
    video: Path,
    document: dict[str, object],
) -> None:
    appearances = document["appearances"]
    assert isinstance(appearances, list)
    rows = []
    for a in appearances:
        recall = a.get("recall", {})
        recall_text = (
            f"{recall.get('full_range', 0):.0%} / {recall.get('short_range', 0):.0%}"
            if recall
            else "not measured"
        )
        rows.append(
            f"| {a['id']} | {a['head_px']:.0f} | {a['first_s']:.1f}–{a['last_s']:.1f} |"
            f" {a['enters']} | {_zones_text(a)} | {a['leaves']} | {a['note']} |"
            f" {recall_text} |"
        )
    windows_list = document["expected_windows"]
    assert isinstance(windows_list, list)
    count_rows = []
    for start, end in windows():
        cells = []
        for zone in ZONES:
            entry = next(w for w in windows_list if w["start_s"] == start and w["zone"] == zone)
            people = entry["people"]
            verdict = "breakdown" if people >= 5 else "nobody" if people == 0 else "count only"
            ids = ", ".join(str(i) for i in entry["appearances"])
            cells.append(f"**{people}** ({verdict}){': ' + ids if ids else ''}")
        count_rows.append(f"| [{start:.0f}, {end:.0f}) s | {cells[0]} | {cells[1]} |")
    summary = document.get("detector_recall") or {}
    assert isinstance(summary, dict)
    recall_rows = [
        f"| {name} | {s['overall']:.1%} | {s['heads_under_150px']:.1%} |"
        f" {s['min_appearance']:.1%} | {s['mean_iou']} | {s['false_positives']} |"
        for name, s in summary.items()
    ] or ["| (not measured: run without --no-verify) | | | | | |"]
    far = [a["head_px"] for a in appearances if a["head_px"] < 150]
    near = [a["head_px"] for a in appearances if a["head_px"] >= 150]
    weak = [
        f"{a['id']} ({a['head_px']:.0f} px head: {a['recall']['short_range']:.0%})"
        for a in appearances
        if "recall" in a and a["recall"]["short_range"] < MIN_RECALL
    ]
    weak_text = (
        "The short-range model (128×128 input) loses the smallest faces: it found appearances "
        + ", ".join(weak)
        + " in too few frames, where the full-range model (192×192) found them all. That is"
        " expected, and why the demo config uses the full-range model at an entrance."
        if weak
        else "Both models found every person in at least 95 % of their frames."
    )
    path.write_text(
        README_TEMPLATE.format(
            weak_text=weak_text,
            far=f"{min(far):.0f}–{max(far):.0f}",
            near=f"{min(near):.0f}–{max(near):.0f}",
            width=WIDTH,
            height=HEIGHT,
            fps=FPS,
            frames=FRAMES,
            duration=DURATION_S,
            size_kb=round(video.stat().st_size / 1024),
            timeline_rows="\n".join(rows),
            count_rows="\n".join(count_rows),
            recall_rows="\n".join(recall_rows),
            max_in_view=MAX_IN_VIEW,
            gap=MIN_FACE_GAP_PX,
            speed=MAX_SPEED_PX_PER_FRAME,
            min_dur=MIN_DURATION_S,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "media" / "demo")
    parser.add_argument(
        "--short-range", type=Path, default=REPO / "models" / "face_detection_short_range.tflite"
    )
    parser.add_argument(
        "--full-range",
        type=Path,
        default=REPO / "models" / "face_detection_full_range_sparse.tflite",
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip running the detectors over the video"
    )
    args = parser.parse_args(argv)

    appearances = timeline()
    frames_gt = all_ground_truth(appearances)
    problems = validate(appearances, frames_gt)
    if problems:
        for problem in problems:
            print("timeline:", problem, file=sys.stderr)
        return 1

    args.out.mkdir(parents=True, exist_ok=True)
    video = args.out / "entrance.mp4"
    encode(render(appearances), video)
    check_container(video)

    recall = None
    if not args.no_verify:
        recall = measure_recall(
            video, frames_gt, {"full_range": args.full_range, "short_range": args.short_range}
        )
    document = write_json(args.out / "entrance.json", appearances, frames_gt, recall)
    write_readme(args.out / "README.md", video, document)

    print(f"{video}: {video.stat().st_size / 1e6:.2f} MB, {FRAMES} frames")
    for w in expected_windows(frames_gt):
        print(f"  [{w['start_s']:.0f}, {w['end_s']:.0f}) {w['zone']:8s} {w['people']} people")
    if recall is None:
        return 0
    ids = [a.person.appearance_id for a in appearances]
    print("recall (fully visible frames, IoU >= 0.5):")
    print("   id  head  frames  " + "  ".join(f"{n:>11s}" for n in recall))
    for appearance in appearances:
        aid = appearance.person.appearance_id
        visible = next(iter(recall.values())).visible.get(aid, 0)
        cells = "  ".join(f"{r.of(aid):11.1%}" for r in recall.values())
        print(f"  {aid:3d}  {appearance.person.head_px:4.0f}  {visible:6d}  {cells}")
    for name, r in recall.items():
        small = [a.person.appearance_id for a in appearances if a.person.head_px < 150]
        print(
            f"  {name}: overall {r.overall():.1%}, heads < 150 px {r.overall(small):.1%},"
            f" false positives {r.false_positives}"
        )
    weak = [aid for aid in ids if recall["full_range"].of(aid) < MIN_RECALL]
    if weak:
        print(f"full-range recall below {MIN_RECALL:.0%} for appearances {weak}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
