"""Fit face gating to this site: which faces count as people, and which get classified.

Every face the detector finds is a person and is counted. Whether its expression is also read
depends on the gate: faces too small, too doubtful or too turned to classify well are counted
but published as `unclassified`. The right limits depend on the site (camera height, distance,
where people look), so this command measures them on a short recording of the site itself
(a minute or two with people walking through as usual): it runs the detector at a low
threshold with the tracker, the zones and the classifier, and fits

  detector.score_threshold  from the scores of long tracks vs detections that never became a
                            track (likely false positives);
  gate.min_face_px, gate.max_yaw_deg, gate.max_pitch_deg, gate.min_score
                            from how consistently a person's expression is read from frame to
                            frame, by face size, head turn and score, against large frontal
                            faces (a clear drop marks the limit; too few faces: the default).

It prints, per zone, how many faces it saw and what share would be classified or gated (and
why) under the fitted settings, and writes the settings into the config (comments kept) unless
--dry-run. `--json FILE` writes the same report and the fitted curves. No image, crop or track
is stored anywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sensekit.config import CameraConfig, Config
    from sensekit.types import VideoFrame


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="the device's YAML config")
    parser.add_argument(
        "--camera", help="which camera's settings to fit (default: the only one, else required)"
    )
    parser.add_argument(
        "--video",
        help="a recording of that camera's view (default: read the configured camera live)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="how much to analyse (live camera: default 120; recording: all of it)",
    )
    parser.add_argument("--json", help="also write the report and fitted curves to this file")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the report and the settings, but do not change the config",
    )


def run(args: argparse.Namespace) -> int:
    from sensekit.logsetup import setup_logging

    setup_logging(args.log_level or "WARNING")
    return calibrate_faces(
        config_path=Path(args.config),
        camera_name=args.camera,
        video=None if args.video is None else Path(args.video),
        seconds=args.seconds,
        json_path=None if args.json is None else Path(args.json),
        dry_run=args.dry_run,
    )


LIVE_SECONDS = 120.0


def _camera_index(config: Config, name: str | None, path: Path) -> int:
    from sensekit.errors import ConfigError

    names = [camera.name for camera in config.cameras]
    if not names:
        raise ConfigError([f"{path}:1: cameras: the config has no camera to calibrate"])
    if name is None:
        if len(names) > 1:
            raise ConfigError(
                [f"{path}:1: cameras: several cameras ({names}); pick one with --camera"]
            )
        return 0
    if name not in names:
        raise ConfigError([f"{path}:1: cameras: no camera named {name!r} (have {names})"])
    return names.index(name)


def _frames(
    camera: CameraConfig, video: Path | None, seconds: float | None
) -> tuple[Iterator[VideoFrame], float | None]:
    """Frames from the recording (media time) or the live camera (monotonic time), and the
    expected frame count when known (for the progress bar)."""
    import time

    import cv2

    from sensekit.sources.readers import open_reader
    from sensekit.types import VideoFrame

    source: str | int = camera.source if video is None else str(video)
    reader = open_reader(
        camera.name, source, camera.width, camera.height, camera.fps, camera.image_fps
    )
    live = video is None and reader.live
    limit = seconds if seconds is not None else (LIVE_SECONDS if live else None)
    total = None
    if video is not None and video.is_file():
        capture = cv2.VideoCapture(str(video))
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        capture.release()
        if count > 0:
            total = float(count)
            if limit is not None and reader.nominal_fps > 0:
                total = min(total, limit * reader.nominal_fps)

    def generate() -> Iterator[VideoFrame]:
        start = time.monotonic()
        index = 0
        first: float | None = None
        try:
            while True:
                item = reader.read()
                if item is None:
                    return
                image, media_time = item
                stamp = time.monotonic() if media_time is None else media_time
                if media_time is None and not reader.live:
                    stamp = index / max(camera.image_fps, 1e-6)
                first = stamp if first is None else first
                if limit is not None and stamp - first > limit:
                    return
                yield VideoFrame(camera.name, index, stamp, image)
                index += 1
                if live and limit is not None and time.monotonic() - start > limit:
                    return
        finally:
            reader.close()

    return generate(), total


def calibrate_faces(
    config_path: Path,
    camera_name: str | None,
    video: Path | None,
    seconds: float | None,
    json_path: Path | None,
    dry_run: bool,
) -> int:
    import json
    import sys

    from sensekit.app import face_gate
    from sensekit.calibration import face_gating
    from sensekit.calibration.config_edit import update_config_file
    from sensekit.config import load_config
    from sensekit.errors import SourceError
    from sensekit.privacy.masks import ExclusionMask
    from sensekit.tracker import Tracker
    from sensekit.vision.detector import DetectorOptions, FaceDetector
    from sensekit.vision.expression import ExpressionClassifier, ExpressionOptions
    from sensekit.zones import ZoneMap

    config = load_config(config_path)
    index = _camera_index(config, camera_name, config_path)
    camera = config.cameras[index]
    if video is not None and not video.is_file():
        raise SourceError(f"{video}: no such recording")
    current = camera.detector
    detector = FaceDetector(
        DetectorOptions(
            model=current.model,
            score_threshold=min(face_gating.SCORE_FLOOR, current.score_threshold),
            nms_iou_threshold=current.nms_iou_threshold,
            min_face_px=current.min_face_px,
            num_threads=config.inference_threads,
            model_path=current.model_path,
        )
    )
    classifier = ExpressionClassifier(
        ExpressionOptions(
            model_path=config.expression.model_path,
            crop_scale=config.expression.crop_scale,
            num_threads=config.inference_threads,
        )
    )
    tracker = Tracker(
        config.tracker.iou_threshold, config.tracker.max_gap_s, config.tracker.min_frames
    )
    zones = ZoneMap.from_config(camera)
    frames, total = _frames(camera, video, seconds)
    try:
        measurements = face_gating.measure(
            frames,
            detector,
            classifier,
            tracker,
            zones,
            ExclusionMask.from_config(camera),
            current.model,
            total=total,
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    if len(measurements) == 0:
        print(
            f"no face found in {measurements.frames} frames of camera {camera.name}: "
            "record while people walk through the view",
            file=sys.stderr,
        )
        return 1
    defaults = face_gate(config, camera)
    fit = face_gating.fit_gate(
        measurements, defaults, current.score_threshold, config.tracker.min_frames
    )
    gate = fit.gate(current.model)
    reports = face_gating.zone_report(measurements, zones.names, fit.score_threshold.value, gate)
    print(
        f"camera {camera.name}: {measurements.frames} frames, {len(measurements)} detections "
        f"at score >= {detector.options.score_threshold:g}, {fit.judged_tracks} tracks long "
        "enough to judge consistency"
    )
    print(face_gating.format_table(reports))
    print("fitted:")
    settings = {
        ("cameras", index, "detector", "score_threshold"): fit.score_threshold.value,
        ("cameras", index, "gate", "min_face_px"): round(fit.min_face_px.value),
        ("cameras", index, "gate", "min_score"): round(fit.min_score.value, 2),
        ("cameras", index, "gate", "max_yaw_deg"): float(fit.max_yaw_deg.value),
        ("cameras", index, "gate", "max_pitch_deg"): float(fit.max_pitch_deg.value),
    }
    for key, value in settings.items():
        print(f"  {'.'.join(str(part) for part in key)}: {value}")
    print("why:")
    for note in fit.notes:
        print(f"  {note}")
    if json_path is not None:
        document = {
            "camera": camera.name,
            "frames": measurements.frames,
            "seconds": round(measurements.seconds, 2),
            "detections": len(measurements),
            "settings": {".".join(str(p) for p in k): v for k, v in settings.items()},
            "fit": fit.as_dict(),
            "zones": [report.as_dict() for report in reports],
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    if dry_run:
        print(f"dry run: {config_path} not changed")
        return 0
    update_config_file(config_path, settings)
    print(f"updated {config_path} (comments kept)")
    return 0
