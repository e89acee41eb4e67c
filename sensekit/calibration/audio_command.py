"""Measure the site's background sound and set the voice-activity threshold to fit it.

Run it when the site sounds as it usually does but nobody is talking near the microphone
(the fridge, the air vent, the background music all on). It listens to the configured
microphones for --seconds (or reads --input, a WAV/FLAC/OGG recording of that background),
measures the noise floor, how steady it is and how much of it is periodic (hum, music,
beeps: what a voice detector can mistake for a voice), and sets voice.vad.snr_db, how far
above the floor a voiced frame must be to count as speech, to the lowest value at which the
background produces no speech window, plus a margin. The real voice detector is then run over
the background with the new value (it must find nothing) and, with --speech, over a recording
of someone talking at the site (most of it must be found). It prints what it measured, what
it set (old -> new) and why, and writes voice.vad.snr_db into the config file, keeping its
comments; --dry-run only prints. Exit 1, writing nothing, when the background cannot be told
apart from speech (it holds talking or loud music). Audio is held in memory, never written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sensekit.audio.vad import VadOptions
    from sensekit.calibration.audio_levels import BackgroundLevels, Recording, SpeechCheck
    from sensekit.config import Config
    from sensekit.sources.audio import AudioSource

SNR_KEY = ("voice", "vad", "snr_db")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="the device's YAML config")
    parser.add_argument(
        "--input",
        metavar="FILE",
        help="a WAV/FLAC/OGG recording of the site's background instead of listening",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="how long to listen to the microphones (default 30; at least 10)",
    )
    parser.add_argument(
        "--microphone", metavar="NAME", help="listen to this configured microphone only"
    )
    parser.add_argument(
        "--speech",
        metavar="FILE",
        help="a recording of someone talking at the site: check how much of it is still found",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be set; write nothing"
    )


def run(args: argparse.Namespace) -> int:
    from sensekit.config import load_config
    from sensekit.logsetup import setup_logging

    setup_logging(args.log_level or "WARNING")
    if args.input is None and args.seconds < 10.0:
        print("--seconds must be at least 10: the noise floor looks 5 s back", file=sys.stderr)
        return 2
    config_path = Path(args.config)
    config = load_config(config_path)
    return calibrate(
        config,
        config_path,
        background=Path(args.input) if args.input else None,
        seconds=args.seconds,
        microphone=args.microphone,
        speech=Path(args.speech) if args.speech else None,
        dry_run=args.dry_run,
    )


def _options(config: Config) -> VadOptions:
    from sensekit.audio.vad import VadOptions

    vad = config.voice.vad
    return VadOptions(
        window_s=vad.window_s,
        hop_s=vad.hop_s,
        min_speech_s=vad.min_speech_s,
        snr_db=vad.snr_db,
        max_pause_s=vad.max_pause_s,
    )


def _allowed_snr() -> tuple[float, float]:
    """The config's own bounds on snr_db, read from its schema so the two cannot drift."""
    from sensekit.config import VadConfig

    low, high = 3.0, 40.0
    for item in VadConfig.model_fields["snr_db"].metadata:
        low = float(getattr(item, "ge", low))
        high = float(getattr(item, "le", high))
    return low, high


def _sources(
    config: Config, config_path: Path, background: Path | None, microphone: str | None
) -> list[AudioSource]:
    from sensekit.audio.pipeline import ANALYSIS_RATE
    from sensekit.errors import ConfigError, SourceError
    from sensekit.sources.audio import open_audio_source

    if background is not None:
        return [
            open_audio_source(
                "background", str(background), ANALYSIS_RATE, realtime=False, start_time=0.0
            )
        ]
    microphones = list(config.microphones)
    if microphone is not None:
        microphones = [m for m in microphones if m.name == microphone]
        if not microphones:
            names = ", ".join(m.name for m in config.microphones) or "none"
            raise ConfigError(
                [f"{config_path}: no microphone named {microphone!r} (configured: {names})"]
            )
    if not microphones:
        raise SourceError(f"{config_path} has no microphones; give a recording with --input")
    return [
        open_audio_source(m.name, m.source, m.sample_rate, block_s=m.block_s, buffer_s=m.buffer_s)
        for m in microphones
    ]


