"""Builds media/demo/entrance.flac and entrance_audio.json: the demo's sound, with ground truth.

60 s at 16 kHz mono, on the video's time base (both start at media time 0), heard by a
microphone in the zone "inside". Everything is synthesised (tools/media/speech.py), so the
content and its timing are known exactly:

- 0–20 s: a till's clicks, then one customer's sentence: too little speech for a breakdown.
- 20–40 s: a conversation of an excited and a calm voice: enough speech for a breakdown.
- 40–60 s: the air-conditioning starts (steady noise, no speech), with one sentence in it.

`expected_voice` gives per 20 s window the seconds of speech placed in it and generous bounds
on the number of 2 s analysis windows (hop 1 s) the voice path should find. Deterministic:
the same espeak-ng and the same seeds give the same file.

Usage: .venv/bin/python tools/media/make_demo_audio.py
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tools.media.speech import (
    SAMPLE_RATE,
    SENTENCES,
    clicks,
    fan_noise,
    mix,
    room_tone,
    synthesise,
)

ROOT = Path(__file__).resolve().parents[2]
OUT_AUDIO = ROOT / "media" / "demo" / "entrance.flac"
OUT_TRUTH = ROOT / "media" / "demo" / "entrance_audio.json"
DURATION_S = 60.0
WINDOW_S = 20.0
ZONE = "inside"


@dataclass(frozen=True)
class Utterance:
    start_s: float
    text: str
    pitch: int
    speed: int
    amplitude: int
    style: str
    end_s: float = 0.0


PLAN = (
    Utterance(10.0, SENTENCES[0], 50, 150, 90, "plain"),
    Utterance(21.0, SENTENCES[2], 85, 200, 190, "excited"),
    Utterance(26.2, SENTENCES[3], 25, 120, 60, "calm"),
    Utterance(31.4, SENTENCES[1], 80, 210, 200, "excited"),
    Utterance(36.0, "Yes, let us do that.", 30, 130, 70, "calm"),
    Utterance(45.0, SENTENCES[4], 50, 160, 110, "plain"),
)


def build() -> tuple[np.ndarray, list[Utterance]]:
    n = round(DURATION_S * SAMPLE_RATE)
    track = room_tone(DURATION_S, level_db=-58.0, seed=11)
    till = np.zeros(n, dtype=np.float32)
    till[round(4 * SAMPLE_RATE) : round(4 * SAMPLE_RATE) + round(3 * SAMPLE_RATE)] = clicks(
        3.0, level_db=-12.0, every_s=0.45, seed=12
    )
    hvac = np.zeros(n, dtype=np.float32)
    start = round(40 * SAMPLE_RATE)
    hvac[start:] = fan_noise(DURATION_S - 40.0, level_db=-42.0, seed=13)
    voice = np.zeros(n, dtype=np.float32)
    placed = []
    for utterance in PLAN:
        speech = synthesise(
            utterance.text,
            pitch=utterance.pitch,
            speed=utterance.speed,
            amplitude=utterance.amplitude,
        )
        # espeak-ng pads with silence; keep only the sounding part so the timing is exact.
        loud = np.flatnonzero(np.abs(speech) > 1e-3)
        speech = speech[loud[0] : loud[-1] + 1] * 0.5
        first = round(utterance.start_s * SAMPLE_RATE)
        voice[first : first + len(speech)] += speech[: n - first]
        end = utterance.start_s + len(speech) / SAMPLE_RATE
        placed.append(
            Utterance(**{**asdict(utterance), "end_s": round(end, 3)})  # type: ignore[arg-type]
        )
    return mix(track, till, hvac, voice), placed


def expected(placed: list[Utterance]) -> list[dict[str, object]]:
    """Bounds that hold for any reasonable segmentation: at least one window per full second
    of speech beyond the first two, at most one per started second plus one."""
    out = []
    for index in range(int(DURATION_S / WINDOW_S)):
        begin, end = index * WINDOW_S, (index + 1) * WINDOW_S
        inside = [u for u in placed if begin <= (u.start_s + u.end_s) / 2 < end]
        speech_s = sum(u.end_s - u.start_s for u in inside)
        out.append(
            {
                "start_s": begin,
                "end_s": end,
                "zone": ZONE,
                "speech_s": round(speech_s, 2),
                "min_windows": int(
                    sum(max(0, math.floor(u.end_s - u.start_s) - 2) for u in inside)
                ),
                "max_windows": int(sum(math.ceil(u.end_s - u.start_s) + 1 for u in inside)),
            }
        )
    return out


def main() -> None:
    audio, placed = build()
    OUT_AUDIO.parent.mkdir(parents=True, exist_ok=True)
    sf.write(OUT_AUDIO, audio, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    truth = {
        "audio": OUT_AUDIO.name,
        "sample_rate": SAMPLE_RATE,
        "duration_s": DURATION_S,
        "zone": ZONE,
        "window_s": WINDOW_S,
        "license": "CC0-1.0 (synthesised with espeak-ng and numpy; see media/demo/README.md)",
        "noise": [
            {"kind": "room tone", "start_s": 0.0, "end_s": 60.0, "level_dbfs": -58},
            {"kind": "till clicks", "start_s": 4.0, "end_s": 7.0, "peak_dbfs": -12},
            {
                "kind": "air conditioning (steady)",
                "start_s": 40.0,
                "end_s": 60.0,
                "level_dbfs": -42,
            },
        ],
        "utterances": [asdict(u) for u in placed],
        "expected_voice": expected(placed),
    }
    OUT_TRUTH.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT_AUDIO} ({OUT_AUDIO.stat().st_size // 1024} KiB) and {OUT_TRUTH}")
    for window in truth["expected_voice"]:
        print(window)


if __name__ == "__main__":
    main()
