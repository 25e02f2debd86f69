"""Evaluating variants: one typed context per search, one evaluator per context and process.

Evaluation shares work: indicator states are computed once per distinct ``(indicator,
params)`` and every variant runs the same compiled engine as a single backtest, into reused
buffers. What an evaluation needs (the candle arrays and the engine settings) is an
:class:`EvalContext`, keyed by its ``engine_params_hash`` (engine version, settings, candles,
run params): a worker process - a local pool's, or a long-lived Dask worker that serves one
search after another - keeps the evaluator of the context it was last given and builds a new
one whenever the key differs, so a worker never evaluates with another search's candles.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import numpy as np

from ita_vc.backtest.engine import engine_pass
from ita_vc.backtest.metrics import (
    daily_returns,
    return_and_max_drawdown,
    return_days_index,
    sharpe_ratio,
)
from ita_vc.backtest.records import TRADE_WIDTH
from ita_vc.backtest.signals import combine_states, indicator_state
from ita_vc.features.cache import FeatureSession, FeatureSource, active_settings, feature_source
from ita_vc.utils.hashing import hash_canonical
from ita_vc.utils.process import start_pool_worker
from ita_vc.utils.tablehash import hash_dataframe

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy.typing as npt
    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.grid.request import Variant

    States: TypeAlias = npt.NDArray[np.int8]
    """An indicator's (or a rule's combined) state per bar: -1, 0 or +1."""

__all__ = [
    "EngineSettings",
    "EvalContext",
    "GridArrays",
    "VariantResult",
    "evaluate_batch",
    "evaluate_in_worker",
    "evaluation_context",
    "grid_arrays",
    "init_pool_worker",
    "init_worker",
    "merge_top",
    "returns_batch",
    "returns_in_worker",
]


@dataclass(frozen=True)
class VariantResult:
    """What ranking needs: total return, max drawdown (%), trade count."""

    key: str
    total_return: float
    max_drawdown: float
    trades: int
    variant: Variant
    sharpe: float | None = None

    def sort_key(self) -> tuple[float, str]:
        """Total Return [%] descending, then variant key ascending."""
        return (-self.total_return, self.key)


def merge_top(
    current: list[VariantResult], new: Sequence[VariantResult], k: int
) -> list[VariantResult]:
    """The best ``k`` of both lists (deterministic, whatever the order of arrival)."""
    return sorted([*current, *new], key=VariantResult.sort_key)[:k]


class GridArrays(NamedTuple):
    """The candle arrays a grid evaluates on (contiguous, from prepared candles)."""

    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    n_warm: int
    """Warm-up bars at the start (indicators only, no trading)."""
    ts: npt.NDArray[np.int64]


def grid_arrays(prepared: pd.DataFrame) -> GridArrays:
    """The :class:`GridArrays` of prepared candles (a ``warmup`` column)."""
    high, low, close = (
        np.ascontiguousarray(prepared[c].to_numpy(dtype=np.float64))
        for c in ("high", "low", "close")
    )
    ts = np.ascontiguousarray(prepared["ts_utc"].to_numpy(dtype=np.int64))
    return GridArrays(high, low, close, int(prepared["warmup"].sum()), ts)


@dataclass(frozen=True)
class EngineSettings:
    """The execution every variant of a search runs with (the request's or the rule's)."""

    direction: str
    sizing: Mapping[str, Any]
    fee_rate: float
    slip: float
    init_cash: float

    def to_dict(self) -> dict[str, Any]:
        """The settings as hashed into ``engine_params_hash``."""
        return {**asdict(self), "sizing": dict(self.sizing)}


@dataclass(frozen=True)
class EvalContext:
    """Everything a worker needs to evaluate variants, under the key that names it."""

    key: str
    """The ``engine_params_hash``: engine version, settings, candles and run params."""
    data_hash: str
    arrays: GridArrays
    settings: EngineSettings
    periods_per_year: float = 365.0
    """Sharpe's annualisation (params' ``backtest.periods_per_year``; in the key through
    the params when it is not 365)."""
    features: FeatureSource | None = None
    """The feature cache to read and fill (docs/cache.md); not in the key: it changes no
    result."""


def evaluation_context(
    prepared: pd.DataFrame, settings: EngineSettings, params: RunParams
) -> EvalContext:
    """The :class:`EvalContext` of prepared candles, its key hashed from what defines it."""
    data_hash = hash_dataframe(prepared[["ts_utc", "open", "high", "low", "close", "volume"]])
    key = hash_canonical(
        {
            "engine_version": params.engine_version,
            "settings": settings.to_dict(),
            "data_hash": data_hash,
            "params": params.to_dict(),
        }
    )
    arrays = grid_arrays(prepared)
    features = feature_source(
        active_settings(),
        market=params.data.market,
        symbol=params.data.symbol,
        timeframe=params.data.timeframe,
        ts=arrays.ts,
        data_hash=data_hash,
        engine_version=params.engine_version,
    )
    return EvalContext(key, data_hash, arrays, settings, params.backtest.periods_per_year, features)


_STATE_CACHE_BYTES = 256 * 2**20
"""Indicator states kept per process (bytes); beyond it the cache starts over."""


_MALLOC_TUNED: list[bool] = []


def _keep_engine_buffers() -> None:
    """Once per process, on glibc: serve allocations up to 32 MiB from the heap and keep up
    to 64 MiB of freed heap (``mallopt`` M_MMAP_THRESHOLD, M_TRIM_THRESHOLD).

    The engine allocates two n-bar arrays per variant. glibc serves allocations that large with
    a fresh ``mmap`` (a page fault per 4 KiB page) until freeing a large ``mmap``-ed chunk
    raises its dynamic thresholds to about these values; computing an indicator does that as a
    side effect, but a grid served from the feature cache computes none and spent as long in
    page faults as in the engine (docs/cache.md). Fixing the thresholds makes every grid run
    alike; it changes no result. Elsewhere than glibc this does nothing.
    """
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED.append(True)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
    except (OSError, AttributeError):  # not glibc
        return


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


class _Evaluator:
    """Per-process state of one context: the indicator-state cache and reusable buffers."""

    def __init__(self, context: EvalContext) -> None:
        arrays = context.arrays
        self.key = context.key
        self.high, self.low, self.close = arrays.high, arrays.low, arrays.close
        self.n_warm = arrays.n_warm
        ts = arrays.ts[arrays.n_warm :]
        self.periods_per_year = context.periods_per_year
        self.days = return_days_index(ts, self.periods_per_year) if len(ts) else None
        self.settings = context.settings
        self.sizing = dict(context.settings.sizing)
        self.cache: dict[tuple[str, tuple[tuple[str, Any], ...]], States] = {}
        self.cache_entries = max(1, _STATE_CACHE_BYTES // max(1, len(self.close)))  # int8
        n = len(self.close) - self.n_warm
        self.trades = np.empty((n + 1, TRADE_WIDTH))
        self.fills = np.empty((2 * n + 2, 7))
        self.source = context.features
        _keep_engine_buffers()
        self.features = (
            FeatureSession(context.features, len(self.close)) if context.features else None
        )

    def indicator(self, name: str, params: Mapping[str, Any]) -> States:
        """One indicator's states: from the feature cache when it holds them, else computed
        (and offered to the cache)."""
        session = self.features
        if session is not None:
            found = session.get(name, params)
            if found is not None:
                return found
        start = time.perf_counter()
        states: States = indicator_state(name, dict(params), self.high, self.low, self.close)
        if session is not None:
            session.offer(name, params, states, time.perf_counter() - start)
        return states

    def flush(self) -> None:
        """After a batch: write the feature cache entries computed in it, record its hits."""
        if self.features is not None:
            self.features.flush()

    def states(self, variant: Variant) -> States:
        parts = []
        for name, params in variant.indicators:
            key = (name, params)
            if key not in self.cache:
                if len(self.cache) >= self.cache_entries:  # bounded memory
                    self.cache.clear()
                self.cache[key] = self.indicator(name, dict(params))
            parts.append(self.cache[key])
        if len(parts) == 1:  # one indicator: its state is the final state
            return parts[0]
        final: States = combine_states(parts, len(self.close))[0]
        return final

    def run(self, variant: Variant) -> tuple[npt.NDArray[np.float64], int]:
        """The variant's equity per bar of the range and its trade count."""
        s = self.settings
        states = self.states(variant)
        n_warm = self.n_warm
        prev = int(states[n_warm - 1]) if n_warm else 0
        equity, _position, n_trades, _n_fills = engine_pass(
            self.close[n_warm:],
            states[n_warm:],
            self.trades,
            self.fills,
            prev_state=prev,
            direction=s.direction,
            sizing=self.sizing,
            sl_pct=variant.sl_pct,
            tp_pct=variant.tp_pct,
            fee_rate=s.fee_rate,
            slip=s.slip,
            init_cash=s.init_cash,
        )
        return equity, int(n_trades)

    def daily_returns(self, variant: Variant) -> npt.NDArray[np.float64]:
        """The variant's daily returns (the Sharpe Ratio's series)."""
        if self.days is None:
            return np.empty(0)
        return daily_returns(self.run(variant)[0][self.days])

    def evaluate(self, variant: Variant) -> VariantResult:
        s = self.settings
        equity, n_trades = self.run(variant)
        sharpe = None
        if len(equity):
            total, max_dd = return_and_max_drawdown(equity, float(s.init_cash))
            if self.days is not None:
                sharpe = sharpe_ratio(daily_returns(equity[self.days]), self.periods_per_year)
        else:
            total, max_dd = 0.0, 0.0
        return VariantResult(variant.key, total, max_dd, n_trades, variant, sharpe)


