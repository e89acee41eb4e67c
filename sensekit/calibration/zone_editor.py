"""Zones and masks as the installer draws them: the shapes, their checks, and the editor's state.

Pure Python, no OpenCV and no terminal: the interactive window (zone_window.py) only forwards
clicks and keys here and draws what this holds, and the non-interactive `--zone NAME=x,y;...`
form goes through the same checks. That keeps every rule a polygon must obey (at least three
points, inside the picture, edges that do not cross, a name that can be an MQTT topic level,
unique names) in one place, tested without a display.

Coordinates are normalised (0..1, origin top-left, as the config stores them). Pixel input is
divided by the snapshot's size before anything else sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from sensekit.config import NAME_PATTERN

Point = tuple[float, float]

DECIMALS = 4
"""Normalised coordinates are rounded to this many decimals: 1/10000 of the width is below a
pixel on any camera we support, and the config stays readable."""


class Kind(StrEnum):
    ZONE = "zone"
    MASK = "mask"


@dataclass(frozen=True, slots=True)
class Shape:
    """A named polygon: a zone (people counted together) or a mask (never analysed)."""

    kind: Kind
    name: str
    points: tuple[Point, ...]

    def as_config(self) -> dict[str, object]:
        """The entry as it goes into `cameras[i].zones` / `.masks`."""
        return {"name": self.name, "polygon": [[x, y] for x, y in self.points]}


class ShapeError(ValueError):
    """A polygon or name the config would reject, or that would make no sense as a zone."""


# ----------------------------------------------------------------------------- geometry


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_touch(a: Point, b: Point, c: Point, d: Point) -> bool:
    """True when segment ab and segment cd share at least one point (crossing or touching)."""
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True  # a proper crossing
    return (
        (d1 == 0 and _on_segment(a, c, d))
        or (d2 == 0 and _on_segment(b, c, d))
        or (d3 == 0 and _on_segment(c, a, b))
        or (d4 == 0 and _on_segment(d, a, b))
    )


def polygon_area(points: tuple[Point, ...] | list[Point]) -> float:
    """Unsigned area (shoelace)."""
    total = 0.0
    for i, (x1, y1) in enumerate(points):
        x2, y2 = points[(i + 1) % len(points)]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0


def polygon_problem(points: tuple[Point, ...] | list[Point]) -> str | None:
    """Why these normalised points are not a usable polygon, or None when they are.

    A self-intersecting polygon ("bow tie") is refused: ray casting would count its crossed
    part as outside, which is never what the installer drew.
    """
    if len(points) < 3:
        return f"a polygon needs at least 3 points, got {len(points)}"
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            return f"point ({x:g}, {y:g}) is outside the picture (0..1)"
    if len(set(points)) != len(points):
        repeated = next(p for p in points if points.count(p) > 1)
        return f"point ({repeated[0]:g}, {repeated[1]:g}) is given twice"
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a vertex by construction
            if segments_touch(*edges[i], *edges[j]):
                return (
                    f"edge {i + 1} and edge {j + 1} cross or touch: give the points in order "
                    "around the area, without the outline crossing itself"
                )
    if polygon_area(points) < 1e-6:
        return "the points lie on one line: the polygon has no area"
    return None


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a zone or mask (it becomes an MQTT topic level), or None."""
    if not re.fullmatch(NAME_PATTERN, name):
        return (
            f"name {name!r} is not allowed: use letters, digits, '_', '.' or '-', starting "
            "with a letter or digit, at most 63 characters"
        )
    return None


def make_shape(
    kind: Kind, name: str, points: list[Point] | tuple[Point, ...], taken: set[str]
) -> Shape:
    """A checked shape with rounded coordinates; raises ShapeError saying what is wrong."""
    problem = name_problem(name)
    if problem is None and name in taken:
        problem = f"name {name!r} is already used"
    rounded = tuple((round(float(x), DECIMALS), round(float(y), DECIMALS)) for x, y in points)
    problem = problem or polygon_problem(rounded)
    if problem:
        raise ShapeError(problem)
    return Shape(kind, name, rounded)


