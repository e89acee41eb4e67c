"""Builds the voice path from a config: cache directories first, then the heavy imports, then
a warm-up, so that start-up pays for compilation and the first customer does not.

librosa pulls numba, which compiles on first use and caches the machine code in
`NUMBA_CACHE_DIR`; the variable is read when numba is imported, so it is set here, before
anything imports librosa. Without a writable cache every start compiles again (seconds on a
Pi), and in a read-only image numba cannot cache at all.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
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
    return VoiceRuntime(pipeline, normaliser, warm, imported)
