"""Voice windows and their merge with the camera's (the thresholds: test_release.py)."""

from __future__ import annotations

import numpy as np

from sensekit.aggregate_voice import VoiceAggregator
from sensekit.assemble import WindowAssembler
from sensekit.types import (
    VOICE_AROUSAL_LABELS,
    VOICE_EMOTION_LABELS,
    FaceTally,
    Visit,
    VoiceResult,
    VoiceScores,
    VoiceTally,
)

T0 = 1_767_225_600.0  # a multiple of 60 s


def result(
    mid: float, arousal: str = "high", emotion: str = "happy", mic: str = "mic"
) -> VoiceResult:
    a = np.zeros(3, np.float32)
    a[VOICE_AROUSAL_LABELS.index(arousal)] = 1.0
    e = np.zeros(7, np.float32)
    e[VOICE_EMOTION_LABELS.index(emotion)] = 1.0
    return VoiceResult(mic, mid - 1.0, mid + 1.0, VoiceScores(a, e))


def faces(zone: str, start: float, people: int) -> FaceTally:
    return FaceTally(
        zone=zone,
        camera="cam",
        window_start=start,
        window_end=start + 60,
        complete=True,
        frames=600,
        visits=tuple(Visit(i, None) for i in range(people)),
    )


def test_results_land_in_the_window_of_their_midpoint() -> None:
    agg = VoiceAggregator("mic", "till", window_s=60, latency_s=4.0)
    agg.add([result(T0 + 10), result(T0 + 59.5, "low", "sad"), result(T0 + 60.5)])
    assert agg.heard(T0, T0 + 62.0) == []  # not yet final: a late result may still come
    closed = agg.heard(T0 + 62.0, T0 + 64.0)
    assert len(closed) == 1
    first = closed[0]
    assert first.windows == 2 and first.audio_s == 60.0
    low, high = VOICE_AROUSAL_LABELS.index("low"), VOICE_AROUSAL_LABELS.index("high")
    assert first.counts[low, VOICE_EMOTION_LABELS.index("sad")] == 1
    assert first.counts[high, VOICE_EMOTION_LABELS.index("happy")] == 1
    rest = agg.flush(T0 + 70.0)
    assert len(rest) == 1 and rest[0].windows == 1 and rest[0].complete is False
    assert rest[0].window_end == T0 + 70.0


def test_a_window_without_speech_still_reports_the_audio_heard() -> None:
    agg = VoiceAggregator("mic", "till", window_s=60, latency_s=4.0)
    agg.heard(T0, T0 + 30)
    (window,) = agg.flush(T0 + 30)
    assert window.windows == 0 and window.audio_s == 30.0


def assembler(zones: dict[str, set[str]]) -> WindowAssembler:
    cameras = {zone for zone, sources in zones.items() if "cam" in sources}
    return WindowAssembler("s", "d", zones, cameras, grace_s=30.0)


def voice_window(n: int, start: float = T0, mic: str = "mic", zone: str = "till") -> VoiceTally:
    agg = VoiceAggregator(mic, zone, 60, 0.0)
    agg.add([result(start + 1 + i) for i in range(n)])
    (window,) = agg.heard(start, start + 60)  # no latency: final at once
    return window


def test_the_zone_waits_for_both_its_camera_and_its_microphone() -> None:
    join = assembler({"till": {"cam", "mic"}})
    assert join.add_faces("cam", [faces("till", T0, people=6)]) == []
    (window,) = join.add_voice("mic", [voice_window(5)])
    assert window.faces is not None and len(window.faces.visits) == 6
    assert window.voice is not None and window.voice.windows == 5
    assert window.has_camera


def test_a_zone_without_camera_is_marked_so() -> None:
    join = assembler({"till": {"mic"}})
    (window,) = join.add_voice("mic", [voice_window(3)])
    assert window.faces is None and not window.has_camera


def test_microphones_of_one_zone_are_added_up() -> None:
    join = assembler({"till": {"a", "b"}})
    assert join.add_voice("a", [voice_window(2, mic="a")]) == []
    (window,) = join.add_voice("b", [voice_window(2, mic="b")])
    assert window.voice is not None
    assert window.voice.microphones == ("a", "b")
    assert window.voice.windows == 4
    assert window.voice.audio_s == 120.0


def test_an_ended_source_is_not_waited_for() -> None:
    join = assembler({"till": {"cam", "mic"}})
    assert join.add_faces("cam", [faces("till", T0, people=6)]) == []
    (window,) = join.source_absent("mic")
    assert window.voice is None and window.faces is not None
    # While the microphone is away, the camera's next window goes straight out.
    assert len(join.add_faces("cam", [faces("till", T0 + 60, people=6)])) == 1
    join.source_present("mic")
    assert join.add_faces("cam", [faces("till", T0 + 120, people=6)]) == []


def test_live_windows_expire_after_the_grace_period() -> None:
    join = assembler({"till": {"cam", "mic"}})
    join.add_faces("cam", [faces("till", T0, people=6)])
    assert join.expire(T0 + 60 + 29) == []
    (window,) = join.expire(T0 + 60 + 31)
    assert window.voice is None


def test_shutdown_flushes_everything_pending() -> None:
    join = assembler({"till": {"cam", "mic"}, "door": {"cam"}})
    join.add_faces("cam", [faces("till", T0, people=6)])
    join.add_voice("mic", [voice_window(5, start=T0 + 60)])
    flushed = join.flush()
    assert [(w.zone, w.window_start) for w in flushed] == [("till", T0), ("till", T0 + 60)]
    assert join.pending == 0