# ----------------------------------------------------------------------------- argument form


@dataclass(frozen=True, slots=True)
class ShapeArgument:
    """`--zone NAME=x,y;x,y;...` as typed, parsed but not yet checked against a picture."""

    option: str  # "--zone" or "--mask": error messages name the argument as typed
    text: str
    kind: Kind
    name: str
    points: tuple[Point, ...]

    def to_shape(self, size: tuple[int, int] | None, taken: set[str]) -> Shape:
        """Normalised and checked. `size` (width, height) means the points are pixels of a
        picture of that size; None means they are already normalised."""
        points = self.points
        if size is not None:
            width, height = size
            for x, y in points:
                if not (0.0 <= x <= width and 0.0 <= y <= height):
                    raise ShapeError(
                        f"{self.option} {self.text!r}: point ({x:g}, {y:g}) is outside the "
                        f"{width}x{height} picture"
                    )
            points = tuple((x / width, y / height) for x, y in points)
        try:
            return make_shape(self.kind, self.name, points, taken)
        except ShapeError as exc:
            hint = "" if size is not None else " (give pixel coordinates with --pixels)"
            outside = "outside the picture" in str(exc)
            raise ShapeError(
                f"{self.option} {self.text!r}: {exc}{hint if outside else ''}"
            ) from None


def parse_shape_argument(option: str, text: str) -> ShapeArgument:
    """Parse `NAME=x,y;x,y;x,y`; raises ShapeError naming the argument."""
    kind = Kind.MASK if option == "--mask" else Kind.ZONE
    form = f"{option} NAME=x,y;x,y;x,y"
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ShapeError(f"{option} {text!r}: expected {form}")
    points: list[Point] = []
    for index, pair in enumerate(p for p in rest.split(";") if p.strip()):
        parts = pair.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ShapeError(
                f"{option} {text!r}: point {index + 1} {pair.strip()!r} is not 'x,y' "
                f"(expected {form})"
            ) from None
    problem = name_problem(name)
    if problem:
        raise ShapeError(f"{option} {text!r}: {problem}")
    if len(points) < 3:
        raise ShapeError(f"{option} {text!r}: a polygon needs at least 3 points, got {len(points)}")
    return ShapeArgument(option, text, kind, name, tuple(points))


def shapes_from_arguments(
    arguments: list[ShapeArgument], size: tuple[int, int] | None
) -> list[Shape]:
    """Check every argument; names must be unique across zones and masks."""
    taken: set[str] = set()
    shapes = []
    for argument in arguments:
        shape = argument.to_shape(size, taken)
        taken.add(shape.name)
        shapes.append(shape)
    return shapes


# ----------------------------------------------------------------------------- the editor


class EditorState(StrEnum):
    EDITING = "editing"
    SAVED = "saved"
    QUIT = "quit"


KEY_HELP = (
    "click: add a point | Enter: close the polygon | m: zone/mask | u: undo point | "
    "d: delete last polygon | s: save | q/Esc: quit without saving"
)


