"""The zones preview: what the camera's models would see on the snapshot, and where each face
would be counted.

Drawn over the snapshot: masked areas blacked out by the daemon's own ExclusionMask (so what is
black here is exactly what no model sees), each zone as a translucent fill with its outline and
name (where zones overlap, the first listed wins, as in counting), and the faces the camera's
configured detector finds on the masked picture: a box in the colour of its zone, grey and
labelled when its anchor falls in a mask (dropped, as the daemon drops it) or in no zone, and
marked when the camera's face gate would not classify it (too small, low score or turned
aside: counted, not classified; `sensekit.vision.gate`). A legend gives the faces per zone.

The same drawing serves the interactive window, so the installer sees while drawing what the
PNG will show. This module renders into memory; the caller decides whether a file is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from sensekit.calibration.zone_editor import Kind, Point, Shape, ZoneEditor
from sensekit.config import Anchor, CameraConfig, MaskConfig, ZoneConfig
from sensekit.privacy.masks import ExclusionMask
from sensekit.types import Box, Face
from sensekit.vision.gate import FaceGate, GateReason
from sensekit.zones import Zone, ZoneMap

Image = npt.NDArray[np.uint8]

ZONE_ALPHA = 0.3
"""Weight of a zone's colour in its fill: the scene stays legible underneath."""

# BGR, distinct on screen and in print; a zone beyond the palette reuses it from the start.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (60, 180, 75),  # green
    (200, 130, 0),  # blue
    (25, 225, 255),  # yellow
    (180, 30, 145),  # purple
    (48, 130, 245),  # orange
    (240, 240, 70),  # cyan
    (230, 50, 240),  # magenta
    (0, 128, 128),  # olive
)
EXCLUDED = (128, 128, 128)
NO_ZONE = (255, 255, 255)
MASK_OUTLINE = (0, 0, 200)
DRAFT = (0, 255, 255)


def zone_colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True, slots=True)
class FaceMark:
    """One detected face as the daemon would treat it."""

    box: Box  # normalised
    score: float
    zone: str | None  # None: in no zone (not counted), or excluded
    excluded: bool  # anchor in a mask: dropped before tracking
    not_classified: str | None  # why the gate would not classify it (counted all the same)

    @property
    def too_small(self) -> bool:
        return self.not_classified == GATE_TEXT[GateReason.TOO_SMALL]


def zone_map(zones: Sequence[Shape], camera: CameraConfig) -> ZoneMap:
    """The daemon's ZoneMap for these shapes (the camera's whole frame when there are none)."""
    if not zones:
        return ZoneMap.from_config(camera.model_copy(update={"zones": []}))
    return ZoneMap([Zone(z.name, np.asarray(z.points, np.float64)) for z in zones], camera.anchor)


def exclusion_mask(masks: Sequence[Shape]) -> ExclusionMask:
    return ExclusionMask([np.asarray(m.points, np.float64) for m in masks])


def camera_shapes(camera: CameraConfig) -> tuple[list[Shape], list[Shape]]:
    """The camera's configured zones and masks as shapes (unchecked: the config checked them)."""

    def shape(kind: Kind, entry: ZoneConfig | MaskConfig) -> Shape:
        return Shape(kind, entry.name, tuple((float(x), float(y)) for x, y in entry.polygon))

    return [shape(Kind.ZONE, z) for z in camera.zones], [shape(Kind.MASK, m) for m in camera.masks]


GATE_TEXT = {
    GateReason.TOO_SMALL: "too small to classify",
    GateReason.LOW_SCORE: "score too low to classify",
    GateReason.TURNED: "turned too far to classify",
}


def inspect_faces(
    faces: Sequence[Face],
    zones: ZoneMap,
    mask: ExclusionMask,
    size: tuple[int, int],
    gate: FaceGate,
) -> list[FaceMark]:
    """Sort detections exactly as VisionPipeline.process does: anchor in a mask → dropped;
    otherwise zone by anchor; the camera's face gate decides whether it would be classified."""
    width, height = size
    boxes = [face.box for face in faces]
    anchors = np.array([zones.anchor_point(b) for b in boxes], np.float64).reshape(-1, 2)
    excluded = mask.covers(anchors) if mask else np.zeros(len(boxes), dtype=bool)
    assigned = zones.assign(boxes)
    reasons = gate.reasons(list(faces), width, height)
    return [
        FaceMark(
            box=face.box,
            score=face.score,
            zone=None if out else zone,
            excluded=bool(out),
            not_classified=GATE_TEXT.get(reason),
        )
        for face, zone, out, reason in zip(faces, assigned, excluded, reasons, strict=True)
    ]


