"""The daily returns of every Stage A variant: the T x N matrix the validation suite's
overfitting statistics (CSCV/PBO, the Deflated Sharpe Ratio's trials) read.

Each base variant (no SL/TP) runs the same compiled engine a grid's Stage A runs, on the same
context (its evaluator, its indicator-state cache), in batches on the grid's executor; its
daily returns are the ones the Sharpe Ratio uses (docs/backtest-model.md: every calendar day
when ``periods_per_year`` is 365, else the days with a bar). Columns are ordered by
``variant_key``; the matrix is the only large thing held (T x N float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ita_vc.backtest.metrics import return_days_index
from ita_vc.errors import DataValidationError
from ita_vc.grid.evaluate import init_worker, returns_batch, returns_in_worker
from ita_vc.grid.executor import Executor, Task

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.grid.request import GridRequest
    from ita_vc.rules.model import Rule
    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = ["VariantReturns", "stage_a_returns", "too_many_variants", "variant_returns_frame"]

_DAY_MS = 86_400_000
_BATCH = 64


@dataclass(frozen=True)
class VariantReturns:
    """``matrix[t, j]``: the daily return of variant ``keys[j]`` on the UTC day ``days[t]``
    (epoch ms of its midnight)."""

    keys: list[str]
    days: IntArray
    matrix: FloatArray


RETURNS: Task[FloatArray] = Task(returns_batch, returns_in_worker, init_worker)


def stage_a_returns(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    request: GridRequest,
    *,
    max_variants: int,
    workers: int | None = None,
    scheduler: str | None = None,
) -> VariantReturns:
    """The daily returns of every Stage A variant of ``request`` over prepared candles.

    Raises:
        DataValidationError: more Stage A variants than ``max_variants`` (counted from the
            axes before anything runs), or fewer than two daily returns.
    """
    from ita_vc.grid.search import _context, guards

    context = _context(prepared, rule, params, request)
    counts = guards(request, len(context.arrays.close) - context.arrays.n_warm)
    if counts.exact and counts.stage_a > max_variants:
        raise too_many_variants(counts.stage_a, max_variants)
    variants = sorted(request.base_variants(), key=lambda v: v.key)
    if len(variants) > max_variants:
        raise too_many_variants(len(variants), max_variants)
    ts = context.arrays.ts[context.arrays.n_warm :]
    executor: Executor[FloatArray] = Executor(context, workers, scheduler, RETURNS)
    try:
        batches = [variants[i : i + _BATCH] for i in range(0, len(variants), _BATCH)]
        parts = list(executor.map(batches))
    finally:
        executor.close()
    matrix = np.ascontiguousarray(np.column_stack(parts)) if parts else np.empty((0, 0))
    index = return_days_index(ts, context.periods_per_year) if len(ts) else np.empty(1, int)
    days = ts[index[1:]] // _DAY_MS * _DAY_MS
    if len(days) < 2:
        raise DataValidationError(
            f"validation.overfitting: the range gives {len(days)} daily return(s); "
            "the statistics need at least 2 (a longer range, or a shorter timeframe)"
        )
    return VariantReturns([v.key for v in variants], days.astype(np.int64), matrix)


def too_many_variants(count: int, limit: int) -> DataValidationError:
    """The refusal of more Stage A variants than ``validation.overfitting.max_variants``."""
    return DataValidationError(
        f"params.yaml: validation.overfitting.max_variants: the grid has {count:,} Stage A "
        f"variants, more than max_variants {limit:,}: narrow the grid's indicator axes or "
        "raise max_variants (memory: T x N daily returns)"
    )


def variant_returns_frame(returns: VariantReturns) -> pd.DataFrame:
    """The matrix as a table: ``ts_utc`` (the day) then one column per variant key."""
    import pandas as pd

    frame = pd.DataFrame(returns.matrix, columns=returns.keys)
    frame.insert(0, "ts_utc", returns.days)
    return frame
