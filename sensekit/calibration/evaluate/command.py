"""Measure the expression and voice models on labelled data and write a report.

Runs the int8 expression model on the FER2013 test split and the voice model recipe on EmoDB
(leave-one-speaker-out fold models, so every figure is speaker-independent), from a data folder
holding fer2013.npz and/or emodb/{labels.csv,wav/} (default: ../shared/data beside the
repository). Whichever part is present is evaluated.

Writes into --output (default ./reports/eval-YYYYmmdd-HHMMSS): report.json (every number),
report.md (tables), confusion matrices and reliability diagrams as PNG. Reports accuracy,
balanced accuracy, per-class precision/recall, float vs int8 agreement (when the float exports
are in the models folder) and calibration: the expected calibration error (ECE) before and
after temperature scaling, the temperature being fitted on held-out data (half of the FER2013
test split; other speakers for EmoDB).

--save-temperature writes the fitted temperatures into the models' sidecar JSON, tied to the
model file's SHA-256; the daemon then publishes calibrated probabilities. Needs matplotlib
(pip install 'sensekit[plots]').
"""

from __future__ import annotations

import argparse
from pathlib import Path

MIN_LIMIT = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        help="folder with fer2013.npz and/or emodb/ (default: ../shared/data beside the repository)",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        help="report folder (default: ./reports/eval-YYYYmmdd-HHMMSS)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="folder with the models and their sidecars (default: sensekit's bundled models)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"a class-stratified, seeded slice of about N items per data set (N >= {MIN_LIMIT})",
    )
    parser.add_argument("--only", choices=("face", "voice"), help="evaluate one model only")
    parser.add_argument(
        "--bins", type=int, default=15, help="confidence bins for the ECE (default 15)"
    )
    parser.add_argument(
        "--save-temperature",
        action="store_true",
        help="write the fitted temperatures into the evaluated models' sidecar JSON",
    )


def command_line(args: argparse.Namespace) -> str:
    """The options this run was given, as a command that reproduces it."""
    words = ["sensekit", "eval"]
    for flag, value in (
        ("--data", args.data),
        ("--models-dir", args.models_dir),
        ("--limit", args.limit),
        ("--only", args.only),
        ("--output", args.output),
    ):
        if value is not None:
            words += [flag, str(value)]
    if args.bins != 15:
        words += ["--bins", str(args.bins)]
    if args.save_temperature:
        words.append("--save-temperature")
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    import logging
    import time

    from sensekit.calibration.evaluate import plots
    from sensekit.calibration.evaluate.data import default_data_dir, find_parts
    from sensekit.errors import ConfigError
    from sensekit.logsetup import setup_logging
    from sensekit.runtime import models_dir

    setup_logging(args.log_level or "WARNING")
    log = logging.getLogger(__name__)
    if args.limit is not None and args.limit < MIN_LIMIT:
        raise ConfigError(
            [f"--limit must be at least {MIN_LIMIT} (both halves need data), got {args.limit}"]
        )
    if args.bins < 1:
        raise ConfigError([f"--bins must be positive, got {args.bins}"])
    data = args.data or default_data_dir()
    if data is None:
        raise ConfigError(
            ["no --data given and no ../shared/data beside the repository; pass --data DIR"]
        )
    parts = find_parts(data)
    models = args.models_dir or models_dir()
    plots.require()
    output = args.output or Path("reports") / time.strftime("eval-%Y%m%d-%H%M%S")

    from sensekit.calibration.evaluate.face import evaluate_face
    from sensekit.calibration.evaluate.report import summary, write_report
    from sensekit.calibration.evaluate.sidecar import save_temperature
    from sensekit.calibration.evaluate.voice import evaluate_voice

    started = time.perf_counter()
    skipped: dict[str, str] = {}
    face = voice = None
    if args.only == "voice":
        skipped["face"] = "--only voice"
    elif parts.fer is None:
        skipped["face"] = f"no {data / 'fer2013.npz'}"
    else:
        face = evaluate_face(parts.fer, models, args.limit, args.bins)
    if args.only == "face":
        skipped["voice"] = "--only face"
    elif parts.emodb is None:
        skipped["voice"] = f"no {data / 'emodb' / 'labels.csv'}"
    else:
        voice = evaluate_voice(parts.emodb, models, args.limit, args.bins)

    header = {
        "command": command_line(args),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "data": str(data),
        "models_dir": str(models),
        "limit": args.limit,
        "bins": args.bins,
    }
    report = write_report(output, header, face, voice, args.bins, skipped)

    saved: list[str] = []
    if args.save_temperature:
        from sensekit.audio.voice import MODEL_FILE as VOICE_MODEL
        from sensekit.vision.expression import MODEL_FILE as FACE_MODEL

        if face is not None:
            path = (models / FACE_MODEL).with_suffix(".json")
            save_temperature(path, face.temperature.to_json())
            saved.append(f"{path} (T {face.temperature.value:.3f})")
        if voice is not None:
            path = (models / VOICE_MODEL).with_suffix(".json")
            save_temperature(path, {h: t.to_json() for h, t in voice.temperatures.items()})
            values = ", ".join(f"{h} {t.value:.3f}" for h, t in voice.temperatures.items())
            saved.append(f"{path} (T {values})")
        if args.limit is not None:
            log.warning("temperatures saved from a --limit %d slice: rerun without it", args.limit)

    print(summary(report))
    for line in saved:
        print(f"temperature written to {line}")
    print(f"report: {output / 'report.md'} ({time.perf_counter() - started:.0f} s)")
    return 0
