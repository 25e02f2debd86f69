"""Block bootstrap and Monte Carlo drivers: rng consumption as documented, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ita_vc.backtest.metrics import sharpe_ratio
from ita_vc.validation.resampling import auto_block_size, block_bootstrap, monte_carlo
from ita_vc.validation.stats import (
    confidence_interval,
    monte_carlo_paths,
    monte_carlo_summary,
)


def test_the_bootstrap_draws_its_starts_from_the_seed_as_written():
    r = np.array([0.01, -0.02, 0.03, 0.0, 0.05, -0.01])
    result, values = block_bootstrap(r, n=50, block_size=2, confidence=0.9, seed=4)
    starts = np.random.default_rng(4).integers(0, 6, size=(50, 3))
    reps = np.array([[r[(s + j) % 6] for s in row for j in range(2)][:6] for row in starts])
    totals = (np.prod(1 + reps, axis=1) - 1) * 100
    assert result.return_ci == confidence_interval(totals, 0.9)
    assert values.tolist() == totals.tolist()
    sharpes = [sharpe_ratio(x) for x in reps]
    assert result.sharpe_ci == confidence_interval([s for s in sharpes if s is not None], 0.9)
    assert result.block_size == 2


def test_auto_block_size_is_arch_rounded_up():
    from arch.bootstrap import optimal_block_length

    r = np.random.default_rng(1).normal(0, 0.01, 400)
    expected = max(1, math.ceil(optimal_block_length(r)["circular"].iloc[0]))
    assert auto_block_size(r) == expected
    assert (
        block_bootstrap(r, n=10, block_size="auto", confidence=0.95, seed=0)[0].block_size
        == expected
    )


def test_monte_carlo_draws_trades_from_the_seed():
    q = np.array([0.1, -0.05, 0.2])
    result, fan = monte_carlo(q, 1000.0, n=100, seed=9)
    idx = np.random.default_rng(9).integers(0, 3, size=(100, 3))
    finals = 1000 * np.prod(1 + q[idx], axis=1)
    assert result.equity_p50 == pytest.approx(np.percentile(finals, 50))
    assert result.prob_loss == pytest.approx(np.mean(finals < 1000))
    # the whole summary equals the plain (unchunked) computation of every path
    assert result == monte_carlo_summary(monte_carlo_paths(q, 1000.0, idx), 1000.0)
    assert fan is not None and fan[0].tolist() == [0, 1, 2, 3]
    paths = monte_carlo_paths(q, 1000.0, idx)
    assert fan[1:].tolist() == np.percentile(paths, [5, 50, 95], axis=0).tolist()
    none, no_fan = monte_carlo([], 1000.0, n=100, seed=9)
    assert none.equity_p50 is None and no_fan is None


def test_monte_carlo_in_chunks_is_the_same(monkeypatch):
    from ita_vc.validation import resampling

    q = np.random.default_rng(3).normal(0.001, 0.02, 57)
    whole = monte_carlo(q, 500.0, n=40, seed=2)
    monkeypatch.setattr(resampling, "_CHUNK_CELLS", 100)  # 1 path per chunk
    chunked = monte_carlo(q, 500.0, n=40, seed=2)
    assert whole[0] == chunked[0] and whole[1].tobytes() == chunked[1].tobytes()


def test_monte_carlo_refuses_more_draws_than_memory_allows():
    from ita_vc.errors import DataValidationError

    with pytest.raises(DataValidationError, match="monte_carlo.n"):
        monte_carlo(np.zeros(1000), 1.0, n=10**6, seed=0)


def test_auto_block_size_refuses_too_few_returns_and_takes_1_without_variation():
    from ita_vc.errors import DataValidationError

    with pytest.raises(DataValidationError, match="needs at least 10"):
        auto_block_size(np.random.default_rng(0).normal(size=7))
    assert auto_block_size(np.zeros(50)) == 1  # arch gives NaN: no variation


def test_a_block_longer_than_the_returns_wraps_whole():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    result, values = block_bootstrap(r, n=5, block_size=100_000, confidence=0.9, seed=1)
    starts = np.random.default_rng(1).integers(0, 4, size=(5, 1))
    expected = [(np.prod(1 + r[(s + np.arange(4)) % 4]) - 1) * 100 for s in starts[:, 0]]
    assert values.tolist() == expected and result.block_size == 100_000
