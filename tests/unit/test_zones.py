"""Zone membership in normalised coordinates."""

from __future__ import annotations

import numpy as np

from sensekit.config import Anchor, CameraConfig, ZoneConfig
from sensekit.types import Box
from sensekit.zones import Zone, ZoneMap, points_in_polygon

LEFT = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
RIGHT = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]


def zone_map(anchor: Anchor = Anchor.BOX_CENTER) -> ZoneMap:
    camera = CameraConfig(
        name="cam",
        zones=[ZoneConfig(name="left", polygon=LEFT), ZoneConfig(name="right", polygon=RIGHT)],
        anchor=anchor,
    )
    return ZoneMap.from_config(camera)


def test_points_in_a_concave_polygon() -> None:
    l_shape = np.array([[0, 0], [1, 0], [1, 0.4], [0.4, 0.4], [0.4, 1], [0, 1]], float)
    points = np.array([[0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8], [1.5, 0.5]])
    assert points_in_polygon(points, l_shape).tolist() == [True, True, True, False, False]


def test_a_face_on_the_shared_edge_belongs_to_exactly_one_zone() -> None:
    zones = zone_map()
    on_edge = Box(0.4, 0.4, 0.6, 0.6)  # centre exactly at x = 0.5
    (name,) = zones.assign([on_edge])
    assert name in ("left", "right")
    points = np.array([[0.5, 0.5]])
    hits = [points_in_polygon(points, np.array(p, float))[0] for p in (LEFT, RIGHT)]
    assert sum(hits) == 1


def test_assignment_uses_the_configured_anchor() -> None:
    # A face whose centre is in the upper half but whose bottom is in the lower half.
    camera = CameraConfig(
        name="cam",
        zones=[
            ZoneConfig(name="top", polygon=[(0, 0), (1, 0), (1, 0.5), (0, 0.5)]),
            ZoneConfig(name="bottom", polygon=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)]),
        ],
    )
    face = Box(0.4, 0.3, 0.6, 0.6)
    assert ZoneMap.from_config(camera).assign([face]) == ["top"]
    bottom = camera.model_copy(update={"anchor": Anchor.BOX_BOTTOM})
    assert ZoneMap.from_config(bottom).assign([face]) == ["bottom"]


def test_overlapping_zones_first_listed_wins_and_outside_is_none() -> None:
    zones = ZoneMap(
        [
            Zone("door", np.array([(0.4, 0.0), (0.6, 0.0), (0.6, 1.0), (0.4, 1.0)])),
            Zone("hall", np.array([(0.0, 0.0), (0.7, 0.0), (0.7, 1.0), (0.0, 1.0)])),
        ]
    )
    boxes = [Box(0.45, 0.4, 0.55, 0.5), Box(0.1, 0.4, 0.2, 0.5), Box(0.8, 0.4, 0.9, 0.5)]
    assert zones.assign(boxes) == ["door", "hall", None]


def test_a_camera_without_zones_has_one_full_frame_zone_named_after_it() -> None:
    zones = ZoneMap.from_config(CameraConfig(name="kiosk"))
    assert zones.names == ("kiosk",)
    corners = [Box(0.0, 0.0, 0.02, 0.02), Box(0.97, 0.97, 0.99, 0.99)]
    assert zones.assign(corners) == ["kiosk", "kiosk"]