def _record(sources: list[AudioSource], seconds: float | None, what: str) -> dict[str, Recording]:
    """Chunks of every source into memory: for `seconds` of live audio, or whole files."""
    import time

    from tqdm import tqdm

    from sensekit.audio.pipeline import ANALYSIS_RATE
    from sensekit.calibration.audio_levels import Recording
    from sensekit.errors import SourceError

    recordings = {s.name: Recording(ANALYSIS_RATE) for s in sources}
    live = any(s.live for s in sources)
    # Files are opened with start_time 0, so where one ends is its length.
    total = seconds if live else sum(s.end_timestamp or 0.0 for s in sources)
    deadline = time.monotonic() + (seconds or 0.0)
    with tqdm(total=total, unit="s", desc=what, file=sys.stderr, disable=None) as bar:
        try:
            while not live or time.monotonic() < deadline:
                active = [s for s in sources if not s.finished]
                if not active:
                    break
                for source in active:
                    chunk = source.read(0.1 / len(active))
                    if chunk is None:
                        continue
                    recordings[source.name].add(chunk)
                    bar.update(chunk.duration)
        except KeyboardInterrupt:
            print("interrupted: measuring what was heard so far", file=sys.stderr)
        finally:
            for source in sources:
                source.stop()
    for source in sources:
        if recordings[source.name].seconds == 0.0:
            raise SourceError(f"microphone {source.name}: no audio ({source.error or 'silent'})")
        if source.error:
            raise SourceError(source.error)
    return recordings


def calibrate(
    config: Config,
    config_path: Path,
    *,
    background: Path | None,
    seconds: float,
    microphone: str | None,
    speech: Path | None,
    dry_run: bool,
) -> int:
    from dataclasses import replace

    from sensekit.audio.pipeline import ANALYSIS_RATE
    from sensekit.calibration import audio_levels as al
    from sensekit.calibration.config_edit import update_config_file
    from sensekit.sources.audio import open_audio_source

    rate = ANALYSIS_RATE
    current = _options(config)
    allowed = _allowed_snr()
    sources = _sources(config, config_path, background, microphone)
    speech_source = (
        open_audio_source("speech", str(speech), rate, realtime=False, start_time=0.0)
        if speech
        else None
    )
    # Open everything first: a wrong path fails now, not after the listening.
    started: list[AudioSource] = []
    try:
        for source in [*sources, *([speech_source] if speech_source else [])]:
            source.start()
            started.append(source)
    except BaseException:
        for source in started:
            source.stop()
        raise
    recordings = _record(sources, seconds, "background")
    if speech_source is not None:
        speech_runs = _record([speech_source], None, "speech")["speech"].runs()

    levels: dict[str, BackgroundLevels] = {}
    runs = {}
    for name, recording in recordings.items():
        heard = recording.seconds
        if heard < al.MIN_BACKGROUND_S:
            print(
                f"{name}: only {heard:.1f} s of background; at least {al.MIN_BACKGROUND_S:g} s "
                "are needed (the floor looks 5 s back): listen or record longer; nothing written",
                file=sys.stderr,
            )
            return 1
        runs[name] = recording.runs()
        levels[name] = al.measure_background(al.tracks_of(runs[name], rate, current), current, rate)
    fits = {name: al.fit_snr_db(lv, current, allowed) for name, lv in levels.items()}
    for name, lv in levels.items():
        _print_levels(name, lv, current)
        if lv.floor_db < al.DIGITAL_SILENCE_DB:
            print(
                f"warning: {name}'s floor is digital silence ({lv.floor_db:.0f} dBFS): is the "
                "microphone muted, or behind a noise gate? Then any periodic sound counts.",
                file=sys.stderr,
            )
    failed = {name: fit for name, fit in fits.items() if fit.snr_db is None}
    if failed:
        for name, fit in failed.items():
            print(f"cannot set voice.vad.snr_db from {name}: {fit.reason}.", file=sys.stderr)
        print(
            "Record the background again when nobody talks near the microphone and music is "
            "at its usual level; nothing written.",
            file=sys.stderr,
        )
        return 1
    # One threshold serves every microphone: the strictest one's.
    name, fit = max(fits.items(), key=lambda item: item[1].snr_db or 0.0)
    assert fit.snr_db is not None
    limit = min(allowed[1], al.MAX_FITTED_SNR_DB)
    all_runs = [samples for name_runs in runs.values() for samples in name_runs]
    fitted = replace(current, snr_db=fit.snr_db)
    verified, found = al.verified_snr_db(all_runs, rate, fitted, limit)
    before = sum(len(w) for w in al.segment(all_runs, rate, current))
    if verified is None:
        print(
            f"cannot set voice.vad.snr_db: the voice detector still finds speech in the "
            f"background at {limit:g} dB; it holds talking or loud music; nothing written.",
            file=sys.stderr,
        )
        return 1
    why = fit.reason
    if verified != fit.snr_db:
        why += f"; raised to {verified:g} dB because the detector found {found} windows at"
        why += f" {fit.snr_db:g} dB"
    fitted = replace(current, snr_db=verified)
    changed = "unchanged" if verified == current.snr_db else f"{current.snr_db:g} -> {verified:g}"
    print(f"set voice.vad.snr_db: {changed} dB" + (f" (from {name})" if len(fits) > 1 else ""))
    print(f"  why: {why}")
    was = "" if verified == current.snr_db else f" (at {current.snr_db:g} dB: {before})"
    print(f"check: the voice detector finds no speech window in the background{was}")
    if speech_source is not None:
        strictest = levels[name]
        new = al.check_speech(speech_runs, rate, fitted, strictest)
        old = (
            new
            if verified == current.snr_db
            else al.check_speech(speech_runs, rate, current, strictest)
        )
        if not _speech_ok(speech, new, old, verified, current.snr_db):
            return 1
    if dry_run:
        print("dry run: nothing written")
        return 0
    update_config_file(config_path, {SNR_KEY: verified})
    print(f"wrote voice.vad.snr_db: {verified:g} to {config_path}")
    return 0