def gated_summary(marks: Sequence[FaceMark], zone: str) -> str:
    """` (2 too small to classify, 1 turned too far to classify)` for a zone, or ''."""
    counts: dict[str, int] = {}
    for mark in marks:
        if mark.zone == zone and mark.not_classified:
            counts[mark.not_classified] = counts.get(mark.not_classified, 0) + 1
    if not counts:
        return ""
    return " (" + ", ".join(f"{n} {text}" for text, n in counts.items()) + ")"


def faces_per_zone(marks: Sequence[FaceMark], zone_names: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(zone_names, 0)
    for mark in marks:
        if mark.zone is not None:
            counts[mark.zone] = counts.get(mark.zone, 0) + 1
    return counts


# ----------------------------------------------------------------------------- drawing


def _pixels(points: Sequence[Point], size: tuple[int, int]) -> npt.NDArray[np.int32]:
    """Normalised vertices to pixels, rounded as ExclusionMask rasterises them."""
    scale = np.array(size, dtype=np.float64)
    return np.round(np.asarray(points, np.float64).reshape(-1, 2) * scale).astype(np.int32)


def _font_scale(size: tuple[int, int]) -> float:
    return max(0.4, min(size) / 960.0)


def _label(image: Image, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """Text on a dark box so it reads over any background; clamped into the picture."""
    scale = _font_scale((image.shape[1], image.shape[0]))
    thickness = max(1, round(scale * 1.5))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = min(max(origin[0], 0), max(image.shape[1] - w - 4, 0))
    y = min(max(origin[1], h + 4), image.shape[0] - base - 2)
    cv2.rectangle(image, (x, y - h - 3), (x + w + 4, y + base + 1), (0, 0, 0), -1)
    cv2.putText(
        image, text, (x + 2, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA
    )


def _centroid(points: npt.NDArray[np.int32]) -> tuple[int, int]:
    moments = cv2.moments(points.astype(np.float32))
    if moments["m00"] == 0:
        return int(points[:, 0].mean()), int(points[:, 1].mean())
    return int(moments["m10"] / moments["m00"]), int(moments["m01"] / moments["m00"])


def zone_index_map(zones: Sequence[Shape], size: tuple[int, int]) -> npt.NDArray[np.int16]:
    """Per pixel, the index of the zone that counts it (first listed wins), -1 for none."""
    width, height = size
    index = np.full((height, width), -1, np.int16)
    for i in reversed(range(len(zones))):
        cv2.fillPoly(index, [_pixels(zones[i].points, size)], i)
    return index


def draw_shapes(
    image: Image,
    zones: Sequence[Shape],
    masks: Sequence[Shape],
    mask: ExclusionMask | None = None,
) -> Image:
    """The snapshot with masked areas black, zones filled and outlined, everything named.

    Zone fills stop at the masks: a masked area stays exactly black, as the models see it.
    """
    mask = mask if mask is not None else exclusion_mask(masks)
    size = (image.shape[1], image.shape[0])
    out = mask.apply(image).copy()
    keep = mask.keep(size[1], size[0]) > 0 if mask else np.ones(size[::-1], bool)
    index = zone_index_map(zones, size)
    for i in range(len(zones)):
        where = (index == i) & keep
        tint = np.asarray(zone_colour(i), np.float32)
        out[where] = np.round(out[where] * (1.0 - ZONE_ALPHA) + tint * ZONE_ALPHA).astype(np.uint8)
    thickness = max(1, round(_font_scale(size) * 2))
    for i, zone in enumerate(zones):
        cv2.polylines(out, [_pixels(zone.points, size)], True, zone_colour(i), thickness)
    for shape in masks:
        cv2.polylines(out, [_pixels(shape.points, size)], True, MASK_OUTLINE, 1, cv2.LINE_AA)
    for i, zone in enumerate(zones):
        _label(out, zone.name, _centroid(_pixels(zone.points, size)), zone_colour(i))
    for shape in masks:
        first = _pixels(shape.points, size)[0]
        _label(out, f"mask: {shape.name}", (int(first[0]), int(first[1])), EXCLUDED)
    return out


def draw_faces(image: Image, marks: Sequence[FaceMark], zone_names: Sequence[str]) -> None:
    """Face boxes in their zone's colour; excluded and zone-less faces in grey/white."""
    height, width = image.shape[:2]
    thickness = max(2, round(_font_scale((width, height)) * 2))
    colours = {name: zone_colour(i) for i, name in enumerate(zone_names)}
    for mark in marks:
        b = mark.box
        p0 = (round(b.xmin * width), round(b.ymin * height))
        p1 = (round(b.xmax * width), round(b.ymax * height))
        if mark.excluded:
            colour, text = EXCLUDED, "excluded (mask)"
            cv2.line(image, p0, p1, colour, thickness)
            cv2.line(image, (p0[0], p1[1]), (p1[0], p0[1]), colour, thickness)
        elif mark.zone is None:
            colour, text = NO_ZONE, "no zone"
        else:
            colour, text = colours.get(mark.zone, NO_ZONE), mark.zone
        cv2.rectangle(image, p0, p1, colour, thickness)
        if mark.not_classified and not mark.excluded:
            text += f", {mark.not_classified}"
        _label(image, f"{text} {mark.score:.2f}", (p0[0], p0[1] - 4), colour)


def draw_legend(
    image: Image,
    title: str,
    zone_names: Sequence[str],
    marks: Sequence[FaceMark],
) -> None:
    """Faces per zone, bottom left, one line each with the zone's colour."""
    counts = faces_per_zone(marks, zone_names)
    lines: list[tuple[str, tuple[int, int, int]]] = [(title, (255, 255, 255))]
    for i, name in enumerate(zone_names):
        extra = gated_summary(marks, name)
        lines.append((f"{name}: {counts[name]} face(s){extra}", zone_colour(i)))
    excluded = sum(1 for m in marks if m.excluded)
    nowhere = sum(1 for m in marks if m.zone is None and not m.excluded)
    if excluded:
        lines.append((f"excluded by a mask: {excluded}", EXCLUDED))
    if nowhere:
        lines.append((f"in no zone (not counted): {nowhere}", NO_ZONE))
    scale = _font_scale((image.shape[1], image.shape[0]))
    step = round(30 * scale) + 4
    y = image.shape[0] - 6 - step * (len(lines) - 1)
    for text, colour in lines:
        _label(image, text, (6, y), colour)
        y += step


def render_preview(
    image: Image,
    zones: Sequence[Shape],
    masks: Sequence[Shape],
    marks: Sequence[FaceMark],
    zone_names: Sequence[str],
    title: str,
) -> Image:
    """The whole preview: shapes, faces and legend, same size as the snapshot."""
    out = draw_shapes(image, zones, masks)
    draw_faces(out, marks, zone_names)
    draw_legend(out, title, zone_names, marks)
    return out


def render_editor(image: Image, editor: ZoneEditor) -> Image:
    """What the interactive window shows: the shapes so far, the polygon being drawn, the
    mode and the last message."""
    size = (image.shape[1], image.shape[0])
    out = draw_shapes(image, editor.zones, editor.masks)
    if editor.draft:
        colour = MASK_OUTLINE if editor.mode is Kind.MASK else DRAFT
        points = _pixels(editor.draft, size)
        cv2.polylines(out, [points], False, colour, 2, cv2.LINE_AA)
        for x, y in points:
            cv2.circle(out, (int(x), int(y)), 4, colour, -1, cv2.LINE_AA)
    _label(out, f"[{editor.mode.value}] {editor.message}", (6, 6), (255, 255, 255))
    return out


def anchor_name(anchor: Anchor) -> str:
    return "box centre" if anchor is Anchor.BOX_CENTER else "bottom of the box"
