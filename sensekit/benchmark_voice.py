"""`sensekit bench --voice`: speed, start-up and memory of the voice path, as ratios.

- Real-time factor (processing seconds per audio second, one core, BLAS pinned to one thread)
  of the whole path (VAD + features + site normalisation + int8 model) over the demo sound
  track, and per analysed 2 s window (VAD for 2 s of audio + features + model, over 2 s).
- Start-up: seconds from a fresh process to its first analysed window, with an empty numba
  cache (cold) and with the cache the cold run left (warm). Each is a child process.
- Memory: resident memory a fresh process adds by building and running the voice path,
  measured against the same process before (imports of the vision side included before).

Asserts nothing; prints, and writes JSON when asked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sensekit.demo import bundled

DEMO_SOUND = "media/demo/entrance.flac"
BLOCK_S = 0.1


def _load_demo() -> tuple[np.ndarray, int]:
    import soundfile as sf

    samples, rate = sf.read(str(bundled(DEMO_SOUND)), dtype="float32")
    return samples, int(rate)


def _pipeline() -> Any:
    from sensekit.audio.normalisation import (
        NormalisationMode,
        NormalisationOptions,
        SiteNormaliser,
    )
    from sensekit.audio.pipeline import VoicePipeline
    from sensekit.audio.prosody import FEATURE_VERSION
    from sensekit.audio.voice import VoiceClassifier

    classifier = VoiceClassifier()
    normaliser = SiteNormaliser(
        classifier.feature_names,
        FEATURE_VERSION,
        classifier.training_mean,
        classifier.training_std,
        NormalisationOptions(mode=NormalisationMode.OFF),
    )
    return VoicePipeline(classifier, normaliser)


def real_time_factor(repeats: int = 3) -> dict[str, float]:
    from sensekit.types import AudioChunk

    samples, rate = _load_demo()
    step = round(BLOCK_S * rate)
    best: dict[str, float] | None = None
    for _ in range(repeats):
        pipeline = _pipeline()
        pipeline.warm_up()
        vad_s = analyse_s = 0.0
        windows = 0
        for i in range(0, len(samples), step):
            chunk = AudioChunk("bench", 1000.0 + i / rate, rate, samples[i : i + step])
            started = time.perf_counter()
            found = pipeline.segmenter("bench").push(chunk)
            cut = time.perf_counter()
            windows += len(pipeline.analyse(found))
            vad_s += cut - started
            analyse_s += time.perf_counter() - cut
        duration = len(samples) / rate
        per_window = analyse_s / max(windows, 1)
        result = {
            "audio_s": duration,
            "windows": float(windows),
            "rtf_stream": (vad_s + analyse_s) / duration,
            "vad_ms_per_2s": vad_s / duration * 2000.0,
            "features_and_model_ms_per_window": per_window * 1000.0,
            "features_ms": pipeline.times.features_ms,
            "model_ms": pipeline.times.model_ms,
            "rtf_window": (vad_s / duration * 2.0 + per_window) / 2.0,
        }
        if best is None or result["rtf_stream"] < best["rtf_stream"]:
            best = result
    assert best is not None
    return best


_CHILD = """
import os, sys, time, resource
start = float(sys.argv[1])
from pathlib import Path
def rss():
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
    return 0.0
import sensekit.app  # the daemon's own imports (vision side included) come first
before = rss()
from sensekit.benchmark_voice import _load_demo, _pipeline
from sensekit.types import AudioChunk
pipeline = _pipeline()
pipeline.warm_up()
samples, rate = _load_demo()
step = int(0.1 * rate)
first = None
for i in range(0, len(samples), step):
    if pipeline.process(AudioChunk('bench', i / rate, rate, samples[i:i + step])) and first is None:
        first = time.time() - start
        media = (i + step) / rate
print(first, media, before, rss())
"""


def _child(cache: Path) -> dict[str, float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, repr(time.time())],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    first, media, before, after = (float(v) for v in out[-4:])
    # The first speech window needs `media` seconds of audio; a file is read flat out, so the
    # rest is start-up and processing.
    return {
        "first_window_s": first,
        "media_s": media,
        "rss_before_mb": before,
        "rss_after_mb": after,
    }


def start_up() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sensekit-numba-") as tmp:
        cache = Path(tmp)
        cold = _child(cache)
        warm = _child(cache)
    return {
        "cold": cold,
        "warm": warm,
        "voice_rss_mb": warm["rss_after_mb"] - warm["rss_before_mb"],
    }


def run_voice_benchmark(output: Path | None = None) -> dict[str, Any]:
    results = {"rtf": real_time_factor(), "start_up": start_up()}
    print_voice_report(results)
    if output is not None:
        output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def print_voice_report(results: dict[str, Any]) -> None:
    rtf, boot = results["rtf"], results["start_up"]
    print("sensekit bench --voice: demo sound track (60 s, 16 kHz), 1 thread")
    print(
        f"  whole stream  RTF {rtf['rtf_stream']:.4f}  ({rtf['windows']:.0f} speech windows "
        f"in {rtf['audio_s']:.0f} s of audio)"
    )
    print(
        f"  per 2 s window RTF {rtf['rtf_window']:.4f}  (VAD {rtf['vad_ms_per_2s']:.2f} ms per 2 s"
        f" + features {rtf['features_ms']:.2f} ms + model {rtf['model_ms']:.3f} ms)"
    )
    for name in ("cold", "warm"):
        item = boot[name]
        print(
            f"  start to first window, {name} numba cache: {item['first_window_s']:.2f} s "
            f"(of which {item['media_s']:.1f} s of audio before the first speech is read)"
        )
    print(f"  extra RSS of the voice path: {boot['voice_rss_mb']:.0f} MB")
