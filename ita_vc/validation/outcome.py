"""What a validation produces: the summary (``validation_summary.json``) and the series its
charts draw (:class:`ValidationOutcome`). Plain data, no computation: the suite
(:mod:`ita_vc.validation.suite`) fills it, the writers (report.md, charts) read it.

``summary`` (every key always present; a test that did not run is ``null``)::

    schema_version (1), setup_id, rule_version, params_hash, market, symbol, timeframe,
    range {start, end, first_bar, last_bar, bars}, data_hash, config_hash, engine_version,
    seed, periods_per_year,
    actual {"Total Return [%]", "Sharpe Ratio"},      # the run's own
    psr0                                              # PSR(0) of the run's daily returns
    permutation {n, metric, actual, p_value, mean_return, distribution_summary {p5, p50, p95}}
    block_bootstrap {n, block_size, confidence, days, return_ci {lower, upper},
                     sharpe_ci {lower, upper} | null, sharpe_defined}
    monte_carlo {n, trades, init_cash, equity_p5, equity_p50, equity_p95, max_drawdown_p5,
                 max_drawdown_p50, max_drawdown_p95, prob_loss}
    wfo {windows, in_sample_ratio, mode, objective, window_bars, segments [{in_sample_start,
         in_sample_end, out_sample_start, out_sample_end, variant_key, in_sample_return,
         return}], final_equity, metrics {the 25}, wfe}
    overfitting {partitions, n_variants, days, combinations, pbo, lambda {p5, p50, p95},
                 best_variant_key, sr, psr0, sr0, dsr, n_trials}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = ["SUMMARY_SCHEMA_VERSION", "ValidationOutcome", "WfoSeries"]

SUMMARY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class WfoSeries:
    """The stitched out-of-sample equity (epoch ms, quote) and the segment boundaries (the
    epoch ms each out-of-sample segment starts at)."""

    ts: IntArray
    equity: FloatArray
    boundaries: list[int]
    init_cash: float


@dataclass(frozen=True)
class ValidationOutcome:
    """The summary and the distributions behind it (None: that test did not run or drew
    nothing)."""

    summary: dict[str, Any]
    permuted_returns: FloatArray | None = None
    """Total Return [%] of every permuted series, in draw order."""
    bootstrap_returns: FloatArray | None = None
    """Total return [%] of every bootstrap replicate, in draw order."""
    mc_fan: FloatArray | None = None
    """Monte Carlo equity percentiles per trade step: shape (3, M + 1), rows p5, p50, p95."""
    wfo: WfoSeries | None = None
    lambdas: FloatArray | None = None
    """The CSCV logits, one per combination (in combination order)."""
    notes: list[str] = field(default_factory=list)
    """What the report says besides the numbers (e.g. a skipped test and why)."""
