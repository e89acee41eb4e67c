"""A bounded hand-off between a capture thread and the inference loop.

A live camera must never make the pipeline fall behind, so when the queue is full the oldest
frame is dropped and counted. A replay run flat out instead blocks the reader: every frame of a
file is processed and the results do not depend on the machine's speed.
"""

from __future__ import annotations

import collections
import threading

from sensekit.types import VideoFrame


class FrameQueue:
    def __init__(self, maxsize: int, drop_oldest: bool = True) -> None:
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._items: collections.deque[VideoFrame] = collections.deque()
        self._lock = threading.Condition()
        self._closed = False

    def put(self, frame: VideoFrame) -> bool:
        """Add a frame; False when the queue was closed (the producer should stop)."""
        with self._lock:
            while not self.drop_oldest and len(self._items) >= self.maxsize and not self._closed:
                self._lock.wait(0.1)
            if self._closed:
                return False
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(frame)
            self._lock.notify_all()
            return True

    def get(self, timeout: float) -> VideoFrame | None:
        with self._lock:
            if not self._items:
                self._lock.wait(timeout)
            if not self._items:
                return None
            frame = self._items.popleft()
            self._lock.notify_all()
            return frame

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
