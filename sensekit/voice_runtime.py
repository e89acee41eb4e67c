"""Builds the voice path from a config: cache directories first, then the imports, then a
warm-up, so that start-up pays for set-up and the first customer does not.

The per-window path is plain numpy/scipy: it imports neither librosa nor numba (librosa cost
~110 MB and JIT compilation for one filter bank; sensekit.audio.mel replaces it). Should a
numba-compiled function ever enter the path, its machine code is cached in `NUMBA_CACHE_DIR`,
which numba reads when it is imported; so the variable is set here, before any voice import,
to a writable directory (`voice.numba_cache_dir`): without one, every start would compile
again (seconds on a Pi), and a read-only image could not cache at all.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sensekit.config import Config, numba_cache_dir, state_dir

if TYPE_CHECKING:
    from sensekit.audio.normalisation import SiteNormaliser
    from sensekit.audio.pipeline import VoicePipeline

log = logging.getLogger(__name__)

NORMALISATION_FILE = "voice-normalisation.json"


@dataclass
class VoiceRuntime:
    pipeline: VoicePipeline
    normaliser: SiteNormaliser
    warm_up_s: float
    import_s: float
    model_path: Path


def prepare_numba_cache(config: Config) -> None:
    """Point numba at a writable cache (an explicit environment variable wins)."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    cache = numba_cache_dir(config)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning(
            "voice: cannot create the numba cache %s (%s); compiling every start", cache, exc
        )
        return
    os.environ["NUMBA_CACHE_DIR"] = str(cache)


def build_voice_runtime(config: Config) -> VoiceRuntime:
    prepare_numba_cache(config)
    started = time.perf_counter()
    from sensekit.audio.normalisation import (
        NormalisationMode,
        NormalisationOptions,
        SiteNormaliser,
    )
    from sensekit.audio.pipeline import VoicePipeline
    from sensekit.audio.prosody import FEATURE_VERSION
    from sensekit.audio.vad import VadOptions
    from sensekit.audio.voice import VoiceClassifier

    imported = time.perf_counter() - started
    voice = config.voice
    classifier = VoiceClassifier(voice.model_path, num_threads=config.inference_threads)
    normaliser = SiteNormaliser(
        classifier.feature_names,
        FEATURE_VERSION,
        classifier.training_mean,
        classifier.training_std,
        NormalisationOptions(
            mode=NormalisationMode(voice.normalisation.mode),
            state_file=state_dir(config) / NORMALISATION_FILE,
            min_windows=voice.normalisation.min_windows,
            half_life_windows=voice.normalisation.half_life_windows,
        ),
    )
    vad = voice.vad
    pipeline = VoicePipeline(
        classifier,
        normaliser,
        vad=VadOptions(
            window_s=vad.window_s,
            hop_s=vad.hop_s,
            min_speech_s=vad.min_speech_s,
            snr_db=vad.snr_db,
            max_pause_s=vad.max_pause_s,
        ),
    )
    warm = pipeline.warm_up()
    log.info(
        "voice: ready in %.1f s (imports %.1f s, warm-up %.2f s; numba cache %s; normalisation %s)",
        imported + warm,
        imported,
        warm,
        os.environ.get("NUMBA_CACHE_DIR", "none"),
        "site statistics"
        if normaliser.calibrated
        else f"{voice.normalisation.mode}, training statistics for now",
    )
    return VoiceRuntime(pipeline, normaliser, warm, imported, classifier.model_path)
