"""`sensekit calibrate zones` end to end on a fixture picture: the real detector, the real config
editing, the preview PNG read back pixel by pixel."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from sensekit.calibration.preview import ZONE_ALPHA, zone_colour
from sensekit.cli import main
from sensekit.config import load_config
from tools.media.scene import PixelBox, scene_with_faces

WIDTH, HEIGHT = 640, 480
LEFT = "left=0,0;0.5,0;0.5,1;0,1"
RIGHT = "right=0.5,0;1,0;1,1;0.5,1"

CONFIG = """\
# The test shop's device. Installer notes: camera above the door.
site: shop1  # the shop's id
device: dev1
cameras:
  - name: door   # the entrance camera
    source: scene.png
    detector:
      model: short_range  # faces within 2 m
    zones:
      - name: old   # whole picture until calibrated
        polygon: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
{extra}aggregation:
  k_threshold: 5  # publish groups of 5 or more
"""


@pytest.fixture(scope="module")
def scene() -> tuple[npt.NDArray[np.uint8], list[PixelBox]]:
    image, boxes = scene_with_faces(3, head_px=200, frame_size=(WIDTH, HEIGHT), seed=0)
    return image, boxes


@pytest.fixture
def site(tmp_path: Path, scene: tuple[npt.NDArray[np.uint8], list[PixelBox]]) -> Path:
    cv2.imwrite(str(tmp_path / "scene.png"), scene[0])
    config = tmp_path / "site.yaml"
    config.write_text(CONFIG.format(extra=""))
    return config


def calibrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["calibrate", "zones", *args])
    out, err = capsys.readouterr()
    return code, out, err


def normalised_box(box: PixelBox, margin: float) -> str:
    """A --mask polygon around a pixel box, `margin` pixels wider, clipped to the picture."""
    x0, y0 = max(box[0] - margin, 0) / WIDTH, max(box[1] - margin, 0) / HEIGHT
    x1, y1 = min(box[2] + margin, WIDTH) / WIDTH, min(box[3] + margin, HEIGHT) / HEIGHT
    return f"{x0:.4f},{y0:.4f};{x1:.4f},{y0:.4f};{x1:.4f},{y1:.4f};{x0:.4f},{y1:.4f}"


def region(polygon: str, erode_px: int) -> npt.NDArray[np.bool_]:
    """Pixels well inside a normalised `x,y;x,y...` polygon (a negative margin: around it)."""
    points = np.array([[float(v) for v in p.split(",")] for p in polygon.split(";")])
    inside = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.fillPoly(inside, [np.round(points * [WIDTH, HEIGHT]).astype(np.int32)], 1)
    kernel = np.ones((2 * abs(erode_px) + 1,) * 2, np.uint8)
    inside = cv2.erode(inside, kernel) if erode_px >= 0 else cv2.dilate(inside, kernel)
    return inside.astype(bool)


def test_zones_and_masks_are_written_and_previewed(
    site: Path,
    scene: tuple[npt.NDArray[np.uint8], list[PixelBox]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    image, boxes = scene
    before = load_config(site)
    original = site.read_text()
    staff = normalised_box(boxes[-1], 12)  # the right-most face is in a staff area
    preview = site.parent / "check.png"

    code, out, err = calibrate(
        capsys, "--config", str(site), "--zone", LEFT, "--zone", RIGHT,
        "--mask", f"staff={staff}", "--preview", str(preview),
    )  # fmt: skip

    assert code == 0, err
    # the config: new zones and mask, everything else (comments included) as it was
    after = load_config(site)
    camera = after.cameras[0]
    assert [z.name for z in camera.zones] == ["left", "right"]
    assert camera.zones[1].polygon == [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]
    assert [m.name for m in camera.masks] == ["staff"]
    assert camera.masks[0].polygon[0] == tuple(float(v) for v in staff.split(";")[0].split(","))
    text = site.read_text()
    for line in original.splitlines():
        if "#" in line and "old" not in line:
            assert line in text, f"lost: {line!r}"
    unchanged = {"cameras"}
    assert after.model_dump(exclude=unchanged) == before.model_dump(exclude=unchanged)
    assert camera.model_dump(exclude={"zones", "masks"}) == before.cameras[0].model_dump(
        exclude={"zones", "masks"}
    )
    assert f"wrote 2 zone(s) and 1 mask(s) for camera door into {site}" in out

    # faces per zone: the truth boxes outside the mask, by centre
    expected = {"left": 0, "right": 0}
    for x0, _, x1, _ in boxes[:-1]:
        expected["left" if (x0 + x1) / 2 < WIDTH / 2 else "right"] += 1
    assert f"  left: {expected['left']}\n" in out
    assert f"  right: {expected['right']}\n" in out
    assert "  excluded by a mask: 0\n" in out

    # the preview: snapshot size, masked area black, zones tinted
    assert f"preview: {preview}" in out
    drawn = cv2.imread(str(preview))
    assert drawn is not None and drawn.shape == image.shape
    masked = region(staff, 3)
    assert np.mean(np.all(image[masked] == 0, axis=1)) < 0.01  # the scene is not black there
    assert np.mean(np.all(drawn[masked] == 0, axis=1)) > 0.95  # only the mask's label is not
    for index, polygon in enumerate((LEFT, RIGHT)):
        inside = region(polygon.split("=")[1], 3) & ~region(staff, -3)
        tint = np.asarray(zone_colour(index), np.float32)
        want = image[inside] * (1 - ZONE_ALPHA) + tint * ZONE_ALPHA
        close = np.all(np.abs(drawn[inside].astype(np.float32) - want) <= 1.0, axis=1)
        assert close.mean() > 0.8, f"zone {index} tinted on {close.mean():.0%} of its pixels"
    # and nothing besides the config and the preview was written
    assert sorted(p.name for p in site.parent.iterdir()) == ["check.png", "scene.png", "site.yaml"]


def test_faces_excluded_by_a_mask_and_too_small_ones_are_reported(
    tmp_path: Path,
    scene: tuple[npt.NDArray[np.uint8], list[PixelBox]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    image, boxes = scene
    cv2.imwrite(str(tmp_path / "scene.png"), image)
    site = tmp_path / "site.yaml"
    # 121 px faces, classified only from 130 px: counted but too small to classify
    site.write_text(CONFIG.format(extra="expression:\n  min_face_px: 130\n"))
    x0, y0, x1, y1 = boxes[1]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # a mask over the lower right quarter of the middle face: the face is still found from
    # its visible part, but its centre (its anchor) is masked, so it is dropped
    left, top, right, bottom = round(cx - 4), round(cy - 4), round(x1 + 30), round(y1 + 30)
    quarter = f"till={left},{top};{right},{top};{right},{bottom};{left},{bottom}"
    preview = tmp_path / "p.png"

    code, out, err = calibrate(
        capsys, "--config", str(site), "--pixels", "--zone", "all=0,0;640,0;640,480;0,480",
        "--mask", quarter, "--preview", str(preview),
    )  # fmt: skip

    assert code == 0, err
    assert "  all: 2 (2 too small to classify)\n" in out
    assert "  excluded by a mask: 1\n" in out
    assert load_config(site).cameras[0].zones[0].polygon[1] == (1.0, 0.0)
    # the excluded face is drawn crossed out in grey over its box
    drawn = cv2.imread(str(preview))
    around = (slice(round(y0) - 10, round(y1) + 10), slice(round(x0) - 10, round(x1) + 10))

    def grey(picture: npt.NDArray[np.uint8]) -> int:
        return int(np.count_nonzero(np.all(picture[around] == 128, axis=2)))

    assert grey(drawn) > 200 + grey(image)  # two diagonals and a box, 2 px wide


def test_without_zones_the_config_is_kept_and_checked(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = site.read_bytes()
    preview = site.parent / "p.png"
    code, out, err = calibrate(capsys, "--config", str(site), "--preview", str(preview))
    assert code == 0, err
    assert site.read_bytes() == original
    assert "unchanged" in out and "  old: 3\n" in out
    assert cv2.imread(str(preview)).shape == (HEIGHT, WIDTH, 3)


def test_masks_are_kept_unless_replaced_or_removed_explicitly(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert calibrate(capsys, "--config", str(site), "--mask", "till=0.9,0.9;1,0.9;1,1")[0] == 0
    assert calibrate(capsys, "--config", str(site), "--zone", LEFT)[0] == 0
    camera = load_config(site).cameras[0]
    assert [m.name for m in camera.masks] == ["till"]
    assert [z.name for z in camera.zones] == ["left"]
    assert calibrate(capsys, "--config", str(site), "--no-masks")[0] == 0
    assert load_config(site).cameras[0].masks == []


def test_dry_run_prints_the_new_config_and_writes_nothing(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = site.read_bytes()
    preview = site.parent / "p.png"
    code, out, err = calibrate(
        capsys, "--config", str(site), "--zone", LEFT, "--preview", str(preview), "--dry-run"
    )
    assert code == 0, err
    assert site.read_bytes() == original
    assert not preview.exists()
    assert "- name: left" in out and "# The test shop's device." in out
    assert "  left: 1\n" in out or "  left: 2\n" in out


def test_a_frame_from_a_video(
    tmp_path: Path,
    site: Path,
    scene: tuple[npt.NDArray[np.uint8], list[PixelBox]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    for _ in range(5):
        writer.write(np.zeros((HEIGHT, WIDTH, 3), np.uint8))  # nobody at first
    for _ in range(10):
        writer.write(scene[0])
    writer.release()
    code, out, _ = calibrate(capsys, "--config", str(site), "--video", str(video), "--at", "0")
    assert code == 0 and "  old: 0\n" in out
    code, out, _ = calibrate(capsys, "--config", str(site), "--video", str(video), "--at", "1")
    assert code == 0 and "  old: 3\n" in out and "at 1 s" in out
    code, _, err = calibrate(capsys, "--config", str(site), "--video", str(video), "--at", "9")
    assert code == 4 and "no frame at 9 s" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--image", "{dir}/notes.txt"], 4, "notes.txt: cannot decode it as an image"),
        (["--image", "{dir}/missing.png"], 4, "missing.png: no such image file"),
        (["--zone", "door=0,0;1,0"], 2, "--zone 'door=0,0;1,0': a polygon needs at least 3"),
        (["--zone", "door=0,0;1.5,0;1,1"], 2, "point (1.5, 0) is outside the picture"),
        (["--zone", "door=0,0;641,0;1,1", "--pixels"], 2, "outside the 640x480 picture"),
        (["--zone", "door=0,0;1,0;0,1;1,1"], 2, "cross or touch"),
        (["--zone", LEFT, "--mask", "left=0.6,0;1,0;1,1"], 2, "already used"),
        (["--camera", "back"], 2, "--camera back: no such camera in"),
        (["--zone", LEFT, "--preview", "{dir}/nowhere/p.png"], 2, "does not exist"),
        (["--zone", LEFT, "--preview", "{dir}/state/p.png"], 2, "inside the state directory"),
    ],
)
def test_bad_input_fails_clearly_and_leaves_the_config_alone(
    site: Path,
    private_state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    private_state_dir.mkdir()
    (site.parent / "notes.txt").write_text("not a picture")
    original = site.read_bytes()
    args = [a.format(dir=site.parent) for a in args]
    got, out, err = calibrate(capsys, "--config", str(site), *args)
    assert got == code, out + err
    assert message in err
    assert "Traceback" not in err
    assert site.read_bytes() == original
    assert sorted(p.name for p in site.parent.rglob("*.png")) == ["scene.png"]


def test_an_unreadable_camera_source_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(CONFIG.format(extra=""))  # scene.png is not there
    code, _, err = calibrate(capsys, "--config", str(site), "--zone", LEFT)
    assert code == 4 and "media file not found" in err and "scene.png" in err


def test_several_cameras_need_a_choice(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = site.read_text().replace(
        "aggregation:", "  - name: back\n    source: scene.png\naggregation:"
    )
    site.write_text(text)
    code, _, err = calibrate(capsys, "--config", str(site), "--zone", LEFT)
    assert code == 2 and "several cameras (door, back): choose one with --camera" in err
    code, _, err = calibrate(capsys, "--config", str(site), "--camera", "back", "--zone", RIGHT)
    assert code == 0, err
    cameras = load_config(site).cameras
    assert [z.name for z in cameras[1].zones] == ["right"]
    assert [z.name for z in cameras[0].zones] == ["old"]


def test_interactive_without_a_gui_says_what_to_do_instead(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    original = site.read_bytes()
    code, _, err = calibrate(capsys, "--config", str(site), "--interactive")
    assert code == 2
    assert "--zone NAME=x,y;x,y;x,y" in err
    if "GUI: NONE" in " ".join(cv2.getBuildInformation().split()):
        assert "opencv-python-headless" in err and "never both" in err
    assert site.read_bytes() == original
