"""Synthetic store-entrance scenes with known face boxes, for tests, benchmarks and the demo.

Why synthetic: the tests need real pixels that the real BlazeFace models can find, with exact
ground truth, and with no licence question. The only photographic source is scikit-image's
`data.astronaut()` (NASA portrait of Eileen Collins, public domain), bundled with the package,
so nothing is downloaded. Her head is cut out once with a soft matte; scaled, mirrored, relit,
tinted and slightly rotated copies stand in for different "people" pasted onto a drawn store
background. Because every copy is placed with a known affine transform, the face box the
detector should report is known to the pixel.

Coordinates are pixels, x to the right and y down, boxes as (x0, y0, x1, y1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from sensekit.tracker import box_iou

BGRImage = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]
PixelBox = tuple[float, float, float, float]

# Where things are in the 512 x 512 astronaut image (source pixels), measured by eye and with
# the detectors themselves.
_CROP = (143, 4, 307, 222)  # x0, y0, x1, y1: hair, face, chin and some neck; centred on the face
# The face box both BlazeFace models report on the original photo (mean of short range
# (178, 81, 272, 175) and full range (172, 66, 278, 172)): forehead to chin, ear to ear. Using
# the detectors' own notion of a face box makes the IoU against their output meaningful.
_FACE = (175.0, 74.0, 275.0, 174.0)
_HEAD_TOP, _CHIN = 15.0, 180.0  # top of the hair and bottom of the chin
SOURCE_HEAD_PX = _CHIN - _HEAD_TOP  # what `Person.head_px` is measured against

# Limits beyond which a "person" stops looking like (or being detected as) a face.
MAX_ROTATION_DEG = 10.0


@dataclass(frozen=True, slots=True)
class Person:
    """One look of the source face: what makes two pasted copies seem to be different people.

    `head_px` is the height from the top of the hair to the chin in the output (the face box is
    0.61 of it). `gain` scales brightness, `contrast` stretches around the face's mean, `gamma`
    above 1 lifts the mid-tones (out = in ** (1 / gamma)), `tint` multiplies the B, G, R
    channels, `rotation_deg` tilts the head in the image plane (positive is counter-clockwise
    on screen). The instance is hashable, so its rendered sprite is cached.
    """

    appearance_id: int
    head_px: float
    mirror: bool = False
    gain: float = 1.0
    contrast: float = 1.0
    gamma: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    rotation_deg: float = 0.0

    def __post_init__(self) -> None:
        for name in ("head_px", "gain", "contrast", "gamma"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if abs(self.rotation_deg) > MAX_ROTATION_DEG:
            raise ValueError(
                f"rotation_deg {self.rotation_deg} is beyond ±{MAX_ROTATION_DEG}: BlazeFace"
                " boxes stop matching an upright ground-truth box"
            )

    @property
    def scale(self) -> float:
        """Output pixels per source pixel."""
        return self.head_px / SOURCE_HEAD_PX

    @property
    def face_size(self) -> tuple[float, float]:
        """Width and height of the ground-truth face box in output pixels."""
        return ((_FACE[2] - _FACE[0]) * self.scale, (_FACE[3] - _FACE[1]) * self.scale)


@dataclass(frozen=True, slots=True)
class Placement:
    """A person in one frame: `center` is where the centre of the face box lands (pixels).

    `alpha` below 1 fades the whole head, for people who appear or vanish inside the frame.
    """

    person: Person
    center: tuple[float, float]
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class FaceTruth:
    """Where a placed face is: the box a perfect detector would report, unclipped."""

    appearance_id: int
    box: PixelBox
    alpha: float = 1.0

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    def clipped(self, width: int, height: int) -> PixelBox:
        """The part of the box inside a width x height frame (what a detector can see)."""
        x0, y0, x1, y1 = self.box
        return (
            min(max(x0, 0.0), width),
            min(max(y0, 0.0), height),
            min(max(x1, 0.0), width),
            min(max(y1, 0.0), height),
        )

    def fully_visible(self, width: int, height: int) -> bool:
        """Whole face inside the frame and not faded: the frames recall is measured on."""
        x0, y0, x1, y1 = self.box
        return self.alpha >= 1.0 and x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height


# ----------------------------------------------------------------------------- source head


@dataclass(frozen=True, slots=True)
class _Sprite:
    """A rendered head: colour and matte at some scale, and where the face centre is in it."""

    bgr: FloatImage  # h x w x 3 in [0, 255]
    alpha: FloatImage  # h x w in [0, 1]
    face_center: tuple[float, float]  # in sprite pixels


@lru_cache(maxsize=1)
def _source_head() -> _Sprite:
    """Cut the head out of the astronaut photo once.

    GrabCut, seeded with an ellipse around the hair and a sure-foreground core on the face,
    follows the hair outline so no grey studio backdrop travels with the head; the matte is
    then limited to head-and-neck ellipses, faded out towards the collar and feathered so the
    paste has no hard edge (a hard edge would give the detector an easy, unrealistic cue).
    """
    from skimage import data  # imported here: only media tooling needs scikit-image

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    x0, y0, x1, y1 = _CROP
    crop = np.ascontiguousarray(photo[y0:y1, x0:x1])
    height, width = crop.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx += x0
    yy += y0
    head = ((xx - 227.0) / 79.0) ** 2 + ((yy - 100.0) / 90.0) ** 2 <= 1.0
    neck = ((xx - 225.0) / 38.0) ** 2 + ((yy - 195.0) / 32.0) ** 2 <= 1.0
    core = ((xx - 225.0) / 48.0) ** 2 + ((yy - 125.0) / 55.0) ** 2 <= 1.0
    allowed = head | neck
    labels = np.full((height, width), cv2.GC_BGD, np.uint8)
    labels[allowed] = cv2.GC_PR_FGD
    labels[core | neck] = cv2.GC_FGD
    # Below the jaw only the neck belongs to her: the suit's collar ring is background.
    labels[(yy >= 150) & ((xx < 188) | (xx > 265)) & ~neck] = cv2.GC_BGD
    cv2.setRNGSeed(0)  # GrabCut's k-means start: fixed, so the matte is reproducible
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    cv2.grabCut(crop, labels, (0, 0, 0, 0), bgd_model, fgd_model, 8, cv2.GC_INIT_WITH_MASK)
    matte = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)) & allowed
    alpha = matte.astype(np.float32)
    alpha = cv2.morphologyEx(alpha, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.8)
    alpha *= np.clip((y1 - 4.0 - yy) / 22.0, 0.0, 1.0)  # neck fades out instead of ending
    face_center = ((_FACE[0] + _FACE[2]) / 2.0 - x0, (_FACE[1] + _FACE[3]) / 2.0 - y0)
    return _Sprite(crop.astype(np.float32), alpha.astype(np.float32), face_center)


@lru_cache(maxsize=256)
def _render(person: Person) -> _Sprite:
    """Relight, tint, mirror and scale the source head for one person (cached per person)."""
    source = _source_head()
    bgr = source.bgr / 255.0
    weight = source.alpha[..., None]
    mean = (bgr * weight).sum(axis=(0, 1)) / max(float(weight.sum()), 1.0)
    bgr = (bgr - mean) * person.contrast + mean
    bgr = np.clip(bgr * person.gain, 0.0, 1.0) ** (1.0 / person.gamma)
    bgr = np.clip(bgr * np.asarray(person.tint, np.float32), 0.0, 1.0) * 255.0
    alpha = source.alpha
    cx, cy = source.face_center
    if person.mirror:
        bgr, alpha = bgr[:, ::-1], alpha[:, ::-1]
        cx = bgr.shape[1] - cx
    scale = person.scale
    size = (max(1, round(bgr.shape[1] * scale)), max(1, round(bgr.shape[0] * scale)))
    # INTER_AREA when shrinking avoids aliasing that a warp alone would add.
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    bgr = np.asarray(
        cv2.resize(np.ascontiguousarray(bgr, np.float32), size, interpolation=interpolation),
        np.float32,
    )
    alpha = np.asarray(
        cv2.resize(np.ascontiguousarray(alpha), size, interpolation=interpolation), np.float32
    )
    fx = cx * size[0] / source.bgr.shape[1]
    fy = cy * size[1] / source.bgr.shape[0]
    return _Sprite(np.clip(bgr, 0, 255), np.clip(alpha, 0.0, 1.0), (fx, fy))


def head_extent(person: Person, center: tuple[float, float]) -> PixelBox:
    """The box the pasted head (hair to neck, where the matte is not empty) covers.

    Layout code keeps these apart so no head hides part of another face. Rotation is covered
    by the box of the rotated corners.
    """
    sprite = _render(person)
    rows = np.flatnonzero(sprite.alpha.max(axis=1) > 0.02)
    cols = np.flatnonzero(sprite.alpha.max(axis=0) > 0.02)
    fx, fy = sprite.face_center
    corners = np.array(
        [
            [cols[0] - fx, rows[0] - fy],
            [cols[-1] + 1 - fx, rows[0] - fy],
            [cols[0] - fx, rows[-1] + 1 - fy],
            [cols[-1] + 1 - fx, rows[-1] + 1 - fy],
        ]
    )
    rotated = corners @ _rotation(person.rotation_deg).T
    return (
        float(rotated[:, 0].min() + center[0]),
        float(rotated[:, 1].min() + center[1]),
        float(rotated[:, 0].max() + center[0]),
        float(rotated[:, 1].max() + center[1]),
    )


def _rotation(degrees: float) -> npt.NDArray[np.float64]:
    """2 x 2 matrix turning image vectors counter-clockwise as seen on screen (y is down)."""
    t = math.radians(degrees)
    return np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])


def face_box(person: Person, center: tuple[float, float]) -> PixelBox:
    """Ground-truth face box: upright, the face's own size, centred where the face centre lands.

    For a tilted head this is deliberately not the bounding box of the rotated square: BlazeFace
    reports an upright box about the size of the face, so this matches it best by IoU.
    """
    width, height = person.face_size
    cx, cy = center
    return (cx - width / 2.0, cy - height / 2.0, cx + width / 2.0, cy + height / 2.0)


# ----------------------------------------------------------------------------- compositing


def compose(background: BGRImage, placements: list[Placement]) -> tuple[BGRImage, list[FaceTruth]]:
    """Paste people onto a copy of `background`, in order (later ones in front).

    Returns the frame and, per placement in the same order, the ground-truth face box. Only a
    region around each head is warped, so a frame with five people costs a few milliseconds.
    """
    frame = background.astype(np.float32)
    height, width = frame.shape[:2]
    truths: list[FaceTruth] = []
    for placement in placements:
        person = placement.person
        truths.append(
            FaceTruth(person.appearance_id, face_box(person, placement.center), placement.alpha)
        )
        if placement.alpha <= 0.0:
            continue
        x0, y0, x1, y1 = head_extent(person, placement.center)
        left, top = max(0, math.floor(x0) - 2), max(0, math.floor(y0) - 2)
        right, bottom = min(width, math.ceil(x1) + 2), min(height, math.ceil(y1) + 2)
        if right <= left or bottom <= top:
            continue  # entirely outside the frame
        sprite = _render(person)
        # Sprite -> ROI: rotate about the face centre, then move it to the placement.
        rot = _rotation(person.rotation_deg)
        fx, fy = sprite.face_center
        offset = np.array([placement.center[0] - left, placement.center[1] - top])
        matrix = np.hstack([rot, (offset - rot @ np.array([fx, fy]))[:, None]])
        size = (right - left, bottom - top)
        colour = cv2.warpAffine(
            sprite.bgr, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        matte = cv2.warpAffine(
            sprite.alpha, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        matte = (matte * placement.alpha)[..., None]
        roi = frame[top:bottom, left:right]
        roi *= 1.0 - matte
        roi += colour * matte
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8), truths


# ----------------------------------------------------------------------------- background


def store_background(frame_size: tuple[int, int] = (640, 480), seed: int = 0) -> BGRImage:
    """A static store entrance: street on the left, a door frame in the middle, shelves right.

    Drawn, not photographed, so it holds no faces and no licence. A little fixed grain and
    lighting keeps it from looking flat, yet it is static, so a video codec spends almost
    nothing on it. Geometry is relative to the frame size.
    """
    width, height = frame_size
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    horizon = int(height * 0.60)
    door_l, door_r = int(width * 0.44), int(width * 0.56)

    def px(fx: float, fy: float) -> tuple[int, int]:
        return (round(fx * width), round(fy * height))

    # Outside: sky, a facade across the street with windows, and pavement slabs.
    img[: int(height * 0.22), :door_l] = (215, 200, 185)
    img[int(height * 0.22) : horizon, :door_l] = (150, 170, 190)
    # Windows as tall, irregular panes: a regular grid of dark blobs reads as eyes and mouth
    # to the short-range model (it found a "face" in a 3 x 3 grid of windows).
    for wx, ww in ((0.03, 0.07), (0.15, 0.05), (0.25, 0.11)):
        cv2.rectangle(img, px(wx, 0.26), px(wx + ww, 0.55), (105, 95, 85), -1)
        cv2.rectangle(img, px(wx, 0.26), px(wx + ww, 0.55), (200, 205, 210), 2)
        cv2.line(img, px(wx, 0.40), px(wx + ww, 0.40), (200, 205, 210), 2)
    img[horizon:, :door_l] = (160, 162, 165)
    for fy in np.linspace(0.60, 1.0, 6)[1:-1]:
        cv2.line(img, (0, int(fy * height)), (door_l, int(fy * height)), (135, 137, 140), 2)
    for fx in np.arange(0.0, 0.44, 0.09):
        cv2.line(img, (int(fx * width), horizon), (int((fx - 0.05) * width), height), (135,) * 3, 2)

    # Inside: a warm wall, shelving with boxes of goods, a tiled floor.
    img[:horizon, door_r:] = (200, 200, 175)
    img[horizon:, door_r:] = (170, 172, 168)
    for fy in np.linspace(0.60, 1.0, 6)[1:-1]:
        cv2.line(img, (door_r, int(fy * height)), (width, int(fy * height)), (140, 142, 138), 1)
    for fx in np.arange(0.60, 1.0, 0.08):
        cv2.line(img, (int(fx * width), horizon), (int((fx + 0.04) * width), height), (150,) * 3, 1)
    shelf_x0, shelf_x1 = 0.62, 0.98
    cv2.rectangle(img, px(shelf_x0, 0.10), px(shelf_x1, 0.60), (60, 85, 110), -1)
    palette = np.array(
        [
            (40, 60, 200),
            (200, 120, 40),
            (60, 170, 60),
            (40, 190, 220),
            (160, 60, 140),
            (220, 220, 210),
        ],
        np.float32,
    )
    for board in (0.22, 0.36, 0.50):
        x = shelf_x0 + 0.01
        while x < shelf_x1 - 0.03:
            box_w = float(rng.uniform(0.025, 0.05))
            box_h = float(rng.uniform(0.06, 0.10))
            colour = palette[rng.integers(len(palette))] * float(rng.uniform(0.75, 1.0))
            cv2.rectangle(img, px(x, board - box_h), px(x + box_w, board), colour.tolist(), -1)
            x += box_w + 0.006
        cv2.rectangle(img, px(shelf_x0, board), px(shelf_x1, board + 0.018), (90, 120, 150), -1)

    # The entrance: a dark aluminium door frame, a glass door folded open, a mat.
    img[:horizon, door_l:door_r] = (170, 185, 195)
    img[horizon:, door_l:door_r] = (120, 115, 110)
    cv2.rectangle(img, px(0.42, 0.02), px(0.58, 0.07), (55, 55, 60), -1)
    cv2.rectangle(img, px(0.42, 0.02), px(0.445, 0.62), (55, 55, 60), -1)
    cv2.rectangle(img, px(0.555, 0.02), px(0.58, 0.62), (55, 55, 60), -1)
    glass = img[int(height * 0.07) : int(height * 0.60), door_r : int(width * 0.60)]
    glass[:] = glass * 0.7 + np.array((200, 190, 170), np.float32) * 0.3
    cv2.rectangle(img, px(0.40, 0.64), px(0.60, 0.74), (70, 80, 70), -1)

    # Soft light from the window side and a fixed grain, blurred so it compresses well.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 1.05 - 0.18 * ((xx / width - 0.35) ** 2 + (yy / height - 0.4) ** 2)
    grain = cv2.GaussianBlur(rng.normal(0.0, 4.0, (height, width)).astype(np.float32), (0, 0), 1.0)
    img = img * light[..., None] + grain[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- test scenes


def varied_person(appearance_id: int, head_px: float, rng: np.random.Generator) -> Person:
    """A person with mild random variations that the detectors are known to tolerate.

    Ranges are kept narrower than `Person` allows: a tilt of 6° or a gamma of 1.15 already cost
    the full-range model a few percent of recall on heads under ~140 px.
    """
    return Person(
        appearance_id=appearance_id,
        head_px=head_px,
        mirror=bool(rng.integers(2)),
        gain=float(rng.uniform(0.9, 1.08)),
        contrast=float(rng.uniform(0.92, 1.08)),
        gamma=float(rng.uniform(0.92, 1.1)),
        tint=(
            float(rng.uniform(0.92, 1.05)),
            float(rng.uniform(0.96, 1.04)),
            float(rng.uniform(0.95, 1.06)),
        ),
        rotation_deg=float(rng.uniform(-4.0, 4.0)),
    )


def boxes_apart(a: PixelBox, b: PixelBox, gap: float) -> bool:
    """True if the boxes are at least `gap` pixels apart along x or along y."""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def scene_with_faces(
    n_faces: int,
    head_px: float,
    frame_size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> tuple[BGRImage, list[PixelBox]]:
    """A frame with `n_faces` fully visible, non-overlapping people and their face boxes.

    Positions and looks are drawn from `seed`, so a test gets the same frame every run.
    Boxes are pixel (x0, y0, x1, y1), sorted left to right then top to bottom. Raises
    ValueError when that many heads of that size cannot fit apart in the frame.
    """
    if n_faces < 0:
        raise ValueError(f"n_faces must be >= 0, got {n_faces}")
    width, height = frame_size
    rng = np.random.default_rng(seed)
    background = store_background(frame_size, seed=seed)
    people = [varied_person(index + 1, head_px, rng) for index in range(n_faces)]
    # Lay heads out on a grid of cells each big enough for any of them, pick cells at random
    # and jitter within the slack: always succeeds when the grid fits, never overlaps.
    extents = [head_extent(person, (0.0, 0.0)) for person in people]
    cell_w = max((e[2] - e[0] for e in extents), default=0.0) + 4.0
    cell_h = max((e[3] - e[1] for e in extents), default=0.0) + 4.0
    grids = [
        (cols, rows)
        for cols in range(1, max(n_faces, 1) + 1)
        for rows in range(1, max(n_faces, 1) + 1)
        if cols * rows >= n_faces and cols * cell_w <= width and rows * cell_h <= height
    ]
    if not grids:
        raise ValueError(
            f"cannot fit {n_faces} heads of {head_px} px apart in a {width}x{height} frame"
        )
    cols, rows = min(grids, key=lambda g: (g[0] * g[1], abs(g[0] / g[1] - width / height)))
    slack_x = (width - cols * cell_w) / cols
    slack_y = (height - rows * cell_h) / rows
    cells = rng.permutation(cols * rows)[:n_faces]
    placements: list[Placement] = []
    for person, extent, cell in zip(people, extents, cells, strict=True):
        col, row = divmod(int(cell), rows)
        left = col * (cell_w + slack_x) + float(rng.uniform(0.0, slack_x)) + 2.0
        top = row * (cell_h + slack_y) + float(rng.uniform(0.0, slack_y)) + 2.0
        # extent is relative to the face centre, so shift it to the cell's corner.
        placements.append(Placement(person, (left - extent[0], top - extent[1])))
    image, truths = compose(background, placements)
    boxes = sorted((t.box for t in truths), key=lambda b: (b[0], b[1]))
    return image, boxes


def iou(a: PixelBox, b: PixelBox) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (the tracker's own measure)."""
    return box_iou(a, b)


