"""The permutation test (issue #16 (1)): the run's rule on permuted price paths.

Each permuted series goes through the same compiled code a run uses (indicator states, the
engine, the Total Return of the metrics), on arrays - no tables are built. The permutations are
drawn in the parent from one ``default_rng(seed)``, in order, whatever evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ita_vc.backtest.engine import engine_pass
from ita_vc.backtest.metrics import return_and_max_drawdown
from ita_vc.backtest.signals import resolve_indicator_params, rule_states
from ita_vc.validation.stats import BarArrays, permutation_p_value, permute_bars

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.catalog import Catalog
    from ita_vc.rules.model import Rule
    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = ["PermutationResult", "draw_permutations", "permutation_test", "total_return_of"]


@dataclass(frozen=True, slots=True)
class PermutationResult:
    """``p_value``, the permuted Total Returns' mean and p5/p50/p95, the actual one, n."""

    n: int
    actual: float
    p_value: float
    mean_return: float
    p5: float
    p50: float
    p95: float


def draw_permutations(seed: int, n: int, m: int) -> IntArray:
    """``n`` rows of ``rng.permutation(m)`` from one ``default_rng(seed)``, in order."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(m) for _ in range(n)]) if n else np.empty((0, m), np.int64)


def bar_arrays(prepared: pd.DataFrame) -> BarArrays:
    """The OHLCV columns of prepared candles as float64 arrays."""
    return BarArrays(
        *(
            prepared[c].to_numpy(dtype=np.float64)
            for c in ("open", "high", "low", "close", "volume")
        )
    )


def total_return_of(
    bars: BarArrays, n_warm: int, rule: Rule, params: RunParams, catalog: Catalog
) -> float:
    """Total Return [%] of ``rule`` on the bars (warm-up first), exactly as a run computes it."""
    indicators = resolve_indicator_params(rule.indicators, catalog)
    states, _conflicting = rule_states(indicators, bars.high, bars.low, bars.close)
    close = bars.close[n_warm:]
    n = len(close)
    if n == 0:
        return 0.0
    trades, fills = np.empty((n + 1, 11)), np.empty((2 * n + 2, 7))
    equity, _pos, _nt, _nf = engine_pass(
        close,
        states[n_warm:],
        trades,
        fills,
        prev_state=int(states[n_warm - 1]) if n_warm else 0,
        direction=rule.direction,
        sizing=rule.sizing,
        sl_pct=rule.targets["sl_pct"],
        tp_pct=rule.targets["tp_pct"],
        fee_rate=params.backtest.fee_rate,
        slip=params.backtest.slip,
        init_cash=params.backtest.init_cash,
    )
    total, _dd = return_and_max_drawdown(equity, float(params.backtest.init_cash))
    return float(total)


def permutation_test(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    catalog: Catalog,
    *,
    n: int,
    seed: int,
) -> PermutationResult:
    """The permutation test of issue #16 (1) on prepared candles (a ``warmup`` column)."""
    n_warm = int(prepared["warmup"].sum())
    bars = bar_arrays(prepared)
    m = len(bars.close) - n_warm - 1
    actual = total_return_of(bars, n_warm, rule, params, catalog)
    perms = draw_permutations(seed, n, max(m, 0))
    returns: FloatArray = np.array(
        [
            total_return_of(permute_bars(bars, n_warm, p), n_warm, rule, params, catalog)
            for p in perms
        ]
    )
    p5, p50, p95 = (float(v) for v in np.percentile(returns, [5, 50, 95]))
    return PermutationResult(
        n, actual, permutation_p_value(actual, returns), float(returns.mean()), p5, p50, p95
    )
