"""Learn this site's voice feature statistics from its speech (site normalisation).

Listen to the configured microphones for --seconds (or read --input, a recording made at the
site: staff talking at the counter is what it should hear) and learn the mean and spread of
each voice feature, so the voice model sees this microphone, room and language the way it saw
its training studio. Run it after `sensekit calibrate audio` (the voice-activity thresholds
decide which windows count as speech). Writes <state_dir>/voice-normalisation.json
(statistics only: no audio) once voice.normalisation.min_windows speech windows were heard;
exit 1 if fewer. The daemon uses them with voice.normalisation.mode `learn` (keeps adapting)
or `frozen` (fixed).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="the device's YAML config")
    parser.add_argument("--input", help="a WAV/FLAC/OGG recording of the site instead")
    parser.add_argument(
        "--seconds", type=float, default=600.0, help="how long to listen (default 600)"
    )


def run(args: argparse.Namespace) -> int:
    from sensekit.calibration.speech import calibrate_speech
    from sensekit.config import load_config
    from sensekit.logsetup import setup_logging

    config = load_config(Path(args.config))
    setup_logging(args.log_level or "WARNING")
    return calibrate_speech(config, Path(args.input) if args.input else None, args.seconds)
