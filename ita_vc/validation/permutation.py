"""The permutation test (issue #16 (1)): the run's rule on permuted price paths.

Each permuted series goes through the same compiled code a run uses (indicator states, the
engine, the Total Return of the metrics), on arrays - no tables are built. The permutations are
drawn in the parent from one ``default_rng(seed)``, in order, whatever evaluates them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ita_vc.backtest.engine import engine_pass
from ita_vc.backtest.metrics import return_and_max_drawdown
from ita_vc.backtest.records import FILL_WIDTH, TRADE_WIDTH
from ita_vc.backtest.signals import resolve_indicator_params, rule_states
from ita_vc.errors import DataValidationError
from ita_vc.grid.executor import Executor, Task
from ita_vc.utils.hashing import hash_canonical
from ita_vc.utils.tablehash import hash_dataframe
from ita_vc.validation.stats import BarArrays, permutation_p_value

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.catalog import Catalog
    from ita_vc.rules.model import Rule
    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = [
    "PermContext",
    "PermutationResult",
    "draw_permutations",
    "iter_permutation_batches",
    "perm_context",
    "permutation_test",
    "permuted_returns",
    "total_return_of",
]


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
    rows = list(iter_permutation_batches(seed, n, m, max(1, n)))
    return rows[0] if rows else np.empty((0, m), np.int64)


def iter_permutation_batches(seed: int, n: int, m: int, batch: int) -> Iterator[IntArray]:
    """The ``n`` permutations of :func:`draw_permutations` in batches of ``batch`` rows, drawn
    lazily from the one generator (the same rows, whatever the batch size)."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n:
        size = min(batch, n - done)
        yield np.stack([rng.permutation(m) for _ in range(size)])
        done += size


def bar_arrays(prepared: pd.DataFrame) -> BarArrays:
    """The OHLCV columns of prepared candles as float64 arrays."""
    return BarArrays(
        *(
            np.ascontiguousarray(prepared[c].to_numpy(dtype=np.float64))
            for c in ("open", "high", "low", "close", "volume")
        )
    )


@dataclass(frozen=True)
class PermContext:
    """What a worker needs to backtest permuted series: the bars, the rule's resolved
    indicators and the execution, under the ``key`` that names them."""

    key: str
    bars: BarArrays
    n_warm: int
    indicators: tuple[tuple[str, dict[str, Any]], ...]
    direction: str
    sizing: dict[str, Any]
    sl_pct: float | None
    tp_pct: float | None
    fee_rate: float
    slip: float
    init_cash: float
    moves: PermMoves


@dataclass(frozen=True)
class PermMoves:
    """What every permutation gathers from, computed once: the close-to-close log returns
    ``r``, ``exp(x_high)`` and ``exp(x_low)`` (the same bits as ``exp`` of the gathered
    ``x``: ``exp`` is elementwise), ``log(close_0)``, and whether the rule reads high/low
    (only ``atr`` does; otherwise they are not rebuilt - nothing reads them)."""

    r: FloatArray
    e_high: FloatArray
    e_low: FloatArray
    log_c0: float
    needs_high_low: bool


def perm_moves(bars: BarArrays, n_warm: int, needs_high_low: bool) -> PermMoves:
    """The :class:`PermMoves` of the bars (warm-up first)."""
    c = bars.close[n_warm:]
    if len(c) < 2:
        return PermMoves(np.empty(0), np.empty(0), np.empty(0), 0.0, needs_high_low)
    return PermMoves(
        np.log(c[1:] / c[:-1]),
        np.exp(np.log(bars.high[n_warm + 1 :] / c[1:])),
        np.exp(np.log(bars.low[n_warm + 1 :] / c[1:])),
        math.log(c[0]),
        needs_high_low,
    )


def permuted_hlc(bars: BarArrays, n_warm: int, moves: PermMoves, perm: IntArray) -> BarArrays:
    """:func:`~ita_vc.validation.stats.permute_bars`'s high, low and close, bit for bit (open
    and volume, which no indicator or the engine reads, are left as they are)."""
    close = np.exp(moves.log_c0 + np.cumsum(moves.r[perm]))
    head = n_warm + 1
    new_close = np.concatenate([bars.close[:head], close])
    if moves.needs_high_low:
        high = np.concatenate([bars.high[:head], close * moves.e_high[perm]])
        low = np.concatenate([bars.low[:head], close * moves.e_low[perm]])
    else:
        high, low = bars.high, bars.low
    return BarArrays(bars.open, high, low, new_close, bars.volume)


