"""The `sensekit` command. Wiring only: each subcommand calls into the package.

Exit codes: 0 success (windows the broker has not acknowledged yet stay in the spool); 1
unexpected failure; 2 invalid configuration or usage; 3 model missing or corrupt; 4 camera or
media unusable; 5 broker unusable (TLS files or certificate); 6 state directory unusable (spool
locked by another daemon, no permission); 130 interrupted before start-up finished.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

# Before numpy or OpenCV load: one BLAS/OpenMP thread (threads fight the capture loop on two
# cores), and OpenCV's own warnings off (we report errors ourselves, in words).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from sensekit import __version__
from sensekit.errors import ConfigError, SensekitError
from sensekit.logsetup import setup_logging

log = logging.getLogger("sensekit")

EXIT_CODES = """exit codes:
  0  success            2  invalid config or usage   4  camera or media unusable
  1  unexpected error   3  model missing or corrupt  5  broker unusable
  6  state directory unusable (spool in use by another daemon, permissions)
  5: TLS files or certificate; for watch, report and ha also a broker that cannot
     be reached or refuses (the daemon retries those instead)"""


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info(
            "received %s: finishing the current window and stopping", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_check_config(args: argparse.Namespace) -> int:
    from sensekit.config import load_config

    try:
        config = load_config(Path(args.file))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 2
    zones = {z.name for c in config.cameras for z in c.effective_zones()}
    zones |= {m.zone for m in config.microphones}
    print(
        f"{args.file}: valid ({len(config.cameras)} camera(s), "
        f"{len(config.microphones)} microphone(s), {len(zones)} zone(s))"
    )
    return 0


def cmd_notice(args: argparse.Namespace) -> int:
    from sensekit.config import load_config
    from sensekit.privacy.facts import privacy_facts
    from sensekit.privacy.notice import missing_keys, render_notice
    from sensekit.yaml_lines import line_of, load_with_lines

    path = Path(args.config)
    facts = privacy_facts(load_config(path))
    missing = missing_keys(facts)
    if missing:
        # A sign that does not say who is responsible or whom to ask informs nobody: refuse.
        _, lines = load_with_lines(path.read_text(encoding="utf-8"))
        why = {
            "privacy.controller": "the organisation responsible for the processing",
            "privacy.contact": "where visitors send questions and objections (e-mail, phone "
            "or web address)",
        }
        raise ConfigError(
            [
                f"{path}:{line_of(lines, tuple(key.split('.')))}: {key}: not set; a visitor "
                f"notice must state {why[key]}"
                for key in missing
            ]
        )
    text = render_notice(facts, args.lang, args.format)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"{args.output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from sensekit.service import Service

    service = Service(Path(args.config), args.log_level)
    service.install_signal_handlers()
    return service.run()


def cmd_demo(args: argparse.Namespace) -> int:
    from sensekit.demo import run_demo

    setup_logging(args.log_level or "WARNING")
    stop = threading.Event()
    _stop_on_signals(stop)
    return run_demo(
        args.broker,
        Path(args.config) if args.config else None,
        Path(args.media) if args.media else None,
        realtime=args.realtime,
        stop=stop,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    setup_logging(args.log_level or "WARNING")
    output = Path(args.json) if args.json else None
    if args.voice:
        from sensekit.benchmark_voice import run_voice_benchmark

        run_voice_benchmark(output)
        return 0
    from sensekit.benchmark import run_benchmark

    return run_benchmark(frames=args.frames, output=output)


_CALIBRATION_COMMANDS = {
    # name: (module with add_arguments() and run(), one-line help)
    "zones": (
        "sensekit.calibration.zones_command",
        "draw the zones and masks on a snapshot of the camera; write them and a preview PNG",
    ),
    "faces": (
        "sensekit.calibration.faces_command",
        "fit face gating (size, detector score, head pose) to a site recording, per zone",
    ),
    "audio": (
        "sensekit.calibration.audio_command",
        "measure the background noise floor and set the voice-activity thresholds",
    ),
    "speech": (
        "sensekit.calibration.speech_command",
        "learn this site's voice feature statistics from its speech (site normalisation)",
    ),
}


def _add_module_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: dict[str, tuple[str, str]],
) -> None:
    """One subcommand per module: its docstring is the description, its `add_arguments` the
    options, its `run` the action."""
    import importlib

    for name, (module_name, help_text) in commands.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(func=module.run)


def _add_calibration_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`sensekit calibrate <step>` (the installer's tools) and `sensekit eval` (the models').

    Each step lives in its own module with `add_arguments(parser)` and `run(args) -> int`;
    those modules import nothing heavy at the top, so `sensekit --help` stays fast.
    """
    import importlib

    calibrate = sub.add_parser(
        "calibrate",
        help="fit this device to its site: zones, face gating, audio levels, speech statistics",
        description=(
            "The installer's tools, run once at the site (in this order): `zones` draws the "
            "zones and masks on a snapshot, `faces` fits face gating to a short recording, "
            "`audio` sets the voice-activity thresholds from the background noise, `speech` "
            "learns the site's voice statistics. Each prints what it set and why, writes the "
            "settings into the config file (keeping its comments) and never stores an image "
            "or a sound on the device."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    steps = calibrate.add_subparsers(dest="step", metavar="STEP", required=True)
    _add_module_commands(steps, _CALIBRATION_COMMANDS)

    # The old name of `calibrate speech`, kept so provisioning scripts written for it still work.
    speech = importlib.import_module(_CALIBRATION_COMMANDS["speech"][0])
    legacy = sub.add_parser(
        "calibrate-audio",
        help="old name of `sensekit calibrate speech`",
        description="Old name of `sensekit calibrate speech`; same options.",
    )
    speech.add_arguments(legacy)
    legacy.set_defaults(func=speech.run)

    evaluation = importlib.import_module("sensekit.calibration.evaluate.command")
    eval_parser = sub.add_parser(
        "eval",
        help="measure both models on labelled data (FER2013, EmoDB) and write a report",
        description=(evaluation.__doc__ or "").strip(),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluation.add_arguments(eval_parser)
    eval_parser.set_defaults(func=evaluation.run)


_DASHBOARD_COMMANDS = {
    # name: (module with add_arguments() and run(), one-line help)
    "watch": (
        "sensekit.dashboards.watch_command",
        "live terminal view of every device and zone on a broker (status, counts, score, stats)",
    ),
    "report": (
        "sensekit.dashboards.report_command",
        "a zone's day as a PNG: net emotion score and people per hour, from a broker or a log",
    ),
    "ha": (
        "sensekit.dashboards.ha_command",
        "Home Assistant MQTT discovery: show the device's discovery payload, or remove it",
    ),
}


def _add_dashboard_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The dashboard side: commands that read what the devices publish (never a device's raw
    data: they see exactly what any subscribed dashboard sees)."""
    _add_module_commands(sub, _DASHBOARD_COMMANDS)


def cmd_selftest(args: argparse.Namespace) -> int:
    from sensekit.selftest import run_selftest

    setup_logging(args.log_level or "WARNING")

    def progress(line: str) -> None:
        if not args.json:
            print(f"# {line}", file=sys.stderr, flush=True)

    report = run_selftest(progress)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.as_text())
    return 0 if report.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sensekit",
        description=(
            "Anonymous emotion statistics from a camera and a microphone: finds faces and "
            "speech, classifies facial expression and vocal arousal/emotion on the device, and "
            "publishes only per-zone, per-window counts over MQTT. No image, crop, sound or "
            "identity ever leaves the process."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sensekit {__version__}")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the daemon until SIGTERM/SIGINT",
        description=(
            "Run the daemon: read the configured cameras (device index, /dev/videoN, video "
            "file, image folder, RTSP URL or picamera2) and microphones (PortAudio device or "
            "audio file), publish one window per zone every aggregation.window_s seconds. Every "
            "window is written to the spool (<state_dir>/spool.sqlite) before it is sent and "
            "removed after the broker's acknowledgement, so outages, crashes and power cuts lose "
            "nothing. SIGTERM/SIGINT: close and spool the current window, flush to the broker "
            "(at most 10 s), publish status 'stopped', exit 0. SIGHUP: reload the config; an "
            "invalid one is rejected and the running one stays. Supports systemd Type=notify "
            "and WatchdogSec."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", "-c", required=True, help="YAML config (see configs/)")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo",
        help="run the bundled sample video and sound through the full pipeline and print the "
        "MQTT messages",
        description=(
            "Replay the bundled sample video (people walking through a door, two zones) and its "
            "sound track (a microphone inside) through detection, expression, tracking, voice "
            "activity, prosody and aggregation, publish to a broker and "
            "print every message as a subscribed dashboard receives it. Without --broker a "
            "private mosquitto is started on a free loopback port and stopped afterwards. "
            "Needs no camera. Ends when the video ends."
        ),
    )
    demo.add_argument("--broker", help="use this broker, e.g. mqtt://localhost:1883")
    demo.add_argument(
        "--config", help="another demo config (default: the bundled configs/demo.yaml)"
    )
    demo.add_argument("--media", help="another video file or image folder to replay")
    demo.add_argument(
        "--realtime",
        action="store_true",
        help="replay at the video's own speed (default: flat out)",
    )
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser(
        "check-config",
        help="validate a config file",
        description=(
            "Validate a config file. Exit 0 when valid; otherwise exit 2 and print each problem "
            "as FILE:LINE: key.path: message. Unknown keys are errors."
        ),
    )
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    notice = sub.add_parser(
        "notice",
        help="write the visitor notice (the sign for the entrance) from a config",
        description=(
            "Write the notice that tells visitors what the device does, built from the config "
            "it runs with: who is responsible and whom to ask (privacy.controller, "
            "privacy.contact), what is measured and in which zones, the opening hours, that no "
            "image or sound is recorded and nobody is identified, and what is published (counts "
            "of at least aggregation.k_threshold people per window, noise if privacy.dp_epsilon "
            "is set). Print it and put it up at the entrance, where people see it before they "
            "enter the camera's view. Exit 2 when the config is invalid or lacks "
            "privacy.controller or privacy.contact."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    notice.add_argument("--config", "-c", required=True, help="the device's YAML config")
    notice.add_argument(
        "--lang", choices=["en", "fr"], default="en", help="language of the notice (default en)"
    )
    notice.add_argument(
        "--format",
        choices=["text", "markdown", "html"],
        default="text",
        help="text: plain, 72 columns; markdown; html: a standalone page to print on A4 "
        "(default text)",
    )
    notice.add_argument("--output", "-o", help="write to this file instead of standard output")
    notice.set_defaults(func=cmd_notice)

    _add_calibration_parsers(sub)
    _add_dashboard_parsers(sub)

    bench = sub.add_parser(
        "bench",
        help="measure speed, recall and memory of the vision path on the demo video",
        description=(
            "Benchmark both detector variants on the bundled demo video (640x480, 1 inference "
            "thread): face recall against the video's known face positions, frames per second "
            "with 1 and 4 faces, the efficiency ratio (bare model time / full pipeline time), "
            "the marginal cost of an extra face, and peak memory. Prints ratios, asserts nothing."
        ),
    )
    bench.add_argument("--frames", type=int, default=300, help="frames per measurement")
    bench.add_argument(
        "--voice",
        action="store_true",
        help="benchmark the voice path instead: real-time factor on the demo sound track, "
        "start-up to the first analysed window with a cold and a warm numba cache, extra memory",
    )
    bench.add_argument("--json", help="also write the results to this JSON file")
    bench.set_defaults(func=cmd_bench)

    selftest = sub.add_parser(
        "selftest",
        help="prove this installation works: every model, one window of the demo media",
        description=(
            "Load and invoke every bundled model, run the first window of the bundled demo "
            "video and sound through the real vision and voice paths and the release gate, "
            "and compare with the media's ground truth: detector recall, people per zone, "
            "the expression shown, speech found, nothing released below k. Needs no camera, "
            "microphone or broker, publishes nothing and writes only to a temporary directory "
            "it removes. Run it after installing or upgrading (image builds, fleet updates). "
            "Exit 0 when every check passes, 1 otherwise."
        ),
    )
    selftest.add_argument("--json", action="store_true", help="print the report as JSON")
    selftest.set_defaults(func=cmd_selftest)

    from sensekit.provision import add_provision_parser

    add_provision_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.log_level or "INFO")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return exc.exit_code
    except SensekitError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
