"""The spool on a real SQLite file: order, bounds, restarts, corruption, a second daemon."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sensekit.backoff import Backoff
from sensekit.errors import SpoolError
from sensekit.publish.spool import SPOOL_FILE, Spool, SpoolLimits


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def add(spool: Spool, name: str, size: int = 10) -> int:
    def encode(seq: int) -> bytes:
        return json.dumps({"id": name, "seq": seq, "pad": "x" * size}).encode()

    return spool.append(name, f"zones/{name}", encode)


def test_windows_come_out_in_order_and_leave_only_when_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / SPOOL_FILE, SpoolLimits())
    seqs = [add(spool, f"w{i}") for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    pending = spool.pending(3)
    assert [w.window_id for w in pending] == ["w0", "w1", "w2"]
    assert json.loads(pending[1].payload)["seq"] == 2
    spool.remove([1, 2])
    assert [w.seq for w in spool.pending(10)] == [3, 4, 5]
    stats = spool.stats()
    assert (stats.depth, stats.delivered, stats.dropped) == (3, 2, 0)


def test_what_was_spooled_survives_a_restart_and_the_sequence_goes_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path / SPOOL_FILE, SpoolLimits())
    for i in range(3):
        add(spool, f"w{i}")
    spool.remove([1, 2, 3])
    add(spool, "w3")
    spool.close()  # as after a kill: nothing is flushed on close, commits are already durable
    again = Spool(tmp_path / SPOOL_FILE, SpoolLimits())
    assert [w.window_id for w in again.pending(10)] == ["w3"]
    assert add(again, "w4") == 5  # seq does not restart at 1, even with an empty table


def test_the_count_bound_drops_the_oldest_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / SPOOL_FILE, SpoolLimits(max_windows=10))
    with caplog.at_level(logging.WARNING):
        for i in range(25):
            add(spool, f"w{i}")
    assert [w.window_id for w in spool.pending(100)] == [f"w{i}" for i in range(15, 25)]
    assert spool.stats().dropped == 15
    assert "spool full" in caplog.text
    spool.close()
    assert Spool(tmp_path / SPOOL_FILE, SpoolLimits(max_windows=10)).stats().dropped == 15


def test_the_size_bound_drops_the_oldest(tmp_path: Path) -> None:
    spool = Spool(tmp_path / SPOOL_FILE, SpoolLimits(max_bytes=5_000))
    for i in range(20):
        add(spool, f"w{i}", size=1_000)
    stats = spool.stats()
    assert stats.bytes <= 5_000 and stats.depth == 4
    assert spool.pending(1)[0].window_id == "w16"
    assert stats.dropped == 16


def test_the_age_bound_drops_windows_older_than_allowed(tmp_path: Path) -> None:
    clock = Clock()
    spool = Spool(tmp_path / SPOOL_FILE, SpoolLimits(max_age_s=3600.0), clock=clock)
    add(spool, "old")
    clock.now += 3000.0
    add(spool, "newer")
    clock.now += 1000.0
    add(spool, "newest")
    assert [w.window_id for w in spool.pending(10)] == ["newer", "newest"]
    assert spool.stats().dropped == 1
    assert spool.stats().oldest_age_s == 1000.0


def test_a_corrupt_spool_is_moved_aside_and_a_new_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / SPOOL_FILE
    path.write_bytes(b"this is not an SQLite database, it is what a bad SD card left" * 100)
    with caplog.at_level(logging.ERROR):
        spool = Spool(path, SpoolLimits())
    assert "is corrupt" in caplog.text and "moved it aside" in caplog.text
    aside = list(tmp_path.glob(f"{SPOOL_FILE}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert add(spool, "w0") == 1


def test_a_truncated_spool_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / SPOOL_FILE
    spool = Spool(path, SpoolLimits())
    for i in range(50):
        add(spool, f"w{i}", size=2000)
    spool.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] + b"\0" * 4096 + data[len(data) // 2 :])
    again = Spool(path, SpoolLimits())
    assert list(tmp_path.glob(f"{SPOOL_FILE}.corrupt-*"))
    assert again.stats().depth == 0


def test_a_second_daemon_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    first = Spool(tmp_path / SPOOL_FILE, SpoolLimits())
    with pytest.raises(SpoolError, match="in use by another sensekit process"):
        Spool(tmp_path / SPOOL_FILE, SpoolLimits())
    first.close()
    Spool(tmp_path / SPOOL_FILE, SpoolLimits()).close()


def test_an_unusable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises(SpoolError, match="cannot create the state directory"):
        Spool(blocker / "state" / SPOOL_FILE, SpoolLimits())


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    backoff = Backoff(1.0, 60.0)
    delays = [backoff.next_delay() for _ in range(12)]
    steps = [min(60.0, 2.0**i) for i in range(12)]
    assert all(step / 2 <= delay <= step for delay, step in zip(delays, steps, strict=True))
    assert max(delays) <= 60.0 and delays[-1] >= 30.0
    spread = {round(Backoff(1.0, 60.0).next_delay(), 6) for _ in range(20)}
    assert len(spread) > 10  # devices restarting together do not retry in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 1.0
