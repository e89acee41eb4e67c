"""Exponential back-off with jitter, shared by the broker connection and every reopened source.

Jitter matters on a fleet: after a store's Wi-Fi or the broker comes back, a hundred devices
retrying on the same fixed schedule would all knock at the same second, every time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays that double from `initial_s` up to `max_s`; each is drawn from the upper half of
    its step ("equal jitter"), so retries spread out but never come sooner than half a step."""

    initial_s: float = 1.0
    max_s: float = 60.0
    attempts: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        step = min(self.max_s, self.initial_s * (2.0 ** min(self.attempts, 30)))
        self.attempts += 1
        return step / 2.0 + self._random.uniform(0.0, step / 2.0)

    def reset(self) -> None:
        self.attempts = 0
