"""Grid backtests: many variants of one rule, exact, staged, memory-bounded.

A *variant* is the rule with concrete indicator parameters and SL/TP targets. Its key is
canonical (``ma_cross(fast=10,slow=20)|sl=1|tp=none``) and orders ties. Evaluation shares work:
indicator states are computed once per distinct ``(indicator, params)`` and every variant runs
the same compiled engine as a single backtest, into reused buffers. The staged runner
(:mod:`ita_vc.pipeline.grid`) evaluates Stage A (no SL/TP) for a shortlist, then Stage B (the
shortlist x the SL/TP axes), and re-runs the top-K as ordinary single backtests for their full
metrics - so a top-K row *is* the single run's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ita_vc.backtest.grid_request import (
    GridRequest,
    Variant,
    check_grid,
    check_rule_indicators,
    parse_grid,
    variant_key,
)
from ita_vc.backtest.metrics import (
    daily_index,
    daily_returns,
    return_and_max_drawdown,
    sharpe_ratio,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

__all__ = [
    "GridRequest",
    "Variant",
    "VariantResult",
    "check_grid",
    "check_rule_indicators",
    "evaluate_batch",
    "merge_top",
    "parse_grid",
    "variant_key",
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


def merge_top(current: list[VariantResult], new: Sequence[VariantResult],
              k: int) -> list[VariantResult]:
    """The best ``k`` of both lists (deterministic, whatever the order of arrival)."""
    return sorted([*current, *new], key=VariantResult.sort_key)[:k]


_STATE_CACHE_BYTES = 256 * 2**20
"""Indicator states kept per process (bytes); beyond it the cache starts over."""


class _Evaluator:
    """Per-process state: the candles, the indicator-state cache and reusable buffers."""

    def __init__(self, high: Any, low: Any, close: Any, n_warm: int, settings: dict[str, Any],
                 ts: Any = None):
        from ita_vc.backtest.signals import indicator_state

        self.high, self.low, self.close = high, low, close
        self.n_warm = n_warm
        self.ts = None if ts is None else ts[n_warm:]
        self.days = None if self.ts is None or not len(self.ts) else daily_index(self.ts)
        self.settings = settings
        self._state = indicator_state
        self.cache: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
        self.cache_entries = max(1, _STATE_CACHE_BYTES // max(1, len(close)))  # int8 states
        n = len(close) - n_warm
        self.trades = np.empty((n + 1, 11))
        self.fills = np.empty((2 * n + 2, 7))

    def states(self, variant: Variant) -> Any:
        from ita_vc.backtest.signals import combine_states

        parts = []
        for name, params in variant.indicators:
            key = (name, params)
            if key not in self.cache:
                if len(self.cache) >= self.cache_entries:  # bounded memory
                    self.cache.clear()
                self.cache[key] = self._state(name, dict(params), self.high, self.low,
                                              self.close)
            parts.append(self.cache[key])
        if len(parts) == 1:  # one indicator: its state is the final state
            return parts[0]
        final, _conflicting = combine_states(parts, len(self.close))
        return final

    def evaluate(self, variant: Variant) -> VariantResult:
        from ita_vc.backtest.engine import engine_pass

        s = self.settings
        states = self.states(variant)
        n_warm = self.n_warm
        prev = int(states[n_warm - 1]) if n_warm else 0
        equity, _position, n_trades, _n_fills = engine_pass(
            self.close[n_warm:], states[n_warm:], self.trades, self.fills, prev_state=prev,
            direction=s["direction"], sizing=s["sizing"], sl_pct=variant.sl_pct,
            tp_pct=variant.tp_pct, fee_rate=s["fee_rate"], slip=s["slip"],
            init_cash=s["init_cash"])
        init = s["init_cash"]
        sharpe = None
        if len(equity):
            total, max_dd = return_and_max_drawdown(equity, float(init))
            if self.days is not None:
                sharpe = sharpe_ratio(daily_returns(equity[self.days]))
        else:
            total, max_dd = 0.0, 0.0
        return VariantResult(variant.key, total, max_dd, int(n_trades), variant, sharpe)


_WORKER: dict[str, _Evaluator] = {}


def init_worker(high: Any, low: Any, close: Any, n_warm: int, settings: dict[str, Any],
                ts: Any = None) -> None:
    """Process-pool initializer: build the evaluator once per worker process."""
    _WORKER["evaluator"] = _Evaluator(high, low, close, n_warm, settings, ts)


def init_pool_worker(high: Any, low: Any, close: Any, n_warm: int, settings: dict[str, Any],
                     ts: Any = None) -> None:
    """:func:`init_worker` for a local pool process, which also ignores SIGINT: a Ctrl-C in a
    terminal reaches the whole process group, and only the parent decides how to stop (the
    pool must not break under it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(high, low, close, n_warm, settings, ts)


def evaluate_batch(variants: Sequence[Variant], payload: tuple[Any, ...] | None = None,
                   ) -> list[VariantResult]:
    """Evaluate a batch (in a worker set up by :func:`init_worker`, or from ``payload``)."""
    evaluator = _WORKER.get("evaluator")
    if payload is not None:
        token = id(payload)
        if evaluator is None or _WORKER.get("token") is not token:  # type: ignore[comparison-overlap]
            evaluator = _Evaluator(*payload)
            _WORKER["evaluator"] = evaluator
            _WORKER["token"] = token  # type: ignore[assignment]
    if evaluator is None:
        raise RuntimeError("evaluate_batch needs init_worker() or a payload")
    return [evaluator.evaluate(v) for v in variants]


def grid_arrays(prepared: pd.DataFrame) -> tuple[Any, Any, Any, int, Any]:
    """``(high, low, close, n_warm, ts)`` of prepared candles (a ``warmup`` column)."""
    high, low, close = (np.ascontiguousarray(prepared[c].to_numpy(dtype=np.float64))
                        for c in ("high", "low", "close"))
    ts = np.ascontiguousarray(prepared["ts_utc"].to_numpy(dtype=np.int64))
    return high, low, close, int(prepared["warmup"].sum()), ts
