"""Block bootstrap of the daily returns and Monte Carlo over trades (issue #16 (2), (3)).

Each draws from its own fresh ``default_rng(seed)``, in the parent, exactly as documented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ita_vc.backtest.metrics import sharpe_ratio
from ita_vc.errors import DataValidationError
from ita_vc.validation.stats import (
    McResult,
    block_bootstrap_replicates,
    confidence_interval,
    monte_carlo_paths,
    monte_carlo_summary,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from ita_vc.utils.arrays import FloatArray

__all__ = [
    "AUTO_MIN_RETURNS",
    "FAN_POINTS",
    "MAX_DRAWS",
    "BootstrapResult",
    "auto_block_size",
    "block_bootstrap",
    "check_bootstrap",
    "check_monte_carlo",
    "monte_carlo",
]


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """Confidence intervals of the Total Return [%] and the Sharpe Ratio; the block size used."""

    n: int
    block_size: int
    confidence: float
    return_ci: tuple[float, float]
    sharpe_ci: tuple[float, float] | None
    sharpe_defined: int
    """Replicates with a defined Sharpe Ratio (the ones its CI is over)."""


def auto_block_size(returns: npt.ArrayLike) -> int:
    """``arch.bootstrap.optimal_block_length(r)["circular"]``, rounded up, at least 1 (1 when
    arch gives no finite value: returns without variation).

    Raises:
        DataValidationError: too few returns for arch's estimator (it needs at least
            :data:`AUTO_MIN_RETURNS`).
    """
    import warnings

    from arch.bootstrap import optimal_block_length

    r = np.asarray(returns, dtype=np.float64)
    _check_auto(len(r))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(optimal_block_length(r)["circular"].iloc[0])
    return max(1, math.ceil(value)) if math.isfinite(value) else 1


AUTO_MIN_RETURNS = 10
"""Daily returns ``block_size: auto`` needs (arch's estimator fails below 8; 10 to be safe)."""


def _check_auto(t: int) -> None:
    if t < AUTO_MIN_RETURNS:
        raise DataValidationError(
            f"params.yaml: validation.block_bootstrap.block_size: auto: the range gives {t} "
            f"daily returns; arch's optimal block length needs at least {AUTO_MIN_RETURNS}. Set "
            "an integer block_size, use a longer range, or `block_bootstrap: null` skips the "
            "test"
        )


def check_bootstrap(n: int, t: int, block_size: int | Literal["auto"]) -> None:
    """What :func:`block_bootstrap` refuses for ``n`` replicates of ``t`` daily returns, before
    any work.

    Raises:
        DataValidationError: no returns, too few for ``block_size: auto``, or n x T above
            :data:`MAX_DRAWS` (memory).
    """
    if t == 0:
        raise DataValidationError(
            "validation.block_bootstrap: the range gives no daily returns to resample"
        )
    if block_size == "auto":
        _check_auto(t)
    if n * t > MAX_DRAWS:
        raise DataValidationError(
            f"params.yaml: validation.block_bootstrap.n: {n:,} replicates x {t:,} days is more "
            f"than {MAX_DRAWS:,} values (memory): lower block_bootstrap.n"
        )


def check_monte_carlo(n: int, trades: int) -> None:
    """What :func:`monte_carlo` refuses for ``n`` paths of ``trades`` trades, before any work.

    Raises:
        DataValidationError: n x trades above :data:`MAX_DRAWS` (memory).
    """
    if n * trades > MAX_DRAWS:
        raise DataValidationError(
            f"params.yaml: validation.monte_carlo.n: {n:,} paths x {trades:,} trades is more "
            f"than {MAX_DRAWS:,} draws (memory): lower monte_carlo.n"
        )


def block_bootstrap(
    returns: npt.ArrayLike,
    *,
    n: int,
    block_size: int | Literal["auto"],
    confidence: float,
    seed: int,
    periods_per_year: float = 365,
) -> tuple[BootstrapResult, FloatArray]:
    """Circular block bootstrap of the daily returns: ``starts = rng.integers(0, T, size=(n,
    ceil(T / b)))``; per replicate the total return [%] and the Sharpe Ratio as the metric
    defines it (annualised with ``periods_per_year``; undefined ones left out of its CI).
    Returns the result and every replicate's total return [%], in draw order.

    Raises:
        DataValidationError: as :func:`check_bootstrap`.
    """
    r = np.asarray(returns, dtype=np.float64)
    t = len(r)
    check_bootstrap(n, t, block_size)
    b = auto_block_size(r) if block_size == "auto" else int(block_size)
    k = math.ceil(t / b)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, t, size=(n, k))
    totals = np.empty(n)
    sharpes: list[float] = []
    chunk = max(1, _CHUNK_CELLS // t)
    for lo in range(0, n, chunk):  # replicates built a chunk of rows at a time
        reps = block_bootstrap_replicates(r, b, starts[lo : lo + chunk])
        totals[lo : lo + len(reps)] = (np.prod(1.0 + reps, axis=1) - 1.0) * 100.0
        sharpes += [
            s for s in (sharpe_ratio(row, periods_per_year) for row in reps) if s is not None
        ]
    result = BootstrapResult(
        n,
        b,
        confidence,
        confidence_interval(totals, confidence),
        confidence_interval(sharpes, confidence) if sharpes else None,
        len(sharpes),
    )
    return result, totals


def monte_carlo(
    q: npt.ArrayLike, init_cash: float, *, n: int, seed: int
) -> tuple[McResult, FloatArray | None]:
    """Trades resampled with replacement: ``idx = rng.integers(0, M, size=(n, M))`` over the
    per-trade returns ``q_i = pnl_i / equity_before_i``; path j = [init_cash, init_cash *
    cumprod(1 + q[idx[j]])]. Returns the summary and the fan: the p5/p50/p95 equity at (at
    most :data:`FAN_POINTS`) trade steps, shape (4, steps) - the row 0 the step numbers. No
    trades: every value null, nothing drawn, no fan.

    The paths are built a chunk of rows at a time (each row's cumulative product is the same
    computed alone), so memory is the index matrix plus a chunk.

    Raises:
        DataValidationError: n x M above :data:`MAX_DRAWS` (memory).
    """
    returns = np.asarray(q, dtype=np.float64)
    m = len(returns)
    if m == 0:
        return monte_carlo_summary(np.empty((0, 1)), init_cash), None
    check_monte_carlo(n, m)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, m, size=(n, m))
    steps = np.unique(np.linspace(0, m, min(m + 1, FAN_POINTS)).round().astype(np.int64))
    final = np.empty(n)
    drawdown = np.empty(n)
    sampled = np.empty((n, len(steps)))
    chunk = max(1, _CHUNK_CELLS // (m + 1))
    for lo in range(0, n, chunk):
        paths = monte_carlo_paths(returns, init_cash, idx[lo : lo + chunk])
        final[lo : lo + len(paths)] = paths[:, -1]
        drawdown[lo : lo + len(paths)] = (paths / np.maximum.accumulate(paths, axis=1) - 1.0).min(
            axis=1
        ) * 100.0
        sampled[lo : lo + len(paths)] = paths[:, steps]
    e5, e50, e95 = (float(v) for v in np.percentile(final, [5, 50, 95]))
    d5, d50, d95 = (float(v) for v in np.percentile(drawdown, [5, 50, 95]))
    result = McResult(e5, e50, e95, d5, d50, d95, float(np.mean(final < init_cash)))
    fan = np.vstack([steps.astype(np.float64), np.percentile(sampled, [5, 50, 95], axis=0)])
    return result, fan


FAN_POINTS = 2000
"""Trade steps at most in the Monte Carlo fan (the chart's x axis)."""
MAX_DRAWS = 200_000_000
"""Monte Carlo's n x M draws (and the bootstrap's n x T values) at most: the index matrix is 8
bytes per draw (1.6 GB), the fan's samples as much again at most."""
_CHUNK_CELLS = 4_000_000
"""Path cells built at once (32 MB)."""
