"""Block bootstrap of the daily returns and Monte Carlo over trades (issue #16 (2), (3)).

Each draws from its own fresh ``default_rng(seed)``, in the parent, exactly as documented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ita_vc.backtest.metrics import sharpe_ratio
from ita_vc.validation.stats import (
    McResult,
    block_bootstrap_replicates,
    confidence_interval,
    monte_carlo_paths,
    monte_carlo_summary,
)

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["BootstrapResult", "auto_block_size", "block_bootstrap", "monte_carlo"]


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """Confidence intervals of the Total Return [%] and the Sharpe Ratio; the block size used."""

    n: int
    block_size: int
    confidence: float
    return_ci: tuple[float, float]
    sharpe_ci: tuple[float, float] | None


def auto_block_size(returns: npt.ArrayLike) -> int:
    """``arch.bootstrap.optimal_block_length(r)["circular"]``, rounded up, at least 1."""
    from arch.bootstrap import optimal_block_length

    value = float(optimal_block_length(np.asarray(returns, dtype=np.float64))["circular"].iloc[0])
    return max(1, math.ceil(value)) if math.isfinite(value) else 1


def block_bootstrap(
    returns: npt.ArrayLike,
    *,
    n: int,
    block_size: int | Literal["auto"],
    confidence: float,
    seed: int,
    periods_per_year: float = 365,
) -> BootstrapResult:
    """Circular block bootstrap of the daily returns: ``starts = rng.integers(0, T, size=(n,
    ceil(T / b)))``; per replicate the total return [%] and the Sharpe Ratio as the metric
    defines it (annualised with ``periods_per_year``; undefined ones left out of its CI)."""
    r = np.asarray(returns, dtype=np.float64)
    t = len(r)
    if t == 0:
        raise ValueError("no daily returns to resample")
    b = auto_block_size(r) if block_size == "auto" else int(block_size)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, t, size=(n, math.ceil(t / b)))
    reps = block_bootstrap_replicates(r, b, starts)
    totals = (np.prod(1.0 + reps, axis=1) - 1.0) * 100.0
    sharpes = [s for s in (sharpe_ratio(row, periods_per_year) for row in reps) if s is not None]
    return BootstrapResult(
        n,
        b,
        confidence,
        confidence_interval(totals, confidence),
        confidence_interval(sharpes, confidence) if sharpes else None,
    )


def monte_carlo(q: npt.ArrayLike, init_cash: float, *, n: int, seed: int) -> McResult:
    """Trades resampled with replacement: ``idx = rng.integers(0, M, size=(n, M))`` over the
    per-trade returns ``q_i = pnl_i / equity_before_i``; no trades: every value null."""
    returns = np.asarray(q, dtype=np.float64)
    if len(returns) == 0:
        return monte_carlo_summary(np.empty((0, 1)), init_cash)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(returns), size=(n, len(returns)))
    return monte_carlo_summary(monte_carlo_paths(returns, init_cash, idx), init_cash)