def _speech_ok(
    speech: Path | None, new: SpeechCheck, old: SpeechCheck, snr: float, old_snr: float
) -> bool:

    from sensekit.calibration import audio_levels as al

    if new.voiced_s < 1.0:
        print(
            f"cannot check with {speech}: it has only {new.voiced_s:.1f} s of voiced sound louder "
            f"than the background ever was ({al.SPEECH_ABOVE_BACKGROUND_DB:g} dB over its "
            "99th percentile): record someone talking at the usual distance; nothing written",
            file=sys.stderr,
        )
        return False
    was = "" if snr == old_snr else f" (at {old_snr:g} dB: {old.share:.0%})"
    print(
        f"check: {speech}: {new.share:.0%} of its {new.voiced_s:.1f} s of voiced speech found, "
        f"in {new.windows} windows{was}"
    )
    if new.share < al.MIN_SPEECH_SHARE:
        print(
            f"the speech in {speech} is mostly missed ({new.share:.0%} found): at this site a "
            "voice does not stand out from the background enough; move the microphone closer "
            "to where people talk, or quieten the background; nothing written",
            file=sys.stderr,
        )
        return False
    return True


def _print_levels(name: str, levels: BackgroundLevels, options: VadOptions) -> None:
    spread = levels.spread_db
    steadiness = "steady" if spread < 3.0 else "varies" if spread < 8.0 else "fluctuates"
    margins = levels.periodic_margin_db
    periodic = (
        "-" if margins is None else f"{margins[0]:.1f} / {margins[1]:.1f} / {margins[2]:.1f} dB"
    )
    required = levels.required_snr_db
    needs = "more than 60 dB" if required is None else f"{required:.1f} dB"
    rows = [
        ("noise floor", f"{levels.floor_db:.1f} dBFS", "10th percentile of 25 ms frame levels"),
        (
            "level range",
            f"{spread:.1f} dB",
            f"10th to 90th percentile ({steadiness}); median {levels.median_db:.1f} dBFS, "
            f"99th {levels.loud_db:.1f} dBFS",
        ),
        (
            "periodic frames",
            f"{levels.periodic_share:.0%}",
            "with a pitch in the voice range, 65-500 Hz (hum, music, beeps)",
        ),
        ("periodic above floor", periodic, "median / 95th percentile / max over periodic frames"),
        (
            "level modulation",
            f"{levels.window_modulation_db:.1f} dB",
            f"median std of frame levels in {options.window_s:g} s windows (speech: 8-15 dB)",
        ),
        (
            "speech-like at most",
            f"{levels.worst_share:.0%}",
            f"periodic frames {options.snr_db:g} dB over the floor in the worst "
            f"{options.window_s:g} s (at {levels.worst_at_s:.0f} s); "
            f"{options.min_speech_fraction:.0%} make a window",
        ),
        (
            "needs above floor",
            needs,
            f"to keep every {options.window_s:g} s window under "
            f"{options.min_speech_fraction:.0%} periodic frames",
        ),
    ]
    print(f"background {name}: {levels.seconds:.1f} s")
    for label, value, note in rows:
        print(f"  {label:21s} {value:>22s}  {note}")
