"""Nothing counted is lost: broker outages, SIGKILL, a full spool, refused credentials fixed by
a reload, an invalid reload, a corrupt spool. Real mosquitto, real `sensekit run` processes."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensekit.broker import LocalBroker
from tests.conftest import password_broker
from tests.integration.daemon_process import DaemonProcess, five_faces_video
from tests.mqtt_client import Subscriber

STATUS = "sensekit/lab/pi-7/status"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return five_faces_video(tmp_path_factory.mktemp("media") / "five.mp4", seconds=30)


@pytest.fixture
def durable_broker() -> Iterator[LocalBroker]:
    """A mosquitto with persistence, as in production: a dashboard's session survives it."""
    broker = LocalBroker(persistent=True).start()
    yield broker
    broker.remove()


def write_config(
    tmp_path: Path, broker: LocalBroker, video: Path, replay: str = "realtime", extra: str = ""
) -> Path:
    config = tmp_path / "sensekit.yaml"
    config.write_text(
        f"""site: lab
device: pi-7
mqtt:
  url: {broker.url}
  keepalive_s: 5
  connect_timeout_s: 2
cameras:
  - name: cam
    source: {str(video)!r}
    replay: {replay}
aggregation:
  window_s: 5
  k_threshold: 5
stats:
  interval_s: 1
{extra}"""
    )
    return config


def in_order_once(subscriber: Subscriber, expected: list[str]) -> list[dict]:
    """What a dashboard keeps (first copy per window_id) is exactly `expected`, in order."""
    unique = subscriber.unique_windows()
    assert [w["window_id"] for w in unique] == expected
    seqs = [w["seq"] for w in unique]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    return unique


def test_windows_counted_during_a_broker_outage_arrive_once_and_in_order(
    tmp_path: Path, durable_broker: LocalBroker
) -> None:
    # 45 s, so the reconnect (back-off up to 16 s after a 15 s outage) comes before the end.
    video = five_faces_video(tmp_path / "five-45s.mp4", seconds=45)
    dashboard = Subscriber(durable_broker.host, durable_broker.port, session="dashboard")
    daemon = DaemonProcess(write_config(tmp_path, durable_broker, video))
    try:
        dashboard.wait_for(lambda m: m.topic.endswith("/window"), timeout=60)
        durable_broker.stop()
        daemon.wait_for_line("lost the connection to broker")
        counted = len(daemon.window_ids())
        daemon.wait_for_line("window ", count=counted + 3, timeout=60)  # three in the outage
        durable_broker.start()
        assert daemon.wait(timeout=120) == 0, daemon.output  # the video ends: flush, stop
        dashboard.wait_for(
            lambda m: m.topic == STATUS and m.payload.get("state") == "stopped", timeout=30
        )
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
        dashboard.close()
    counted_ids = daemon.window_ids()
    assert len(counted_ids) >= 9
    unique = in_order_once(dashboard, counted_ids)
    assert [w["seq"] for w in unique] == list(range(1, len(unique) + 1))
    final_stats = [m.payload for m in dashboard.messages if m.topic.endswith("/stats")][-1]
    assert final_stats["mqtt"]["reconnects"] >= 1
    with sqlite3.connect(tmp_path / "state" / "spool.sqlite") as db:  # all acknowledged
        assert db.execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 0


def test_windows_spooled_before_a_sigkill_are_delivered_after_the_restart(
    tmp_path: Path, durable_broker: LocalBroker, video: Path
) -> None:
    dashboard = Subscriber(durable_broker.host, durable_broker.port, session="dashboard")
    durable_broker.stop()
    config = write_config(tmp_path, durable_broker, video)
    first = DaemonProcess(config)
    try:
        first.wait_for_line("not reachable", timeout=60)
        first.wait_for_line("window ", count=3, timeout=90)
        first.kill()  # SIGKILL: no flush, no goodbye
        spooled = first.window_ids()
        second = DaemonProcess(config)
        second.wait_for_line(f"{len(spooled)} window(s) waiting from before", timeout=60)
        durable_broker.start()
        dashboard.wait_for(lambda m: m.topic == STATUS and m.payload["state"] == "online", 60)
        dashboard.wait_for(
            lambda m: {w["window_id"] for w in dashboard.windows()} >= set(spooled), timeout=60
        )
        assert second.stop() == 0, second.output
    finally:
        for daemon in (first, locals().get("second")):
            if daemon is not None and daemon.process.poll() is None:
                daemon.kill()
        dashboard.close()
    in_order_once(dashboard, spooled + second.window_ids())


