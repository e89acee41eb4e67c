"""Config validation: every problem named with file, line and key; paths resolved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sensekit.config import load_config, parse_config
from sensekit.errors import ConfigError
from sensekit.types import DetectorModel

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
site: shop-1
device: kiosk-1
cameras:
  - name: front
    source: 0
    detector:
      model: full_range
    zones:
      - name: queue
        polygon: [[0, 0], [1, 0], [1, 1]]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.yaml")
    return info.value.problems


def test_a_valid_config_loads_with_defaults() -> None:
    config = parse_config(GOOD)
    assert config.cameras[0].detector.model is DetectorModel.FULL_RANGE
    assert config.aggregation.k_threshold == 5 and config.aggregation.window_s == 60
    assert config.mqtt.port == 1883 and not config.mqtt.use_tls


def test_unknown_keys_are_errors_with_their_line() -> None:
    text = GOOD + "aggregation:\n  window_s: 30\n  k_treshold: 5\n"
    assert problems(text) == [
        "cfg.yaml:13: aggregation.k_treshold: unknown key (check the spelling; see configs/ for the valid keys)"
    ]


def test_nested_list_errors_point_at_the_item() -> None:
    text = GOOD.replace("[[0, 0], [1, 0], [1, 1]]", "[[0, 0], [1.5, 0], [1, 1]]")
    (problem,) = problems(text)
    assert problem.startswith("cfg.yaml:10: cameras.0.zones.0.polygon.1.0: ")
    assert "less than or equal to 1" in problem


def test_all_problems_are_reported_in_line_order() -> None:
    text = GOOD.replace("model: full_range", "model: medium_range").replace(
        "name: queue", "name: 'queue/1'"
    )
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["7", "9"]
    assert "cameras.0.detector.model" in found[0] and "cameras.0.zones.0.name" in found[1]


def test_missing_required_keys_and_wrong_types() -> None:
    found = problems("device: d\ncameras: {}\nmqtt:\n  keepalive_s: soon\n")
    text = "\n".join(found)
    assert "cfg.yaml:1: site: Field required" in text
    assert "cfg.yaml:2: cameras: Input should be a valid list" in text
    assert "cfg.yaml:4: mqtt.keepalive_s:" in text


def test_yaml_syntax_errors_and_duplicate_keys_give_a_line() -> None:
    assert problems("site: a\ncameras: [\n")[0].startswith("cfg.yaml:3: (yaml):")
    assert problems("site: a\nsite: b\ncameras: [{}]\n") == [
        "cfg.yaml:2: (yaml): duplicate key 'site'"
    ]
    assert problems("") == ["cfg.yaml:1: (top level): the file is empty"]
    assert problems("- a\n- b\n") == [
        "cfg.yaml:1: (top level): must be a mapping of keys to values"
    ]


def test_bad_broker_url_and_k_below_the_allowed_minimum() -> None:
    text = GOOD + "mqtt:\n  url: http://broker\naggregation:\n  k_threshold: 2\n"
    found = problems(text)
    assert any(p.startswith("cfg.yaml:12: mqtt.url: must look like mqtt://") for p in found)
    assert any(p.startswith("cfg.yaml:14: aggregation.k_threshold:") for p in found)


def test_duplicate_zone_names_are_refused() -> None:
    text = (
        GOOD
        + "  - name: back\n    source: 1\n    zones:\n      - name: queue\n        polygon: [[0,0],[1,0],[1,1]]\n"
    )
    assert "zone names must be unique" in problems(text)[0]


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "cfg.yaml").write_text(
        "site: s\ncameras:\n  - source: clips/door.mp4\n  - name: live\n    source: /dev/video0\n"
        "mqtt:\n  username: u\n  password_file: secret\n"
    )
    config = load_config(folder / "cfg.yaml")
    assert config.cameras[0].source == str(folder.resolve() / "clips/door.mp4")
    assert config.cameras[1].source == "/dev/video0"
    assert config.mqtt.password_file == folder.resolve() / "secret"


def test_the_shipped_example_configs_are_valid() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(path)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sensekit", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_exit_codes_and_output(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    result = run_cli("check-config", str(good))
    assert result.returncode == 0 and "valid" in result.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD + "stats:\n  interval_s: 0\n  colour: blue\n")
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{bad}:12: stats.interval_s: Input should be greater than or equal to 1",
        f"{bad}:13: stats.colour: unknown key (check the spelling; see configs/ for the valid keys)",
    ]
    assert "Traceback" not in result.stderr

    missing = run_cli("check-config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stdout


MIC_ONLY = """\
site: shop-1
device: kiosk-1
microphones:
  - name: counter
    source: default
    zone: till
