"""The durable store-and-forward spool: every window is on disk before it is sent.

SQLite in WAL mode with `synchronous=FULL`: a window is committed (and fsynced) before the
publisher hands it to the network, and deleted only after the broker's PUBACK. A `kill -9` or a
power cut therefore loses no counted window; it can only cause a window to be sent twice, which
dashboards drop by its `window_id`. One commit per window (about one a minute per zone) is
nothing, even on an SD card.

The spool is bounded by count, bytes and age; when a bound is hit the oldest windows go first,
and how many went is kept in the spool itself, so the count survives restarts and reaches the
stats topic.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sensekit.errors import SpoolError

log = logging.getLogger(__name__)

SPOOL_FILE = "spool.sqlite"
FULL_WARNING_INTERVAL_S = 600.0
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS windows (
    seq INTEGER PRIMARY KEY,
    window_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class SpoolLimits:
    max_windows: int = 100_000
    max_bytes: int = 50 * 1024 * 1024
    max_age_s: float = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class SpooledWindow:
    seq: int
    window_id: str
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SpoolStats:
    depth: int
    bytes: int
    oldest_age_s: float | None
    dropped: int
    delivered: int


class Spool:
    """A FIFO of encoded windows on disk, shared by the inference loop (appends) and the
    publisher's forwarder thread (reads and acknowledged deletes)."""

    def __init__(
        self, path: Path, limits: SpoolLimits, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._delivered = 0
        self._last_full_warning = -float("inf")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(
                f"cannot create the state directory {path.parent}: {exc.strerror} (set state_dir "
                "to a writable directory, or run under systemd with StateDirectory=sensekit)"
            ) from None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise SpoolError(
                f"the state directory {path.parent} is not writable by this user: the spool "
                "cannot be kept there (fix its owner, or set state_dir)"
            )
        self._lockfile = _exclusive_lock(path)
        try:
            self._db = _open_checked(path)
        except sqlite3.DatabaseError as exc:
            aside = _move_aside(path)
            log.error(
                "the spool %s is corrupt (%s): moved it aside to %s and started an empty one; "
                "windows that were waiting in it are not delivered",
                path,
                exc,
                aside.name,
            )
            self._db = _open_checked(path)
        depth, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM windows"
        ).fetchone()
        self._depth, self._bytes = int(depth), int(size)
        if self._depth:
            log.info("spool %s: %d window(s) waiting from before; sending them first", path, depth)
        with self._lock:
            self._enforce_limits()

    # writing -------------------------------------------------------------------------------
    def append(self, window_id: str, topic: str, encode: Callable[[int], bytes]) -> int:
        """Store one window; `encode(seq)` builds its payload with the sequence number this
        device gives it (continuing across restarts). Returns that number once committed."""
        with self._lock:
            seq = self._meta("next_seq", 1)
            payload = encode(seq)
            with self._db:
                self._db.execute(
                    "INSERT INTO windows (seq, window_id, topic, payload, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (seq, window_id, topic, payload, self._clock()),
                )
                self._set_meta("next_seq", seq + 1)
            self._depth += 1
            self._bytes += len(payload)
            self._enforce_limits()
            return seq

    def _enforce_limits(self) -> None:
        """Drop the oldest windows beyond the count, size and age bounds; count what went.

        Walks from the oldest row by primary key and keeps depth and bytes in memory, so an
        append costs the same with 10 or 100 000 windows waiting (no scan of the table on the
        inference thread). Age is judged on the oldest row: rows are stored in the order they
        were counted."""
        limits = self.limits
        cutoff = self._clock() - limits.max_age_s
        dropped = 0
        with self._db:
            while self._depth:
                seq, created, size = self._db.execute(
                    "SELECT seq, created, LENGTH(payload) FROM windows ORDER BY seq LIMIT 1"
                ).fetchone()
                if (
                    created >= cutoff
                    and self._depth <= limits.max_windows
                    and self._bytes <= limits.max_bytes
                ):
                    break
                self._db.execute("DELETE FROM windows WHERE seq = ?", (seq,))
                self._depth -= 1
                self._bytes -= int(size)
                dropped += 1
            if dropped:
                self._set_meta("dropped", self._meta("dropped", 0) + dropped)
        # Once per episode and then every few minutes: a full spool during a long outage
        # drops a window per window counted, and the journal must not fill up with that.
        now = time.monotonic()
        if dropped and now - self._last_full_warning >= FULL_WARNING_INTERVAL_S:
            self._last_full_warning = now
            log.warning(
                "spool full (bounds: %d windows, %.1f MB, %.0f h): dropped the %d oldest "
                "window(s), %d dropped in all",
                limits.max_windows,
                limits.max_bytes / 1e6,
                limits.max_age_s / 3600.0,
                dropped,
                self._meta("dropped", 0),
            )

    # reading -------------------------------------------------------------------------------
    def pending(self, limit: int) -> list[SpooledWindow]:
        """The oldest `limit` windows, in the order they were counted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, window_id, topic, payload FROM windows ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpooledWindow(int(s), str(w), str(t), bytes(p)) for s, w, t, p in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """The broker acknowledged these: they are delivered and leave the spool."""
        keys = list(seqs)
        if not keys:
            return
        with self._lock, self._db:
            for seq in keys:
                row = self._db.execute(
                    "DELETE FROM windows WHERE seq = ? RETURNING LENGTH(payload)", (seq,)
                ).fetchone()
                if row is not None:  # not dropped by a bound meanwhile
                    self._depth -= 1
                    self._bytes -= int(row[0])
                    self._delivered += 1

    @property
    def depth(self) -> int:
        return self._depth

    def stats(self) -> SpoolStats:
        with self._lock:
            row = self._db.execute("SELECT created FROM windows ORDER BY seq LIMIT 1").fetchone()
            oldest = None if row is None else row[0]
            return SpoolStats(
                depth=self._depth,
                bytes=self._bytes,
                oldest_age_s=None if oldest is None else round(self._clock() - oldest, 1),
                dropped=self._meta("dropped", 0),
                delivered=self._delivered,
            )

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            finally:
                self._lockfile.close()

    # internals -----------------------------------------------------------------------------
    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _open_checked(path: Path) -> sqlite3.Connection:
    """Open (or create) the spool and prove it readable; a corrupt file raises DatabaseError."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
    try:
        db.isolation_level = "DEFERRED"
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot switch to WAL mode (got {mode})")
        db.execute("PRAGMA synchronous=FULL")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        with db:
            db.executescript(_SCHEMA)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        elif version != _SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"unknown spool format version {version}")
        db.execute("SELECT seq, window_id, topic, payload, created FROM windows LIMIT 1")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _move_aside(path: Path) -> Path:
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            os.replace(part, Path(f"{aside}{suffix}"))
    return aside


def _exclusive_lock(path: Path) -> IO[bytes]:
    """Two daemons on one spool would send each other's windows: the second one refuses."""
    lock_path = path.with_name(path.name + ".lock")
    handle = open(lock_path, "ab")  # noqa: SIM115 - held open for the spool's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SpoolError(
            f"the spool {path} is in use by another sensekit process: give each daemon its "
            "own state_dir"
        ) from None
    return handle