def perm_context(
    prepared: pd.DataFrame, rule: Rule, params: RunParams, catalog: Catalog
) -> PermContext:
    """The :class:`PermContext` of a run (its key hashes everything it holds)."""
    indicators = tuple(
        (name, dict(values)) for name, values in resolve_indicator_params(rule.indicators, catalog)
    )
    settings = {
        "indicators": [[n, p] for n, p in indicators],
        "direction": rule.direction,
        "sizing": dict(rule.sizing),
        "targets": dict(rule.targets),
        "fee_rate": params.backtest.fee_rate,
        "slip": params.backtest.slip,
        "init_cash": params.backtest.init_cash,
        "data": hash_dataframe(prepared[["ts_utc", "open", "high", "low", "close", "volume"]]),
        "warmup": int(prepared["warmup"].sum()),
    }
    bars = bar_arrays(prepared)
    n_warm = int(prepared["warmup"].sum())
    needs_high_low = any(name == "atr" for name, _values in indicators)
    return PermContext(
        "perm:" + hash_canonical(settings),
        bars,
        n_warm,
        indicators,
        rule.direction,
        dict(rule.sizing),
        rule.targets["sl_pct"],
        rule.targets["tp_pct"],
        params.backtest.fee_rate,
        params.backtest.slip,
        float(params.backtest.init_cash),
        perm_moves(bars, n_warm, needs_high_low),
    )


def total_return_of(bars: BarArrays, context: PermContext) -> float:
    """Total Return [%] of the context's rule on ``bars`` (warm-up first), exactly as a run
    computes it (the same indicator states, engine and metric code)."""
    states, _conflicting = rule_states(list(context.indicators), bars.high, bars.low, bars.close)
    n_warm = context.n_warm
    close = bars.close[n_warm:]
    n = len(close)
    if n == 0:
        return 0.0
    trades, fills = np.empty((n + 1, TRADE_WIDTH)), np.empty((2 * n + 2, FILL_WIDTH))
    equity, _pos, _nt, _nf = engine_pass(
        close,
        states[n_warm:],
        trades,
        fills,
        prev_state=int(states[n_warm - 1]) if n_warm else 0,
        direction=context.direction,
        sizing=context.sizing,
        sl_pct=context.sl_pct,
        tp_pct=context.tp_pct,
        fee_rate=context.fee_rate,
        slip=context.slip,
        init_cash=context.init_cash,
    )
    total, _dd = return_and_max_drawdown(equity, context.init_cash)
    return float(total)


def permuted_returns(perms: IntArray, context: PermContext) -> list[float]:
    """Total Return [%] on each permuted series of a batch (rows of ``perms``)."""
    bars, n_warm, moves = context.bars, context.n_warm, context.moves
    return [total_return_of(permuted_hlc(bars, n_warm, moves, p), context) for p in perms]


_CONTEXTS: dict[str, PermContext] = {}


def init_perm_worker(context: PermContext) -> None:
    """Pool initializer: keep the context (one per process)."""
    _CONTEXTS.clear()
    _CONTEXTS[context.key] = context


def permuted_returns_in_worker(perms: IntArray, key: str) -> list[float]:
    """:func:`permuted_returns` in a pool process set up with the context ``key``.

    Raises:
        RuntimeError: this process holds no context of that key.
    """
    context = _CONTEXTS.get(key)
    if context is None:
        raise RuntimeError(f"internal: no permutation context {key} in this process")
    return permuted_returns(perms, context)


PERMUTE: Task[list[float]] = Task(permuted_returns, permuted_returns_in_worker, init_perm_worker)

_BATCH = 8
"""Permutations per batch (each row is m int64: a batch of 100,000-bar permutations is 6 MiB)."""


def permutation_test(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    catalog: Catalog,
    *,
    n: int,
    seed: int,
    workers: int | None = 1,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[PermutationResult, FloatArray]:
    """The permutation test of issue #16 (1) on prepared candles (a ``warmup`` column); returns
    the result and the permuted Total Returns in draw order. The permutations are drawn here,
    in order, from one ``default_rng(seed)``; batches run on ``workers`` processes (or Dask)."""
    context = perm_context(prepared, rule, params, catalog)
    m = len(context.bars.close) - context.n_warm - 1
    actual = total_return_of(context.bars, context)
    if m < 1:
        raise DataValidationError(
            "validation.permutation: the range holds fewer than 2 bars: nothing to permute"
        )
    executor: Executor[list[float]] = Executor(context, workers, scheduler, PERMUTE)
    returns: list[float] = []
    try:
        # int32 rows: half the bytes to the workers (the same indexes)
        small = np.int32 if m < 2**31 else np.int64
        batches = (b.astype(small) for b in iter_permutation_batches(seed, n, m, _BATCH))
        for part in executor.map(batches):
            returns.extend(part)
            if progress is not None:
                progress(len(returns), n)
    finally:
        executor.close()
    values: FloatArray = np.asarray(returns, dtype=np.float64)
    p5, p50, p95 = (float(v) for v in np.percentile(values, [5, 50, 95]))
    result = PermutationResult(
        n, actual, permutation_p_value(actual, values), float(values.mean()), p5, p50, p95
    )
    return result, values
