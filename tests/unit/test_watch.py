"""`sensekit watch`'s model and renderer, fed with a real recorded message stream (the demo
pipeline publishing to a real mosquitto) and with payloads made by sensekit's own builders for
the cases a demo never produces (repeats, late windows, null faces or voice, dead devices)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import pytest

from sensekit.broker import LocalBroker
from sensekit.cli import main
from sensekit.dashboards.messages import Message, read_log, write_message
from sensekit.dashboards.watch_render import (
    Charset,
    Style,
    bar,
    frame_text,
    render_frame,
)
from sensekit.dashboards.watch_state import Applied, Liveness, WatchState, age_text
from sensekit.health import HealthReporter
from sensekit.publish.payloads import Topics, status_payload, window_payload
from sensekit.types import FaceCounts, VoiceCounts, ZoneWindow
from tests.dashboard_fixtures import newest_windows, record_demo
from tests.mqtt_client import schema_for

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, on a window boundary
TOPICS = Topics("sensekit", "shop", "cam-1")


# the real stream -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_log(tmp_path_factory) -> Path:
    """One real recording shared by the tests of this module (the demo takes a few seconds)."""
    path = tmp_path_factory.mktemp("watch") / "demo.jsonl"
    with LocalBroker() as broker:
        messages = record_demo(broker, path)
    assert any(m.topic.endswith("/window") for m in messages)
    return path


def demo_messages(path: Path) -> list[Message]:
    return list(read_log(path))


def replayed(messages: list[Message]) -> WatchState:
    state = WatchState()
    for message in messages:
        state.apply(message)
    return state


def test_the_demo_stream_builds_one_device_with_its_zones_newest_windows(demo_log):
    messages = demo_messages(demo_log)
    state = WatchState()
    outcomes = [state.apply(m) for m in messages]
    assert set(outcomes) == {Applied.ACCEPTED}

    assert list(state.devices) == ["demo-store/demo-entrance"]
    device = state.devices["demo-store/demo-entrance"]
    newest = newest_windows(messages)
    assert set(device.zones) == set(newest) == {"inside", "outside"}
    for name, payload in newest.items():
        window = device.zones[name].window
        assert window is not None
        assert window.window_id == payload["window_id"]
        assert window.faces is not None
        assert window.faces.people == payload["faces"]["people"]
        assert window.faces.score == payload["faces"]["net_emotion_score"]
        assert dict(window.faces.expressions) == payload["faces"]["expressions"]
        if payload["voice"] is None:
            assert window.voice is None
        else:
            assert window.voice is not None
            assert dict(window.voice.arousal) == payload["voice"]["arousal"]

    last_stats = [m for m in messages if m.topic.endswith("/stats")][-1]
    assert device.stats is not None
    assert device.stats.interval_s == last_stats.payload["interval_s"]
    assert device.stats.received_at == last_stats.received_at
    door = last_stats.payload["cameras"]["door"]
    assert [(c.name, c.processed_fps, c.frames_dropped) for c in device.stats.cameras] == [
        ("door", door["processed_fps"], door["frames_dropped"])
    ]
    assert device.status is not None and device.status.state == "stopped"
    # A cleanly stopped device is not dead, however long ago it stopped.
    assert device.liveness(state.last_received + 86400)[0] is Liveness.STOPPED


def test_the_demo_frame_shows_zones_counts_bars_and_scores(demo_log):
    messages = demo_messages(demo_log)
    state = replayed(messages)
    text = frame_text(state, 80, state.last_received, source="replay")
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "demo-store/demo-entrance" in lines[1] and "stopped" in lines[1]
    assert "cam door" in text and "mqtt connected" in text and "degraded: none" in text

    for name, payload in newest_windows(messages).items():
        title = next(line for line in lines if line.startswith(f"  ▸ {name} "))
        faces = payload["faces"]
        assert f"people {faces['people']}" in title
        score = faces["net_emotion_score"]
        assert f"score {'—' if score is None else f'{score:+.1f}'}" in title
    # The demo's inside zone ends with everyone happy: the happy bar is the only one, full.
    inside = newest_windows(messages)["inside"]["faces"]
    assert inside["expressions"]["happy"] == inside["people"] > 0
    happy_row = next(line for line in lines if line.strip().startswith("happy"))
    happy_bar = happy_row.split()[2]
    assert set(happy_bar) == {"█"} and len(happy_bar) >= 10
    voice = newest_windows(messages)["inside"]["voice"]
    voice_row = next(line for line in lines if "speech windows" in line)
    assert f"{voice['windows']} speech windows" in voice_row
    for level in ("low", "mid", "high"):
        assert f"{level} {voice['arousal'][level]}" in voice_row


def test_repeated_delivery_of_the_whole_stream_changes_nothing(demo_log):
    messages = demo_messages(demo_log)
    state = replayed(messages)
    before = {n: z.window for n, z in state.devices["demo-store/demo-entrance"].zones.items()}
    windows = [m for m in messages if m.topic.endswith("/window")]
    assert {state.apply(m) for m in windows} == {Applied.DUPLICATE}
    zones = state.devices["demo-store/demo-entrance"].zones
    assert {n: z.window for n, z in zones.items()} == before
    assert sum(z.duplicates for z in zones.values()) == len(windows)


def test_windows_in_any_order_end_on_each_zones_newest(demo_log):
    messages = demo_messages(demo_log)
    windows = [m for m in messages if m.topic.endswith("/window")]
    newest = newest_windows(messages)
    for seed in range(5):
        shuffled = windows[:]
        random.Random(seed).shuffle(shuffled)
        state = replayed(shuffled)
        zones = state.devices["demo-store/demo-entrance"].zones
        assert {n: z.window.window_id for n, z in zones.items()} == {
            n: p["window_id"] for n, p in newest.items()
        }


def test_replay_once_prints_the_final_frame(demo_log, capsys):
    assert main(["watch", "--replay", str(demo_log), "--once"]) == 0
    out = capsys.readouterr().out
    state = replayed(demo_messages(demo_log))
    expected = frame_text(state, 80, state.last_received, source=f"replay of {demo_log.name}")
    assert out.rstrip("\n") == expected


# hand-built payloads ---------------------------------------------------------------------------
def faces(unclassified: int = 0, camera: str = "door", **expressions: int) -> FaceCounts:
    counts = {name: 0 for name in ("angry", "disgust", "fear", "happy", "sad", "surprise")}
    counts["neutral"] = 0
    counts.update(expressions)
    return FaceCounts(
        camera=camera,
        frames=200,
        people=sum(counts.values()) + unclassified,
        expressions=counts,
        unclassified=unclassified,
        mean_probabilities=None,
    )


def voice(low: int = 0, mid: int = 0, high: int = 0) -> VoiceCounts:
    emotions = dict.fromkeys(("angry", "bored", "disgust", "fear", "happy", "neutral", "sad"), 0)
    emotions["neutral"] = low + mid + high
    return VoiceCounts(
        ("counter",), 20.0, low + mid + high, 3, {"low": low, "mid": mid, "high": high}, emotions
    )


def window(
    zone: str = "entrance",
    start: float = T0,
    seconds: float = 20.0,
    *,
    face_counts: FaceCounts | None = None,
    voice_counts: VoiceCounts | None = None,
    complete: bool = True,
    seq: int = 1,
    at: float | None = None,
) -> Message:
    payload = window_payload(
        ZoneWindow(
            TOPICS.site,
            TOPICS.device,
            zone,
            start,
            start + seconds,
            complete,
            5,
            None,
            face_counts,
            voice_counts,
        ),
        seq,
    )
    return message(TOPICS.window(zone), payload, at if at is not None else start + seconds + 1)


def status(state: str, at: float, *, retained: bool = False, made: float | None = None) -> Message:
    payload = status_payload(TOPICS.site, TOPICS.device, state, made if made is not None else at)
    return message(TOPICS.status, payload, at, retained=retained)


def stats(
    at: float,
    *,
    interval_s: float = 5.0,
    degraded: list[str] | None = None,
    spool_depth: int | None = 3,
) -> Message:
    reporter = HealthReporter(TOPICS.site, TOPICS.device, interval_s=interval_s)
    reporter.frame_processed("door")
    spool = None
    if spool_depth is not None:
        spool = {
            "depth": spool_depth,
            "bytes": 900,
            "oldest_age_s": 4.0,
            "dropped": 0,
            "delivered": 12,
        }
    payload = reporter.report(
        at,
        sources={"door": {"state": "ok", "frames_captured": 150, "frames_dropped": 7}},
        inference_ms={"expression": 1.5},
        mqtt={
            "connected": True,
            "state": "connected",
            "reconnects": 0,
            "unacknowledged": 0,
            "last_error": None,
        },
        spool=spool,
        windows_published=4,
        degraded=degraded,
    )
    return message(TOPICS.stats, payload, at)


def message(topic: str, payload: dict | None, at: float, *, retained: bool = False) -> Message:
    if payload is not None:  # hand-built, but exactly what a device publishes
        jsonschema.validate(payload, schema_for(topic))
    return Message(topic, payload, retained, at)


def state_of(*messages: Message) -> WatchState:
    return replayed(list(messages))


def zone_window(state: WatchState, zone: str = "entrance"):
    return state.devices[f"{TOPICS.site}/{TOPICS.device}"].zones[zone].window


def device_of(state: WatchState):
    return state.devices[f"{TOPICS.site}/{TOPICS.device}"]


def test_a_repeated_window_id_is_dropped_even_with_other_counts():
    state = WatchState()
    first = window(face_counts=faces(happy=5))
    assert state.apply(first) is Applied.ACCEPTED
    repeat = window(face_counts=faces(sad=9), at=T0 + 99)  # same zone and span: same id
    assert repeat.payload["window_id"] == first.payload["window_id"]
    assert state.apply(repeat) is Applied.DUPLICATE
    shown = zone_window(state)
    assert shown.faces.people == 5 and shown.received_at == first.received_at
    assert device_of(state).zones["entrance"].duplicates == 1
    assert "ignored 1 repeated, 0 late" in frame_text(state, 100, T0 + 100)


def test_an_older_window_arriving_after_a_newer_one_is_ignored():
    state = WatchState()
    assert state.apply(window(start=T0 + 20, face_counts=faces(happy=6))) is Applied.ACCEPTED
    assert state.apply(window(start=T0, face_counts=faces(angry=5))) is Applied.LATE
    assert zone_window(state).start == T0 + 20
    assert zone_window(state).faces.score == 100.0
    assert state.apply(window(start=T0 + 40, face_counts=faces(angry=5))) is Applied.ACCEPTED
    assert zone_window(state).faces.score == -100.0
    assert device_of(state).zones["entrance"].late == 1


def test_null_faces_null_voice_and_null_score_are_shown_as_absent():
    state = state_of(
        window("counter", voice_counts=voice(low=4, mid=0, high=12)),
        window("door", face_counts=faces(unclassified=6)),
        window("aisle", face_counts=faces(happy=5, neutral=5, sad=5)),
    )
    counter, door, aisle = (zone_window(state, z) for z in ("counter", "door", "aisle"))
    assert counter.faces is None and counter.voice is not None
    assert door.voice is None and door.faces.score is None and door.faces.people == 6
    assert aisle.faces.score == 0.0

    lines = frame_text(state, 80, T0 + 30).splitlines()
    counter_at = next(i for i, line in enumerate(lines) if line.startswith("  ▸ counter "))
    assert "people" not in lines[counter_at] and "score" not in lines[counter_at]
    assert "faces: none this window" in lines[counter_at + 1]
    voice_row = lines[counter_at + 2]
    assert "16 speech windows" in voice_row and "mid  0" in voice_row
    high_bar = voice_row.split("high 12 ")[1].strip()
    low_bar = voice_row.split("low  4 ")[1].split("mid")[0].strip()
    assert len(high_bar) > len(low_bar) > 0  # proportional: 12 of 16 against 4 of 16

    door_at = next(i for i, line in enumerate(lines) if line.startswith("  ▸ door "))
    assert "people 6" in lines[door_at] and "score —" in lines[door_at]
    door_block = lines[door_at + 1 : door_at + 5]
    assert not any("voice" in line for line in door_block)
    assert any("unclass.   6 " in line and "█" in line for line in door_block)
    aisle_title = next(line for line in lines if line.startswith("  ▸ aisle "))
    assert "score +0.0" in aisle_title


def test_an_incomplete_window_is_marked():
    state = state_of(window(seconds=7, complete=False, face_counts=faces(happy=5)))
    assert zone_window(state).complete is False
    title = next(line for line in frame_text(state, 120, T0 + 10).splitlines() if "▸" in line)
    assert "INCOMPLETE" in title


def test_a_window_schema_3_payload_gets_its_score_computed():
    current = window(face_counts=faces(happy=6, sad=3, neutral=3))
    older = json.loads(json.dumps(current.payload))
    older["schema"] = "sensekit.window/3"
    del older["faces"]["net_emotion_score"]
    state = WatchState()
    state.apply(Message(current.topic, older, False, current.received_at))
    assert zone_window(state).faces.score == current.payload["faces"]["net_emotion_score"] == 25.0


def test_a_device_is_dead_after_three_silent_stats_intervals():
    state = state_of(status("online", T0), stats(T0 + 1, interval_s=5.0))
    device = device_of(state)
    assert device.liveness(T0 + 1 + 15.0)[0] is Liveness.ALIVE
    liveness, reason = device.liveness(T0 + 1 + 15.5)
    assert liveness is Liveness.DEAD and "no stats for 15s" in reason
    alive = frame_text(state, 100, T0 + 10).splitlines()
    dead = frame_text(state, 100, T0 + 60).splitlines()
    assert "DEAD" not in alive[1] and "online 10s ago" in alive[1]
    assert dead[1].startswith("shop/cam-1 · DEAD: no stats for 59s")
    assert "(1 dead)" in dead[0]
    frame = render_frame(state, 100, 24, T0 + 60)
    assert frame.lines[1].style is Style.ALERT
    # The next stats message brings it back.
    state.apply(stats(T0 + 61))
    assert device.liveness(T0 + 62)[0] is Liveness.ALIVE


def test_offline_is_dead_at_once_and_stopped_never_is():
    state = state_of(status("online", T0), stats(T0 + 1), status("offline", T0 + 3, made=T0))
    device = device_of(state)
    assert device.liveness(T0 + 3) == (Liveness.DEAD, "status offline (last will)")
    assert device.status.since == T0 + 3  # when the will arrived, not its connect-time stamp
    assert "DEAD: offline 7s ago (last will)" in frame_text(state, 120, T0 + 10)

    retained = state_of(status("offline", T0 + 100, retained=True, made=T0))
    assert device_of(retained).status.since is None
    assert "since before watching" in frame_text(retained, 120, T0 + 101)

    stopped = state_of(status("online", T0), stats(T0 + 1), status("stopped", T0 + 2))
    assert device_of(stopped).liveness(T0 + 10_000)[0] is Liveness.STOPPED
    assert "stopped 2h46m ago" in frame_text(stopped, 120, T0 + 10_002)


def test_a_device_without_stats_is_waited_for_then_declared_dead():
    state = state_of(status("online", T0 - 500, retained=True))
    device = device_of(state)
    assert device.liveness(T0 - 500 + 30)[0] is Liveness.WAITING
    assert device.liveness(T0 - 500 + 91)[0] is Liveness.DEAD
    only_windows = state_of(window(face_counts=faces(happy=5)))
    assert device_of(only_windows).liveness(T0 + 22)[0] is Liveness.UNKNOWN


def test_stats_without_interval_assume_the_default():
    message_ = stats(T0)
    payload = dict(message_.payload)
    payload["schema"] = "sensekit.stats/2"
    del payload["interval_s"]
    state = WatchState()
    state.apply(Message(TOPICS.stats, payload, False, T0))
    assert device_of(state).stats.interval_s is None
    assert device_of(state).liveness(T0 + 89)[0] is Liveness.ALIVE
    assert device_of(state).liveness(T0 + 91)[0] is Liveness.DEAD


def test_stats_line_shows_cameras_spool_mqtt_and_degraded():
    state = state_of(
        status("online", T0),
        stats(T0 + 5, degraded=["camera door: no frames for 30 s", "spool nearly full"]),
    )
    frame = render_frame(state, 200, 24, T0 + 6)
    texts = [line.text for line in frame.lines]
    assert "cam door" in texts[2] and "7 dropped" in texts[2]
    assert "spool 3" in texts[2] and "mqtt connected" in texts[2]
    assert "up " in texts[1] and "every 5s" in texts[1]
    degraded = frame.lines[3]
    assert degraded.style is Style.ALERT
    assert degraded.text == "  degraded: camera door: no frames for 30 s; spool nearly full"

    no_spool = state_of(stats(T0, spool_depth=None))
    assert "spool off" in frame_text(no_spool, 200, T0 + 1)


def test_empty_retained_messages_clear_zones_and_devices():
    state = state_of(status("online", T0), window(face_counts=faces(happy=5)))
    assert state.apply(Message(TOPICS.window("entrance"), None, True, T0 + 30)) is Applied.CLEARED
    assert device_of(state).zones == {}
    assert state.apply(Message(TOPICS.status, None, True, T0 + 31)) is Applied.CLEARED
    assert state.devices == {}
    assert "no sensekit messages yet" in frame_text(state, 80, T0 + 32)


def test_foreign_and_malformed_messages_are_counted_not_raised():
    state = WatchState()
    assert state.apply(Message("other/topic", {"x": 1}, False, T0)) is Applied.FOREIGN
    broken = window(face_counts=faces(happy=5)).payload
    del broken["window_id"]
    assert state.apply(Message(TOPICS.window("entrance"), broken, False, T0)) is Applied.MALFORMED
    bad_time = dict(window(face_counts=faces(happy=5)).payload, window_start="yesterday")
    assert state.apply(Message(TOPICS.window("x"), bad_time, False, T0)) is Applied.MALFORMED
    assert state.apply(Message(TOPICS.status, {"schema": "?"}, False, T0)) is Applied.MALFORMED
    assert state.malformed == 3
    assert "3 messages not understood" in frame_text(state, 200, T0)


def test_the_privacy_manifest_announces_zones_before_their_first_window(demo_log):
    manifest = next(m for m in demo_messages(demo_log) if m.topic.endswith("/privacy"))
    state = WatchState()
    assert state.apply(manifest) is Applied.ACCEPTED
    device = state.devices["demo-store/demo-entrance"]
    assert set(device.zones) == set(manifest.payload["zones"]) == {"inside", "outside"}
    text = frame_text(state, 80, manifest.received_at)
    assert "inside: no window yet" in text and "outside: no window yet" in text


# the renderer at any size ----------------------------------------------------------------------
def busy_state() -> WatchState:
    return state_of(
        status("online", T0),
        stats(T0 + 1, degraded=["microphone counter unplugged"]),
        window("a-zone-with-a-rather-long-name-indeed", face_counts=faces(happy=50, sad=7)),
        window("counter", voice_counts=voice(low=3, mid=30, high=300)),
        window("door", face_counts=faces(unclassified=5), voice_counts=voice(mid=9)),
    )


@pytest.mark.parametrize("charset", list(Charset))
def test_no_size_is_too_small_and_nothing_overflows(charset):
    state = busy_state()
    for width in [*range(0, 42), 59, 60, 61, 79, 80, 81, 120, 300]:
        for height in [*range(0, 12), 23, 24, 25, 60]:
            for scroll in (0, 3, 1000):
                frame = render_frame(state, width, height, T0 + 30, scroll=scroll, charset=charset)
                assert len(frame.lines) <= height
                for line in frame.lines:
                    assert len(line.text) <= width
                    if charset is Charset.ASCII:
                        line.text.encode("ascii")
                assert 0 <= frame.scroll <= max(frame.body_lines, 0)


def test_a_tall_picture_scrolls_with_an_indicator():
    state = busy_state()
    full = render_frame(state, 80, None, T0 + 30)
    body = [line.text for line in full.lines[1:]]
    top = render_frame(state, 80, 10, T0 + 30, scroll=0)
    assert [line.text for line in top.lines[1:9]] == body[:8]
    assert top.lines[-1].text == f"-- lines 1-8 of {len(body)} (↑↓ PgUp PgDn to scroll) --"
    bottom = render_frame(state, 80, 10, T0 + 30, scroll=10_000)
    assert bottom.scroll == len(body) - 8
    assert [line.text for line in bottom.lines[1:9]] == body[-8:]
    narrow = render_frame(state, 20, 6, T0 + 30, scroll=2)
    assert narrow.lines[-1].text == f"-- 3-6/{render_frame(state, 20, None, T0 + 30).body_lines} --"


def test_an_80x24_terminal_shows_the_demo_sized_picture_without_scrolling():
    state = state_of(
        status("online", T0),
        stats(T0 + 1),
        window("inside", face_counts=faces(happy=10), voice_counts=voice(low=9, mid=3)),
        window("outside", face_counts=faces(happy=7)),
    )
    frame = render_frame(state, 80, 24, T0 + 25)
    assert frame.body_lines < 23
    assert not frame.lines[-1].text.startswith("--")
    header = frame.lines[0].text
    assert header.startswith("sensekit watch · 00:00:25Z") and "1 device, 2 zones" in header


def test_a_window_from_another_day_shows_its_date():
    state = state_of(window(face_counts=faces(happy=5)))
    assert "00:00:00–00:00:20Z" in frame_text(state, 100, T0 + 30)
    assert "2026-01-01 00:00:00–00:00:20Z" in frame_text(state, 100, T0 + 86_400 * 2)


def test_bars_are_proportional_and_a_nonzero_count_stays_visible():
    assert bar(5, 10, 10) == "█████"
    assert bar(10, 10, 10) == "█" * 10
    assert bar(1, 16, 2) == "▏"  # 1/8 of a cell
    assert bar(3, 16, 2) == "▍"  # 3/8
    assert bar(1, 1000, 10) == "▏"
    assert bar(0, 10, 10) == "" and bar(3, 0, 10) == "" and bar(3, 10, 0) == ""
    assert bar(5, 10, 10, Charset.ASCII) == "#####"
    assert bar(1, 1000, 10, Charset.ASCII) == "#"


def test_ages_read_at_a_glance():
    assert [age_text(s) for s in (-3, 0, 59.9, 60, 3599, 3600, 7500, 86_400 * 3 + 4 * 3600)] == [
        "0s",
        "0s",
        "59s",
        "1m00s",
        "59m59s",
        "1h00m",
        "2h05m",
        "3d04h",
    ]


# the command without a broker ------------------------------------------------------------------
def test_usage_errors_exit_2(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text("")
    assert main(["watch"]) == 2
    assert main(["watch", "--broker", "mqtt://127.0.0.1:1", "--replay", str(log)]) == 2
    assert main(["watch", "--replay", str(log), "--record", str(tmp_path / "x")]) == 2
    assert main(["watch", "--replay", str(tmp_path / "missing.jsonl"), "--once"]) == 2
    log.write_text('{"topic": "sensekit/a/b/status"}\n')
    assert main(["watch", "--replay", str(log), "--once"]) == 2
    assert capsys.readouterr().out == ""


def test_replay_of_hand_built_log_prints_the_frame(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    messages = [
        status("online", T0),
        window(face_counts=faces(happy=5, angry=5)),
        stats(T0 + 21),
        window(face_counts=faces(happy=5, angry=5)),  # delivered twice
    ]
    with log.open("w") as out:
        for m in messages:
            write_message(out, m)
    assert main(["watch", "--replay", str(log), "--once"]) == 0
    out = capsys.readouterr().out
    assert "shop/cam-1 · online" in out
    assert "people 10 · score +0.0" in out
    assert "ignored 1 repeated, 0 late" in out