_EVALUATORS: dict[str, _Evaluator] = {}
"""This process's evaluator, by its context's key (one at a time: memory stays bounded)."""


def _evaluator(context: EvalContext) -> _Evaluator:
    """The evaluator of ``context``, built when this process holds none of its key."""
    found = _EVALUATORS.get(context.key)
    if found is None or found.source != context.features:  # the cache in use changed too
        _EVALUATORS.clear()  # another search's candles and buffers: let them go
        found = _EVALUATORS[context.key] = _Evaluator(context)
    return found


def init_worker(context: EvalContext) -> None:
    """Process-pool initializer: build the context's evaluator once per worker process."""
    _evaluator(context)


def init_pool_worker(context: EvalContext) -> None:
    """:func:`init_worker` for a pool of one's own: the process first ignores SIGINT and dies
    with its parent (:func:`~ita_vc.utils.process.start_pool_worker`, which the grid's
    :class:`~ita_vc.grid.executor.Executor` runs in every pool process itself)."""
    start_pool_worker()
    init_worker(context)


def evaluate_batch(variants: Sequence[Variant], context: EvalContext) -> list[VariantResult]:
    """Evaluate a batch with ``context`` (its evaluator reused while the key stays the same)."""
    evaluator = _evaluator(context)
    results = [evaluator.evaluate(v) for v in variants]
    evaluator.flush()
    return results


