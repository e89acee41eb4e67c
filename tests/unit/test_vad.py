"""Voice activity on self-made audio: espeak-ng speech, room tone, fan noise, clicks.

Only speech may produce analysis windows; silence, steady noise and clicks must not.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensekit.audio.vad import SpeechSegmenter, SpeechWindow, VadOptions
from sensekit.types import AudioChunk
from tools.media.speech import (
    SENTENCES,
    clicks,
    concat,
    fan_noise,
    have_espeak,
    mix,
    room_tone,
    silence,
    synthesise,
)

RATE = 16000
T0 = 1_767_225_600.0

pytestmark = pytest.mark.skipif(
    not have_espeak(), reason="espeak-ng is not installed: run the README's install command"
)


def segment(
    signal: np.ndarray, options: VadOptions | None = None, block_s: float = 0.1
) -> list[SpeechWindow]:
    segmenter = SpeechSegmenter(RATE, options)
    step = round(block_s * RATE)
    out: list[SpeechWindow] = []
    for i in range(0, len(signal), step):
        out += segmenter.push(AudioChunk("mic", T0 + i / RATE, RATE, signal[i : i + step]))
    return out + segmenter.finish("mic")


@pytest.fixture(scope="module")
def sentence() -> np.ndarray:
    speech = synthesise(SENTENCES[0])
    loud = np.flatnonzero(np.abs(speech) > 1e-3)
    return speech[loud[0] : loud[-1] + 1]


def test_speech_in_quiet_room_is_found_where_it_is(sentence: np.ndarray) -> None:
    signal = concat(room_tone(2.0), sentence, room_tone(3.0))
    windows = segment(signal)
    start, end = T0 + 2.0, T0 + 2.0 + len(sentence) / RATE
    assert len(windows) >= int(len(sentence) / RATE) - 2
    for window in windows:
        assert len(window.samples) == 2 * RATE
        midpoint = (window.start + window.end) / 2
        assert start - 0.5 <= midpoint <= end + 0.5
    # Windows advance by the hop while the speech goes on.
    starts = [w.start for w in windows]
    assert np.allclose(np.diff(starts)[:-1], 1.0, atol=0.02)


@pytest.mark.parametrize(
    ("name", "noise"),
    [
        ("digital silence", silence(12.0)),
        ("room tone", room_tone(12.0)),
        ("fan and hum", fan_noise(12.0, level_db=-20.0)),
        ("loud fan starting from silence", concat(silence(2.0), fan_noise(10.0, level_db=-15.0))),
        ("clicks", mix(clicks(12.0), room_tone(12.0))),
        ("clicks on digital silence", clicks(12.0, every_s=0.3)),
    ],
)
def test_no_speech_no_windows(name: str, noise: np.ndarray) -> None:
    assert segment(noise) == [], name


def test_speech_is_found_through_air_conditioning(sentence: np.ndarray) -> None:
    length = 2.0 + len(sentence) / RATE + 2.0
    speech = concat(silence(2.0), sentence)
    # About 15 dB speech-to-noise: a customer at a counter under the air vent.
    windows = segment(mix(speech, fan_noise(length, level_db=-36.0)))
    assert len(windows) >= int(len(sentence) / RATE) - 2


def test_a_single_word_is_too_short(sentence: np.ndarray) -> None:
    word = sentence[: round(0.5 * RATE)]
    assert segment(concat(room_tone(2.0), word, room_tone(2.0))) == []


def test_a_short_utterance_gets_one_centred_window() -> None:
    speech = synthesise("Hello there, thanks.")
    loud = np.flatnonzero(np.abs(speech) > 1e-3)
    speech = speech[loud[0] : loud[-1] + 1]
    duration = len(speech) / RATE
    assert 1.0 <= duration < 2.0, duration
    windows = segment(concat(room_tone(2.0), speech, room_tone(2.0)))
    assert len(windows) == 1
    centre = T0 + 2.0 + duration / 2
    assert abs((windows[0].start + windows[0].end) / 2 - centre) < 0.3


def test_chunk_size_does_not_change_the_result(sentence: np.ndarray) -> None:
    signal = concat(room_tone(1.0), sentence, room_tone(2.0))
    small = segment(signal, block_s=0.02)
    large = segment(signal, block_s=0.5)
    assert [round(w.start, 2) for w in small] == [round(w.start, 2) for w in large]


def test_a_gap_in_the_stream_ends_the_segment(sentence: np.ndarray) -> None:
    """Dropped audio (an overflow) must not glue two stretches of speech into one window."""
    segmenter = SpeechSegmenter(RATE)
    half = len(sentence) // 2
    out = segmenter.push(AudioChunk("mic", T0, RATE, concat(room_tone(1.0), sentence[:half])))
    later = T0 + 30.0
    out += segmenter.push(AudioChunk("mic", later, RATE, concat(sentence[half:], room_tone(2.0))))
    out += segmenter.finish("mic")
    assert out
    assert not any(w.start < later < w.end for w in out)


def test_memory_stays_bounded_on_a_long_stream(sentence: np.ndarray) -> None:
    segmenter = SpeechSegmenter(RATE)
    block = concat(sentence, room_tone(1.0))
    t = T0
    for _ in range(12):
        segmenter.push(AudioChunk("mic", t, RATE, block))
        t += len(block) / RATE
    assert len(segmenter._audio) <= segmenter._keep
    assert len(segmenter._frame_level) < 1200


def test_other_sample_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        SpeechSegmenter(RATE).push(AudioChunk("mic", T0, 8000, np.zeros(800, np.float32)))
