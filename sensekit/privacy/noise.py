"""Discrete Laplace (two-sided geometric) noise for counts: the integer form of the Laplace
mechanism, so that a noisy count is still a whole number and no floating-point artefact of
a continuous sampler can leak the true value (Mironov 2012).

With `alpha = exp(-epsilon / sensitivity)`, P(X = x) = (1 - alpha) / (1 + alpha) * alpha^|x|.
Adding X to a count whose value changes by at most `sensitivity` when one person is added or
removed makes the released count epsilon-differentially private (Ghosh, Roughgarden and
Sundararajan 2009). X is sampled as the difference of two independent geometric variables,
which has exactly that distribution.
"""

from __future__ import annotations

import math
import secrets

import numpy as np
import numpy.typing as npt


class DiscreteLaplace:
    def __init__(
        self,
        epsilon: float,
        sensitivity: int = 1,
        rng: np.random.Generator | None = None,
    ) -> None:
        if not epsilon > 0:
            raise ValueError("epsilon must be positive")
        if sensitivity < 1:
            raise ValueError("sensitivity must be at least 1")
        self.epsilon = epsilon
        self.sensitivity = sensitivity
        # Seeded from the operating system, never from a fixed or guessable value: noise an
        # observer could predict protects nothing.
        self._rng = rng or np.random.default_rng(secrets.randbits(128))

    @property
    def alpha(self) -> float:
        return math.exp(-self.epsilon / self.sensitivity)

    @property
    def variance(self) -> float:
        a = self.alpha
        return 2.0 * a / (1.0 - a) ** 2

    def pmf(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        a = self.alpha
        values = np.abs(np.asarray(x, dtype=np.float64))
        return (1.0 - a) / (1.0 + a) * np.power(a, values)

    def sample(self, size: int | tuple[int, ...]) -> npt.NDArray[np.int64]:
        p = 1.0 - self.alpha
        first = self._rng.geometric(p, size)
        second = self._rng.geometric(p, size)
        return (first - second).astype(np.int64)

    def add_to(self, counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Noisy counts, clamped at zero (post-processing: it costs no privacy, and a
        negative number of people would only confuse a dashboard)."""
        noisy = counts + self.sample(counts.shape)
        return np.maximum(noisy, 0)