def _returns(evaluator: _Evaluator, variants: Sequence[Variant]) -> npt.NDArray[np.float64]:
    t = max(0, len(evaluator.days) - 1) if evaluator.days is not None else 0
    if not variants:
        return np.empty((t, 0))
    out = np.column_stack([evaluator.daily_returns(v) for v in variants])
    evaluator.flush()
    return out


def returns_batch(variants: Sequence[Variant], context: EvalContext) -> npt.NDArray[np.float64]:
    """The daily returns of a batch of variants (days x variants), with ``context``."""
    return _returns(_evaluator(context), variants)


def returns_in_worker(variants: Sequence[Variant], key: str) -> npt.NDArray[np.float64]:
    """:func:`returns_batch` in a worker set up by :func:`init_worker` with the context ``key``.

    Raises:
        RuntimeError: this process holds no evaluator of that key.
    """
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        raise RuntimeError(f"internal: no grid evaluator for {key} in this process")
    return _returns(evaluator, variants)


def evaluate_in_worker(variants: Sequence[Variant], key: str) -> list[VariantResult]:
    """Evaluate a batch in a worker set up by :func:`init_worker` with the context ``key``.

    Raises:
        RuntimeError: this process holds no evaluator of that key.
    """
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        raise RuntimeError(
            f"internal: no grid evaluator for {key} in this process "
            "(init_worker was not called with its context)"
        )
    results = [evaluator.evaluate(v) for v in variants]
    evaluator.flush()
    return results
