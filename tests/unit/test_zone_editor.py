"""The zone editor's state machine and the polygon rules behind --zone/--mask, without a display."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensekit.calibration.zone_editor import (
    KEY_HELP,
    EditorState,
    Kind,
    Shape,
    ShapeError,
    ZoneEditor,
    make_shape,
    parse_shape_argument,
    polygon_problem,
    segments_touch,
    shapes_from_arguments,
)
from sensekit.config import CameraConfig, MaskConfig, ZoneConfig

SQUARE = [(0.1, 0.1), (0.4, 0.1), (0.4, 0.4), (0.1, 0.4)]


def draw(editor: ZoneEditor, points: list[tuple[float, float]]) -> None:
    for x, y in points:
        editor.click(x, y)


# ----------------------------------------------------------------------------- geometry


def test_a_square_is_a_polygon() -> None:
    assert polygon_problem(SQUARE) is None


@pytest.mark.parametrize(
    ("points", "reason"),
    [
        ([(0.1, 0.1), (0.4, 0.1)], "at least 3 points"),
        ([(0.1, 0.1), (1.2, 0.1), (0.4, 0.4)], "outside the picture"),
        ([(0.1, -0.01), (0.5, 0.1), (0.4, 0.4)], "outside the picture"),
        ([(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)], "no area"),
        ([(0.1, 0.1), (0.4, 0.1), (0.4, 0.1), (0.1, 0.4)], "given twice"),
        # a bow tie: the second and fourth edges cross
        ([(0.1, 0.1), (0.4, 0.1), (0.1, 0.4), (0.4, 0.4)], "cross or touch"),
        # an edge doubling back onto the first one
        ([(0.1, 0.1), (0.5, 0.1), (0.3, 0.1), (0.3, 0.5)], "cross or touch"),
    ],
)
def test_unusable_polygons_are_refused_with_the_reason(
    points: list[tuple[float, float]], reason: str
) -> None:
    problem = polygon_problem(points)
    assert problem is not None and reason in problem


def test_a_concave_polygon_is_allowed() -> None:
    l_shape = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.4), (0.4, 0.4), (0.4, 1.0), (0.0, 1.0)]
    assert polygon_problem(l_shape) is None


def test_segments_touch_at_an_end_and_cross_in_the_middle() -> None:
    assert segments_touch((0, 0), (1, 1), (0, 1), (1, 0))  # crossing
    assert segments_touch((0, 0), (1, 0), (1, 0), (1, 1))  # shared end
    assert segments_touch((0, 0), (1, 0), (0.5, 0), (0.5, 1))  # T junction
    assert not segments_touch((0, 0), (1, 0), (0, 1), (1, 1))  # parallel
    assert not segments_touch((0, 0), (1, 0), (2, 0), (3, 0))  # collinear, apart


@given(
    st.lists(
        st.tuples(st.floats(0, 1, allow_nan=False), st.floats(0, 1, allow_nan=False)),
        min_size=3,
        max_size=8,
    )
)
def test_every_polygon_the_editor_accepts_the_config_accepts(
    points: list[tuple[float, float]],
) -> None:
    try:
        shape = make_shape(Kind.ZONE, "z", points, set())
    except ShapeError:
        return
    camera = CameraConfig(zones=[ZoneConfig.model_validate(shape.as_config())])
    assert camera.zones[0].polygon == list(shape.points)


# ----------------------------------------------------------------------------- --zone form


def test_parse_a_zone_argument() -> None:
    argument = parse_shape_argument("--zone", "door=0,0; 0.5,0 ;0.5,1;0,1")
    assert argument.kind is Kind.ZONE and argument.name == "door"
    assert argument.points == ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
    assert parse_shape_argument("--mask", "till=0,0;1,0;1,1").kind is Kind.MASK


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0,0;1,0;1,1", "expected --zone NAME="),
        ("=0,0;1,0;1,1", "expected --zone NAME="),
        ("door=0,0;1,0", "at least 3 points, got 2"),
        ("door=0,0;1;1,1", "point 2 '1' is not 'x,y'"),
        ("door=0,0;a,b;1,1", "point 2 'a,b' is not 'x,y'"),
        ("door=0,0;1,0,3;1,1", "is not 'x,y'"),
        ("my door=0,0;1,0;1,1", "not allowed"),
        ("a/b=0,0;1,0;1,1", "not allowed"),
    ],
)
def test_bad_zone_arguments_name_the_argument(text: str, reason: str) -> None:
    with pytest.raises(ShapeError) as error:
        parse_shape_argument("--zone", text)
    assert reason in str(error.value)
    assert f"--zone {text!r}" in str(error.value)


def test_normalised_coordinates_beyond_one_suggest_pixels() -> None:
    argument = parse_shape_argument("--zone", "door=0,0;640,0;640,480")
    with pytest.raises(ShapeError, match=r"outside the picture.*--pixels"):
        argument.to_shape(None, set())


def test_pixel_coordinates_are_divided_by_the_picture_size() -> None:
    argument = parse_shape_argument("--zone", "door=0,0;320,0;320,480;0,480")
    shape = argument.to_shape((640, 480), set())
    assert shape.points == ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
    with pytest.raises(ShapeError, match="outside the 640x480 picture"):
        parse_shape_argument("--zone", "door=0,0;641,0;320,480").to_shape((640, 480), set())


def test_coordinates_are_rounded_for_the_config() -> None:
    shape = make_shape(Kind.ZONE, "z", [(0.123456, 0.1), (0.9, 0.1), (0.5, 0.777777)], set())
    assert shape.points == ((0.1235, 0.1), (0.9, 0.1), (0.5, 0.7778))


def test_names_are_unique_across_zones_and_masks() -> None:
    arguments = [
        parse_shape_argument("--zone", "door=0,0;0.5,0;0.5,1"),
        parse_shape_argument("--mask", "door=0.6,0;1,0;1,1"),
    ]
    with pytest.raises(ShapeError, match=r"--mask 'door=.*already used"):
        shapes_from_arguments(arguments, None)


# ----------------------------------------------------------------------------- editor


def test_click_close_and_save_gives_the_zone() -> None:
    editor = ZoneEditor()
    assert editor.message == KEY_HELP
    draw(editor, SQUARE)
    assert "Enter closes" in editor.message
    assert editor.close("entrance") == "zone 'entrance' added (4 points)"
    assert editor.draft == []
    assert editor.save().startswith("saved: 1 zone(s), 0 mask(s)")
    assert editor.state is EditorState.SAVED
    assert editor.zones == [Shape(Kind.ZONE, "entrance", tuple(SQUARE))]


def test_automatic_names_count_per_kind_and_skip_taken_ones() -> None:
    editor = ZoneEditor(shapes=[Shape(Kind.ZONE, "zone-2", tuple(SQUARE))])
    assert editor.next_name() == "zone-3"  # zone-2 exists, so the second zone is zone-3
    editor.toggle_mode()
    assert editor.next_name() == "mask-1"
    draw(editor, [(0.5, 0.5), (0.9, 0.5), (0.9, 0.9)])
    editor.close("")
    assert editor.masks[0].name == "mask-1"


def test_mode_toggles_and_decides_the_kind_of_the_open_polygon() -> None:
    editor = ZoneEditor()
    draw(editor, SQUARE)
    assert editor.key("m") == "now drawing a mask"
    editor.key("\r", "till")
    assert editor.masks == [Shape(Kind.MASK, "till", tuple(SQUARE))]
    assert editor.zones == []
    editor.key("M")
    assert editor.mode is Kind.ZONE


def test_clicks_are_clamped_into_the_picture_and_repeats_ignored() -> None:
    editor = ZoneEditor()
    editor.click(-0.01, 1.02)
    assert editor.draft == [(0.0, 1.0)]
    assert "ignored" in editor.click(0.0, 1.0)
    assert editor.draft == [(0.0, 1.0)]


def test_undo_removes_points_then_says_there_is_nothing_left() -> None:
    editor = ZoneEditor()
    draw(editor, SQUARE[:2])
    editor.key("u")
    assert editor.draft == [SQUARE[0]]
    editor.key("u")
    assert editor.draft == []
    assert "no point to undo" in editor.key("u")


def test_delete_removes_the_last_polygon_of_either_kind() -> None:
    start = [Shape(Kind.ZONE, "a", tuple(SQUARE)), Shape(Kind.MASK, "b", tuple(SQUARE))]
    editor = ZoneEditor(shapes=start)
    assert editor.key("d") == "mask 'b' deleted"
    assert editor.key("d") == "zone 'a' deleted"
    assert editor.key("d") == "no polygon to delete"
    assert len(start) == 2  # the caller's list is untouched


def test_a_bad_polygon_stays_open_with_the_reason() -> None:
    editor = ZoneEditor()
    bow_tie = [(0.1, 0.1), (0.4, 0.1), (0.1, 0.4), (0.4, 0.4)]
    draw(editor, bow_tie)
    assert "not closed" in editor.close() and "cross" in editor.message
    assert editor.draft == bow_tie
    editor.undo()
    editor.undo()
    draw(editor, [(0.4, 0.4), (0.1, 0.4)])
    assert "added" in editor.close("fixed")
    assert editor.zones[0].points == tuple(SQUARE)


def test_too_few_points_and_nothing_to_close() -> None:
    editor = ZoneEditor()
    assert "nothing to close" in editor.close()
    draw(editor, SQUARE[:2])
    assert "at least 3" in editor.message
    assert "at least 3 points" in editor.close()
    assert len(editor.draft) == 2


def test_bad_and_duplicate_names_keep_the_polygon_open() -> None:
    editor = ZoneEditor(shapes=[Shape(Kind.MASK, "till", tuple(SQUARE))])
    draw(editor, [(0.5, 0.5), (0.9, 0.5), (0.9, 0.9)])
    assert "already used" in editor.close("till")
    assert "not allowed" in editor.close("the till")
    assert len(editor.draft) == 3
    assert "added" in editor.close("till-2")


def test_save_is_refused_while_a_polygon_is_open() -> None:
    editor = ZoneEditor()
    draw(editor, SQUARE)
    assert "still open" in editor.key("s")
    assert editor.state is EditorState.EDITING
    editor.key("\n")
    editor.key("s")
    assert editor.state is EditorState.SAVED


@pytest.mark.parametrize("key", ["q", "\x1b"])
def test_quit_ends_without_saving_and_freezes_the_editor(key: str) -> None:
    editor = ZoneEditor()
    draw(editor, SQUARE)
    editor.close("a")
    assert editor.key(key) == "quit without saving"
    assert editor.state is EditorState.QUIT
    # once ended, no event changes anything
    editor.click(0.5, 0.5)
    editor.key("d")
    editor.key("s")
    assert editor.state is EditorState.QUIT
    assert editor.draft == [] and len(editor.shapes) == 1


def test_unknown_keys_show_the_help() -> None:
    editor = ZoneEditor()
    editor.click(0.2, 0.2)
    assert editor.key("x") == KEY_HELP
    assert editor.draft == [(0.2, 0.2)]


def test_an_editor_seeded_from_the_config_saves_the_config_back() -> None:
    camera = CameraConfig(
        zones=[ZoneConfig(name="door", polygon=SQUARE)],
        masks=[MaskConfig(name="till", polygon=[(0.5, 0.5), (0.9, 0.5), (0.9, 0.9)])],
    )
    from sensekit.calibration.preview import camera_shapes

    zones, masks = camera_shapes(camera)
    editor = ZoneEditor(shapes=[*zones, *masks])
    editor.save()
    again = CameraConfig(
        zones=[ZoneConfig.model_validate(z.as_config()) for z in editor.zones],
        masks=[MaskConfig.model_validate(m.as_config()) for m in editor.masks],
    )
    assert again == camera
