"""Draw a camera's zones and exclusion masks on a snapshot of its view, and check them.

Takes one picture from the configured camera (or from --image / --video), then either reads
the polygons from --zone NAME=x,y;x,y;x,y and --mask NAME=... (normalised 0..1 coordinates,
origin top-left; pixel coordinates of the snapshot with --pixels), or lets you click them in a
window with --interactive (needs a display and an OpenCV with window support). Zones are the
areas whose people are counted together; masks are areas no model ever sees (staff areas,
cash desks, a window onto the street). Without --zone, --mask or --interactive the config's
own zones and masks are kept and only checked.

It runs the camera's configured face detector on the masked snapshot and prints how many faces
fall in each zone. With --preview FILE it also writes a PNG: the snapshot with the masked areas
blacked out exactly as the models see them, the zones, and the faces found (excluded, or too
small to classify, marked), to check the result away from the device.

What is written: the camera's `zones` (and `masks`, when given) in the config file, in place,
keeping its comments (validated first; nothing is written if the result is invalid; --dry-run
prints the new file instead). The preview only where --preview says. The snapshot itself is
held in memory only and never written; nothing goes into the state directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from sensekit.calibration.preview import FaceMark
    from sensekit.calibration.snapshot import Snapshot
    from sensekit.calibration.zone_editor import Shape, ShapeArgument
    from sensekit.config import CameraConfig, Config
    from sensekit.types import Face


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="the device's YAML config")
    parser.add_argument(
        "--camera", help="which camera's zones to set (default: the only one, else required)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--image", help="draw on this picture of the camera's view instead of reading the camera"
    )
    source.add_argument(
        "--video", help="draw on a frame of this recording instead of reading the camera"
    )
    parser.add_argument(
        "--at",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --video: take the frame at this time (default: the first frame)",
    )
    parser.add_argument(
        "--zone",
        action="append",
        default=[],
        metavar="NAME=x,y;x,y;x,y",
        help="a zone polygon, at least 3 points in order around it (repeat for each zone; "
        "first listed wins where zones overlap). Replaces the camera's zones. Quote it: "
        "the ';' is special to the shell",
    )
    parser.add_argument(
        "--mask",
        action="append",
        default=[],
        metavar="NAME=x,y;x,y;x,y",
        help="an exclusion mask polygon, never analysed (repeat for each mask). Replaces the "
        "camera's masks; without --mask (or --no-masks) the configured masks are kept",
    )
    parser.add_argument(
        "--no-masks",
        action="store_true",
        help="remove all the camera's masks (masks are never dropped implicitly)",
    )
    parser.add_argument(
        "--pixels",
        action="store_true",
        help="--zone/--mask coordinates are pixels of the snapshot, not fractions 0..1",
    )
    parser.add_argument(
        "--interactive",
        action="store_true",
        help="click the polygons in a window (starts from the configured ones): Enter closes "
        "a polygon (name asked in the terminal), m zone/mask, u undo point, d delete last "
        "polygon, s save, q/Esc quit without saving",
    )
    parser.add_argument(
        "--preview",
        metavar="FILE",
        help="write the preview PNG here (it shows the snapshot: choose where it goes, not on "
        "the device; nothing is written without this option)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the config as it would be written; write neither it nor the preview",
    )


def _select_camera(config: Config, wanted: str | None, path: Path) -> int:
    from sensekit.errors import ConfigError

    names = [camera.name for camera in config.cameras]
    if not names:
        raise ConfigError([f"{path}: cameras: the config has no camera to set zones for"])
    if wanted is None:
        if len(names) > 1:
            raise ConfigError(
                [f"{path}: several cameras ({', '.join(names)}): choose one with --camera"]
            )
        return 0
    if wanted not in names:
        raise ConfigError(
            [f"--camera {wanted}: no such camera in {path} (cameras: {', '.join(names)})"]
        )
    return names.index(wanted)


def _parse_arguments(args: argparse.Namespace) -> list[ShapeArgument]:
    from sensekit.calibration.zone_editor import ShapeError, parse_shape_argument
    from sensekit.errors import ConfigError

    problems, parsed = [], []
    for option, texts in (("--zone", args.zone), ("--mask", args.mask)):
        for text in texts:
            try:
                parsed.append(parse_shape_argument(option, text))
            except ShapeError as exc:
                problems.append(str(exc))
    if args.no_masks and args.mask:
        problems.append("--no-masks and --mask contradict each other: give one of them")
    if args.interactive and (args.zone or args.mask or args.no_masks):
        problems.append(
            "--interactive draws the polygons in a window: give it without --zone/--mask/--no-masks"
        )
    if args.at and not args.video:
        problems.append("--at is a time in the --video recording: give --video too")
    if problems:
        raise ConfigError(problems)
    return parsed


def _check_shapes(arguments: list[ShapeArgument], size: tuple[int, int] | None) -> list[Shape]:
    from sensekit.calibration.zone_editor import ShapeError, shapes_from_arguments
    from sensekit.errors import ConfigError

    try:
        return shapes_from_arguments(arguments, size)
    except ShapeError as exc:
        raise ConfigError([str(exc)]) from None


def _preview_path(args: argparse.Namespace, config: Config) -> Path | None:
    """The installer's chosen preview file, checked before any work: the directory must exist
    and it must not be the state directory (where the daemon's data lives, never pictures)."""
    from sensekit.config import state_dir
    from sensekit.errors import ConfigError

    if not args.preview or args.dry_run:
        return None
    path = Path(args.preview)
    if path.suffix.lower() != ".png":
        raise ConfigError([f"--preview {path}: must be a .png file"])
    if not path.parent.resolve().is_dir():
        raise ConfigError([f"--preview {path}: directory {path.parent} does not exist"])
    state = state_dir(config).resolve()
    if path.resolve().is_relative_to(state):
        raise ConfigError(
            [f"--preview {path}: inside the state directory {state}; choose another place"]
        )
    return path


def _take_snapshot(args: argparse.Namespace, camera: CameraConfig) -> Snapshot:
    from sensekit.calibration import snapshot

    if args.image:
        return snapshot.from_image(Path(args.image))
    if args.video:
        return snapshot.from_video(Path(args.video), args.at)
    return snapshot.from_camera(camera)


def _detect(config: Config, camera: CameraConfig, masked: npt.NDArray[np.uint8]) -> list[Face]:
    """The camera's own detector, with its configured options, on the masked snapshot."""
    from sensekit.app import detector_options
    from sensekit.vision.detector import FaceDetector

    detector = FaceDetector(detector_options(camera, config.inference_threads))
    return detector.detect(masked)


def _report(marks: list[FaceMark], zone_names: list[str], camera: CameraConfig) -> list[str]:
    from sensekit.calibration.preview import anchor_name, faces_per_zone, gated_summary

    counts = faces_per_zone(marks, zone_names)
    detector = camera.detector
    lines = [
        f"faces on the snapshot (detector {detector.model.value}, score >= "
        f"{detector.score_threshold:g}, zone by {anchor_name(camera.anchor)}):"
    ]
    for name in zone_names:
        lines.append(f"  {name}: {counts[name]}{gated_summary(marks, name)}")
    lines.append(f"  excluded by a mask: {sum(1 for m in marks if m.excluded)}")
    lines.append(f"  in no zone: {sum(1 for m in marks if m.zone is None and not m.excluded)}")
    return lines


def run(args: argparse.Namespace) -> int:
    import sys

    import cv2

    from sensekit.app import face_gate
    from sensekit.calibration.config_edit import edit_config_text, update_config_file
    from sensekit.calibration.preview import (
        camera_shapes,
        exclusion_mask,
        inspect_faces,
        render_preview,
        zone_map,
    )
    from sensekit.calibration.zone_editor import Kind
    from sensekit.config import load_config
    from sensekit.errors import ConfigError
    from sensekit.logsetup import setup_logging

    setup_logging(args.log_level or "WARNING")
    config_path = Path(args.config)
    config = load_config(config_path)
    index = _select_camera(config, args.camera, config_path)
    camera = config.cameras[index]
    arguments = _parse_arguments(args)
    if not args.pixels:
        _check_shapes(arguments, None)  # fail on a typo before the camera is opened
    if args.interactive:
        from sensekit.calibration.zone_window import require_gui

        require_gui()
    preview_path = _preview_path(args, config)

    shot = _take_snapshot(args, camera)
    print(f"snapshot: {shot.origin}, {shot.size[0]}x{shot.size[1]}")
    zones, masks = camera_shapes(camera)
    changes: dict[tuple[str | int, ...], object] = {}
    if args.interactive:
        from sensekit.calibration.zone_editor import EditorState, ZoneEditor
        from sensekit.calibration.zone_window import run_window

        editor = run_window(shot.image, ZoneEditor(shapes=[*zones, *masks]))
        if editor.state is not EditorState.SAVED:
            print("quit without saving: the config is unchanged", file=sys.stderr)
            return 0
        zones, masks = editor.zones, editor.masks
        changes[("cameras", index, "zones")] = [z.as_config() for z in zones]
        changes[("cameras", index, "masks")] = [m.as_config() for m in masks]
    else:
        given = _check_shapes(arguments, shot.size if args.pixels else None)
        if args.zone:
            zones = [s for s in given if s.kind is Kind.ZONE]
            changes[("cameras", index, "zones")] = [z.as_config() for z in zones]
        if args.mask or args.no_masks:
            masks = [s for s in given if s.kind is Kind.MASK]
            changes[("cameras", index, "masks")] = [m.as_config() for m in masks]

    mask = exclusion_mask(masks)
    zmap = zone_map(zones, camera)
    detections = _detect(config, camera, mask.apply(shot.image))
    marks = inspect_faces(detections, zmap, mask, shot.size, face_gate(config, camera))
    zone_names = list(zmap.names)
    for line in _report(marks, zone_names, camera):
        print(line)

    if changes:
        if args.dry_run:
            text = config_path.read_text(encoding="utf-8")
            print(f"--dry-run: {config_path} would become (nothing written):")
            print(edit_config_text(text, changes, str(config_path)), end="")
            return 0
        update_config_file(config_path, changes)
        what = [f"{len(zones)} zone(s)"] if ("cameras", index, "zones") in changes else []
        if ("cameras", index, "masks") in changes:
            what.append(f"{len(masks)} mask(s)")
        print(f"wrote {' and '.join(what)} for camera {camera.name} into {config_path}")
    else:
        print(f"{config_path}: unchanged (kept the configured zones and masks)")

    if preview_path is not None:
        image = render_preview(
            shot.image, zones, masks, marks, zone_names, f"{camera.name}: {shot.origin}"
        )
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise ConfigError([f"--preview {preview_path}: could not encode the PNG"])
        try:
            preview_path.write_bytes(encoded.tobytes())
        except OSError as exc:
            raise ConfigError(
                [f"--preview {preview_path}: cannot write: {exc.strerror or exc}"]
            ) from None
        print(f"preview: {preview_path}")
    elif not args.dry_run:
        print("no preview written (give --preview FILE.png to get one)")
    return 0