@dataclass(slots=True)
class ZoneEditor:
    """What the installer has drawn so far, changed only by the events below.

    Every event returns the message to show (also kept in `message`). Nothing here draws or
    reads input; once `state` is SAVED, `zones` and `masks` are the result.
    """

    shapes: list[Shape] = field(default_factory=list)
    mode: Kind = Kind.ZONE
    draft: list[Point] = field(default_factory=list)
    state: EditorState = EditorState.EDITING
    message: str = KEY_HELP

    def __post_init__(self) -> None:
        self.shapes = list(self.shapes)  # the caller's list is not edited behind its back
        self.draft = list(self.draft)

    def _say(self, message: str) -> str:
        self.message = message
        return message

    @property
    def zones(self) -> list[Shape]:
        return [s for s in self.shapes if s.kind is Kind.ZONE]

    @property
    def masks(self) -> list[Shape]:
        return [s for s in self.shapes if s.kind is Kind.MASK]

    @property
    def editing(self) -> bool:
        return self.state is EditorState.EDITING

    def next_name(self) -> str:
        """The automatic name for the polygon being drawn: zone-N / mask-N, N first free."""
        taken = {s.name for s in self.shapes}
        n = len([s for s in self.shapes if s.kind is self.mode]) + 1
        while f"{self.mode.value}-{n}" in taken:
            n += 1
        return f"{self.mode.value}-{n}"

    def click(self, x: float, y: float) -> str:
        """Add a vertex at normalised (x, y); a click just outside the picture snaps to its
        edge (the window lets the pointer stray a pixel)."""
        if not self.editing:
            return self.message
        point = (
            round(min(max(float(x), 0.0), 1.0), DECIMALS),
            round(min(max(float(y), 0.0), 1.0), DECIMALS),
        )
        if self.draft and self.draft[-1] == point:
            return self._say("same point as the last one: ignored")
        self.draft.append(point)
        return self._say(
            f"{self.mode.value}: {len(self.draft)} point(s); Enter closes the polygon"
            if len(self.draft) >= 3
            else f"{self.mode.value}: {len(self.draft)} point(s); at least 3 are needed"
        )

    def close(self, name: str | None = None) -> str:
        """Close the polygon being drawn under `name` (blank or None: the automatic name).

        A polygon the config would refuse stays open, with the reason shown, so the installer
        can undo a point or choose another name instead of losing the whole outline.
        """
        if not self.editing:
            return self.message
        if not self.draft:
            return self._say("nothing to close: click to add points first")
        chosen = (name or "").strip() or self.next_name()
        try:
            shape = make_shape(self.mode, chosen, self.draft, {s.name for s in self.shapes})
        except ShapeError as exc:
            return self._say(f"not closed: {exc}")
        self.shapes.append(shape)
        self.draft = []
        return self._say(f"{shape.kind.value} {shape.name!r} added ({len(shape.points)} points)")

    def toggle_mode(self) -> str:
        """Zones and masks alternate; the polygon being drawn changes kind with the mode."""
        if not self.editing:
            return self.message
        self.mode = Kind.MASK if self.mode is Kind.ZONE else Kind.ZONE
        return self._say(f"now drawing a {self.mode.value}")

    def undo(self) -> str:
        """Remove the last point of the polygon being drawn."""
        if not self.editing:
            return self.message
        if not self.draft:
            return self._say("no point to undo (d deletes the last polygon)")
        self.draft.pop()
        return self._say(f"point removed; {len(self.draft)} left")

    def delete_last(self) -> str:
        """Delete the last closed polygon (zones and masks alike, most recent first)."""
        if not self.editing:
            return self.message
        if not self.shapes:
            return self._say("no polygon to delete")
        removed = self.shapes.pop()
        return self._say(f"{removed.kind.value} {removed.name!r} deleted")

    def save(self) -> str:
        """Finish with the polygons drawn. Refused while a polygon is half drawn: saving would
        silently drop it, and the installer would find the zone missing on site."""
        if not self.editing:
            return self.message
        if self.draft:
            return self._say(
                f"a {self.mode.value} is still open ({len(self.draft)} points): Enter closes "
                "it, u removes its points"
            )
        self.state = EditorState.SAVED
        return self._say(f"saved: {len(self.zones)} zone(s), {len(self.masks)} mask(s)")

    def quit(self) -> str:
        if not self.editing:
            return self.message
        self.state = EditorState.QUIT
        return self._say("quit without saving")

    def key(self, key: str, name: str | None = None) -> str:
        """Dispatch one key press (Enter is "\\r" or "\\n", Esc is "\\x1b"); `name` goes with
        Enter. Unknown keys only show the help."""
        actions = {
            "m": self.toggle_mode,
            "u": self.undo,
            "d": self.delete_last,
            "s": self.save,
            "q": self.quit,
            "\x1b": self.quit,
        }
        if key in ("\r", "\n"):
            return self.close(name)
        action = actions.get(key.lower() if len(key) == 1 else key)
        if action is None:
            return self._say(KEY_HELP) if self.editing else self.message
        return action()