"""


def test_a_microphone_only_device_is_valid() -> None:
    config = parse_config(MIC_ONLY)
    assert config.cameras == [] and config.microphones[0].zone == "till"
    assert config.microphones[0].sample_rate == 16000
    assert config.voice.normalisation.mode == "learn" and config.voice.k_windows == 10


def test_a_device_needs_a_camera_or_a_microphone() -> None:
    assert problems("site: shop-1\n") == [
        "cfg.yaml:1: (top level): configure at least one camera or microphone"
    ]


def test_microphone_problems_name_their_line() -> None:
    text = MIC_ONLY.replace("    zone: till\n", "    zone: till\n    sample_rate: 4000\n")
    text += "  - name: counter\n    zone: till\nvoice:\n  k_windos: 3\n"
    found = problems(text)
    assert (
        "cfg.yaml:7: microphones.0.sample_rate: Input should be greater than or equal to 8000"
        in found
    )
    assert any(p.startswith("cfg.yaml:11: voice.k_windos: unknown key") for p in found)
    missing_zone = problems(MIC_ONLY.replace("    zone: till\n", ""))
    assert missing_zone == ["cfg.yaml:4: microphones.0.zone: Field required"]


def test_audio_files_resolve_relative_to_the_config(tmp_path: Path) -> None:
    path = tmp_path / "device.yaml"
    path.write_text(MIC_ONLY.replace("source: default", "source: sound/shop.flac"))
    config = load_config(path)
    assert config.microphones[0].source == str(tmp_path / "sound" / "shop.flac")
    path.write_text(MIC_ONLY.replace("source: default", "source: hw:1,0"))
    assert load_config(path).microphones[0].source == "hw:1,0"


PRIVATE = (
    GOOD
    + """\
    masks:
      - name: till
        polygon: [[0.8, 0.5], [1, 0.5], [1, 1]]
schedule:
  timezone: Europe/Paris
  hours:
    - days: [mon, fri]
      open: "09:00"
      close: "25:00"
    - days: [sunday]
      open: "22:00"
      close: "22:00"
  closed_dates: [2026-13-01]
privacy:
  dp_epsilon: 0
"""
)


def test_masks_schedule_and_privacy_errors_name_their_line_and_key() -> None:
    found = problems(PRIVATE)
    assert any(p.startswith("cfg.yaml:19: schedule.hours.0.close:") for p in found), found
    assert any(p.startswith("cfg.yaml:20: schedule.hours.1.days.0:") for p in found), found
    bad_time = "cfg.yaml:19: schedule.hours.0.close: '25:00' is not a time of day: use HH:MM, "
    assert bad_time + "00:00 to 24:00" in found
    same = problems(PRIVATE.replace("sunday", "sun"))
    assert any(p.startswith("cfg.yaml:20: schedule.hours.1:") and "same time" in p for p in same)
    assert any(p.startswith("cfg.yaml:23: schedule.closed_dates.0:") for p in found), found
    assert any(p.startswith("cfg.yaml:25: privacy.dp_epsilon:") for p in found), found


def test_an_unknown_time_zone_is_refused() -> None:
    found = problems(GOOD + "schedule:\n  timezone: Europe/Pariss\n")
    assert found == [
        "cfg.yaml:12: schedule.timezone: unknown time zone 'Europe/Pariss' "
        "(use an IANA name such as Europe/Paris)"
    ]


def test_masks_and_privacy_load() -> None:
    text = PRIVATE.replace('"25:00"', '"20:00"').replace("sunday", "sun")
    text = text.replace('close: "22:00"', 'close: "02:00"').replace("2026-13-01", "2026-12-25")
    config = parse_config(text.replace("dp_epsilon: 0", "dp_epsilon: 0.5"))
    assert config.cameras[0].masks[0].name == "till"
    assert config.schedule.hours[1].close == "02:00"
    assert config.privacy.dp_epsilon == 0.5
