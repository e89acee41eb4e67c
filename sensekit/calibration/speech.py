"""`sensekit calibrate speech`: learn the site's voice feature statistics once, on purpose.

The daemon learns them anyway (`voice.normalisation.mode: learn`); this command is for an
installer who wants the device calibrated before it goes live, or who wants them fixed
(`mode: frozen`): it listens to the configured microphones for a while (or reads a recording
of the site: staff talking at the counter is what it should hear), runs the same VAD and
features as the daemon, and writes the statistics to the state directory. Only the per-feature
mean and variance are written, and only once `min_windows` speech windows were heard.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from sensekit.config import Config, state_dir
from sensekit.errors import SourceError
from sensekit.sources.audio import AudioSource, open_audio_source

if TYPE_CHECKING:
    from sensekit.audio.normalisation import SiteNormaliser

log = logging.getLogger(__name__)


def _sources(config: Config, recording: Path | None) -> list[AudioSource]:
    if recording is not None:
        return [open_audio_source("recording", str(recording), realtime=False)]
    if not config.microphones:
        raise SourceError("the config has no microphones; give a recording with --input")
    return [
        open_audio_source(m.name, m.source, m.sample_rate, block_s=m.block_s, buffer_s=m.buffer_s)
        for m in config.microphones
    ]


def calibrate_speech(config: Config, recording: Path | None, seconds: float) -> int:
    from sensekit.voice_runtime import NORMALISATION_FILE, build_voice_runtime

    learning = config.voice.normalisation.model_copy(update={"mode": "learn"})
    config = config.model_copy(
        update={"voice": config.voice.model_copy(update={"normalisation": learning})}
    )
    runtime = build_voice_runtime(config)
    normaliser, pipeline = runtime.normaliser, runtime.pipeline
    already = normaliser.stats.count
    sources = _sources(config, recording)
    for source in sources:
        source.start()
    total = None if recording is None else seconds
    heard = 0.0
    deadline = time.monotonic() + seconds
    with tqdm(total=total, unit="s audio", file=sys.stderr, disable=None) as bar:
        try:
            while time.monotonic() < deadline or recording is not None:
                active = [s for s in sources if not s.finished]
                if not active:
                    break
                for source in active:
                    chunk = source.read(0.1)
                    if chunk is None:
                        continue
                    pipeline.process(chunk)
                    heard += chunk.duration
                    bar.update(chunk.duration)
                    bar.set_postfix(speech_windows=normaliser.stats.count - already)
                if recording is not None and heard >= seconds:
                    break
        except KeyboardInterrupt:
            print("interrupted: keeping what was heard so far", file=sys.stderr)
        finally:
            for source in sources:
                pipeline.finish(source.name)
                source.stop()
    learned = normaliser.stats.count - already
    path = state_dir(config) / NORMALISATION_FILE
    need = config.voice.normalisation.min_windows
    if not normaliser.calibrated:
        print(
            f"only {normaliser.stats.count} speech windows in {heard:.0f} s of audio; "
            f"{need} are needed: listen longer, or to a recording with more speech",
            file=sys.stderr,
        )
        return 1
    normaliser.save()
    print(
        f"learned from {learned} new speech windows ({normaliser.stats.count} in all); saved {path}"
    )
    _print_shift(normaliser)
    print(
        "the daemon uses them with voice.normalisation.mode 'learn' (keeps adapting) or "
        "'frozen' (fixed)"
    )
    return 0


def _print_shift(normaliser: SiteNormaliser) -> None:
    """How far this site sits from the training studio, in training standard deviations."""
    train_mean, train_std = normaliser.training_statistics
    shift = (normaliser.stats.mean - train_mean) / train_std
    order = np.argsort(-np.abs(shift))[:5]
    print("largest differences from the training data (in its standard deviations):")
    for index in order:
        print(f"  {normaliser.feature_names[index]:28s} {shift[index]:+.1f}")
