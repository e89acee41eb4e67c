"""The discrete Laplace sampler draws from the distribution that makes the counts
epsilon-differentially private: checked statistically on many draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sensekit.privacy.noise import DiscreteLaplace

DRAWS = 200_000


@pytest.mark.parametrize(("epsilon", "sensitivity"), [(0.1, 1), (0.5, 1), (1.0, 1), (1.0, 2)])
def test_the_draws_follow_the_two_sided_geometric_distribution(
    epsilon: float, sensitivity: int
) -> None:
    noise = DiscreteLaplace(epsilon, sensitivity, rng=np.random.default_rng(2026))
    x = noise.sample(DRAWS)
    assert x.dtype == np.int64
    # Bins of single values where at least ~50 draws are expected, and both tails pooled.
    support = np.arange(-400, 401)
    expected = noise.pmf(support) * DRAWS
    core = support[expected >= 50]
    lo, hi = int(core.min()), int(core.max())
    observed = [np.count_nonzero(x < lo)]
    observed += [np.count_nonzero(x == v) for v in range(lo, hi + 1)]
    observed += [np.count_nonzero(x > hi)]
    tail = float(noise.pmf(np.arange(hi + 1, 5000)).sum())
    probabilities = [tail, *noise.pmf(np.arange(lo, hi + 1)), tail]
    total = sum(probabilities)
    expected_counts = np.array(probabilities) / total * DRAWS
    result = stats.chisquare(observed, expected_counts)
    assert result.pvalue > 1e-3, result
    assert abs(x.mean()) < 5 * math.sqrt(noise.variance / DRAWS)
    assert x.var() == pytest.approx(noise.variance, rel=0.05)


def test_a_wrong_epsilon_is_detected_by_the_same_check() -> None:
    """The statistical check has power: draws with epsilon 0.5 do not pass for epsilon 0.6."""
    noise = DiscreteLaplace(0.5, rng=np.random.default_rng(7))
    claimed = DiscreteLaplace(0.6)
    x = noise.sample(DRAWS)
    support = np.arange(-15, 16)
    observed = [np.count_nonzero(x < -15), *[np.count_nonzero(x == v) for v in support]]
    observed.append(np.count_nonzero(x > 15))
    tail = float(claimed.pmf(np.arange(16, 5000)).sum())
    probabilities = np.array([tail, *claimed.pmf(support), tail])
    result = stats.chisquare(observed, probabilities / probabilities.sum() * DRAWS)
    assert result.pvalue < 1e-6


def test_neighbouring_counts_are_at_most_e_to_the_epsilon_apart() -> None:
    """The definition itself: moving a count by the sensitivity changes the probability of
    any noisy output by at most a factor exp(epsilon)."""
    for epsilon, sensitivity in [(0.2, 1), (1.0, 1), (1.0, 2), (3.0, 2)]:
        noise = DiscreteLaplace(epsilon, sensitivity)
        outputs = np.arange(-50, 51)
        for true in range(0, 5):
            p = noise.pmf(outputs - true)
            q = noise.pmf(outputs - (true + sensitivity))
            assert np.all(p / q <= math.exp(epsilon) * (1 + 1e-9))
            assert np.all(q / p <= math.exp(epsilon) * (1 + 1e-9))


def test_noisy_counts_are_never_negative() -> None:
    noise = DiscreteLaplace(0.1, rng=np.random.default_rng(3))
    noisy = noise.add_to(np.zeros(10_000, dtype=np.int64))
    assert noisy.min() == 0 and noisy.max() > 0


def test_without_a_seed_two_samplers_differ() -> None:
    assert not np.array_equal(DiscreteLaplace(1.0).sample(100), DiscreteLaplace(1.0).sample(100))


@pytest.mark.parametrize("epsilon", [0.0, -1.0])
def test_epsilon_must_be_positive(epsilon: float) -> None:
    with pytest.raises(ValueError):
        DiscreteLaplace(epsilon)