def match(
    truth: list[PixelBox], detections: list[PixelBox], threshold: float = 0.5
) -> list[int | None]:
    """For each true box, the index of the detection it matched (greedy by IoU), or None.

    One detection matches at most one true box, so a duplicate detection cannot inflate recall.
    """
    pairs = sorted(
        ((iou(t, d), ti, di) for ti, t in enumerate(truth) for di, d in enumerate(detections)),
        reverse=True,
    )
    result: list[int | None] = [None] * len(truth)
    used: set[int] = set()
    for value, ti, di in pairs:
        if value < threshold:
            break
        if result[ti] is None and di not in used:
            result[ti] = di
            used.add(di)
    return result


def main(argv: list[str] | None = None) -> int:
    """Write a preview PNG with the ground-truth boxes drawn, to eyeball a scene."""
    import argparse

    parser = argparse.ArgumentParser(description="Render a scene_with_faces() preview.")
    parser.add_argument("out", help="PNG file to write")
    parser.add_argument("--faces", type=int, default=4)
    parser.add_argument("--head-px", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    image, boxes = scene_with_faces(args.faces, args.head_px, seed=args.seed)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(image, (round(x0), round(y0)), (round(x1), round(y1)), (0, 255, 0), 1)
    cv2.imwrite(args.out, image)
    print(
        f"{args.out}: {len(boxes)} faces",
        *(f"({b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f})" for b in boxes),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