def test_a_full_spool_drops_the_oldest_windows_and_says_how_many(
    tmp_path: Path, video: Path
) -> None:
    broker = LocalBroker()  # not started yet: the daemon begins during an outage
    config = write_config(
        tmp_path,
        broker,
        video,
        replay="fast",
        extra="spool:\n  max_windows: 10\n",
    )
    text = config.read_text().replace("    replay: fast\n", "    replay: fast\n    at_end: loop\n")
    config.write_text(text)
    daemon = DaemonProcess(config)
    try:
        daemon.wait_for_line("spool full", timeout=120)
        daemon.wait_for_line("window ", count=15, timeout=120)
        broker.start()
        dashboard = Subscriber(broker.host, broker.port)
        stats = dashboard.wait_for(
            lambda m: m.topic.endswith("/stats") and m.payload["spool"]["dropped"] > 0, 60
        ).payload
        assert daemon.process.poll() is None  # still counting
        assert daemon.stop() == 0, daemon.output
        dashboard.wait_for(lambda m: m.topic == STATUS and m.payload["state"] == "stopped", 30)
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
        broker.remove()
    assert stats["spool"]["dropped"] >= 5
    counted = daemon.window_ids()
    received = [w["window_id"] for w in dashboard.unique_windows()]
    assert counted[0] not in received  # the oldest went first
    assert received == [w for w in counted if w in set(received)]  # the rest in order
    assert "Traceback" not in daemon.output


def test_refused_credentials_keep_counting_and_a_reload_with_the_right_ones_delivers(
    tmp_path: Path, video: Path
) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("wrong-password\n")
    with password_broker(tmp_path, "kiosk", "right-password") as broker:
        config = write_config(tmp_path, broker, video)
        text = config.read_text().replace(
            "  keepalive_s: 5\n",
            f"  keepalive_s: 5\n  username: kiosk\n  password_file: {secret}\n",
        )
        config.write_text(text)
        daemon = DaemonProcess(config)
        try:
            daemon.wait_for_line("refused the connection: Not authorized", timeout=60)
            daemon.wait_for_line("window ", count=2, timeout=60)
            assert daemon.process.poll() is None, daemon.output
            dashboard = Subscriber(
                broker.host, broker.port, credentials=("kiosk", "right-password")
            )
            secret.write_text("right-password\n")  # the operator fixes the secret ...
            daemon.signal(signal.SIGHUP)  # ... and reloads
            daemon.wait_for_line("connected to broker", timeout=60)
            spooled = daemon.window_ids()[:2]
            dashboard.wait_for(
                lambda m: {w["window_id"] for w in dashboard.windows()} >= set(spooled), 30
            )
            assert daemon.stop() == 0, daemon.output
        finally:
            if daemon.process.poll() is None:
                daemon.kill()
    assert "check mqtt.username, mqtt.password_file" in daemon.output
    assert "Traceback" not in daemon.output


def test_an_invalid_reload_is_rejected_and_the_old_config_keeps_running(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, video: Path
) -> None:
    config = write_config(tmp_path, broker, video)
    good = config.read_text()
    daemon = DaemonProcess(config)
    try:
        subscriber.wait_for(lambda m: m.topic.endswith("/window"), timeout=60)
        config.write_text(good.replace("  k_threshold: 5\n", "  k_treshold: 3\n"))
        daemon.signal(signal.SIGHUP)
        rejected = daemon.wait_for_line("reload rejected:", timeout=30)
        assert f"{config}:" in rejected and "aggregation.k_treshold: unknown key" in rejected
        daemon.wait_for_line("the running configuration stays in force")
        before = len(subscriber.windows())
        subscriber.wait_for(lambda m: len(subscriber.windows()) > before, timeout=30)
        config.write_text(good.replace("  k_threshold: 5\n", "  k_threshold: 6\n"))
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_line("reload: running the new configuration", timeout=60)
        subscriber.wait_for(
            lambda m: m.topic.endswith("/window") and m.payload["k_threshold"] == 6, timeout=60
        )
        assert daemon.stop() == 0, daemon.output
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    windows = subscriber.windows()
    assert [w["seq"] for w in windows] == list(range(1, len(windows) + 1))  # nothing lost


def test_a_corrupt_spool_is_moved_aside_and_the_daemon_starts(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber, video: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "spool.sqlite").write_bytes(b"\x00garbage after a power cut\x00" * 512)
    config = write_config(tmp_path, broker, video, replay="fast")
    daemon = DaemonProcess(config)
    assert daemon.wait(timeout=120) == 0, daemon.output
    assert "is corrupt" in daemon.output and "moved it aside" in daemon.output
    assert list(state.glob("spool.sqlite.corrupt-*"))
    subscriber.wait_for(lambda m: m.topic == STATUS and m.payload["state"] == "stopped", 30)
    in_order_once(subscriber, daemon.window_ids())
    with sqlite3.connect(state / "spool.sqlite") as db:  # the new spool is sound and empty
        assert db.execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 0
