"""Walk-forward optimisation (issue #16 (4)): segments, the stitched out-of-sample run, WFE.

Each in-sample window runs the grid of ``params.yaml: grid:`` (the staged runner); the best of
its top-K by the objective (descending, nulls last, ties: variant_key ascending) is backtested
on the next out-of-sample segment, starting with the equity the previous segment ended with.
The out-of-sample segments, one after the other, are one run: its equity, positions and trades
are the segments' concatenated, and its 25 metrics are computed on them as a run's are (with the
run's ``init_cash``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ita_vc.backtest.metrics import compute_metrics, drawdown_series
from ita_vc.backtest.run import run_backtest
from ita_vc.errors import DataValidationError
from ita_vc.grid.request import variant_from_dict
from ita_vc.grid.search import run_grid
from ita_vc.validation.stats import Window, wfo_windows

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.backtest.run import BacktestResult
    from ita_vc.grid.request import GridRequest
    from ita_vc.rules.model import Rule
    from ita_vc.utils.arrays import FloatArray, IntArray

__all__ = [
    "Segment",
    "WfoResult",
    "annualised",
    "check_window_length",
    "variant_rule_map",
    "walk_forward",
    "window_frame",
]

_BUDGET_MODES = ("strategy_compound", "strategy_compound_profit_lock")


@dataclass(frozen=True, slots=True)
class Segment:
    """One walk-forward step: epoch ms (ends exclusive), the chosen variant, both returns."""

    in_sample_start: int
    in_sample_end: int
    out_sample_start: int
    out_sample_end: int
    variant_key: str
    in_sample_return: float
    return_: float
    in_days: float
    out_days: float


@dataclass(frozen=True)
class WfoResult:
    """The segments, WFE, the equity the last segment ended with, and the stitched
    out-of-sample run: bar times (epoch ms), equity, and its 25 metrics."""

    segments: list[Segment]
    wfe: float | None
    final_equity: float
    window_bars: int
    ts: IntArray
    equity: FloatArray
    metrics: dict[str, Any]


def check_window_length(n_bars: int, windows: int, in_sample_ratio: int, min_bars: int) -> int:
    """L = floor(N / (k + q)), the walk-forward's window length in bars.

    Raises:
        DataValidationError: L is smaller than ``min_bars`` (the rule's longest indicator
            window) or than 1.
    """
    length = n_bars // (windows + in_sample_ratio)
    if length < max(1, min_bars):
        raise DataValidationError(
            f"params.yaml: validation.wfo: {n_bars} bars make windows of {length} bars, "
            f"shorter than the rule's longest indicator window ({min_bars}): use fewer windows, "
            "a smaller in_sample_ratio or more data, or `wfo: null` skips the test"
        )
    return length


def window_frame(
    prepared: pd.DataFrame, n_warm: int, start: int, end: int, warmup: int
) -> pd.DataFrame:
    """The bars of range indexes ``[start, end)`` with up to ``warmup`` bars before them (from
    the range or its warm-up), marked in a ``warmup`` column: a run whose start is ``start``."""
    first = max(0, n_warm + start - warmup)
    frame = prepared.iloc[first : n_warm + end].reset_index(drop=True).copy()
    frame["warmup"] = np.arange(len(frame)) < (n_warm + start - first)
    return frame


def annualised(total_return_pct: float, days: float) -> float | None:
    """a = (1 + R/100)^(365/d) - 1; None for d <= 0 or a wiped-out window."""
    if days <= 0 or total_return_pct <= -100:
        return None
    try:
        return float((1 + total_return_pct / 100) ** (365 / days) - 1)
    except OverflowError:
        return None


def _best(topk: pd.DataFrame, objective: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in topk.to_dict("records")
    ]
    if not rows:
        raise DataValidationError("an in-sample window's grid kept no variant")

    def order(row: dict[str, Any]) -> tuple[bool, float, str]:
        value = row.get(objective)
        if value is None or not np.isfinite(value):
            return (True, 0.0, str(row["variant_key"]))
        return (False, -float(value), str(row["variant_key"]))

    return min(rows, key=order)


def variant_rule_map(rule: Rule, row_params: dict[str, Any]) -> dict[str, Any]:
    """The rule mapping of a grid variant (a top-K row's ``params_json``): the rule version's
    parameters with the variant's indicators and targets, and the direction and sizing the grid
    ran it with (the row's overrides, else the rule's)."""
    base = {"setup_id": rule.setup_id, "version": str(rule.version), **dict(rule.params)}
    for key in ("direction", "sizing"):
        if key in row_params:
            base[key] = row_params[key]
    return variant_from_dict(row_params).rule(base)


def _scaled(
    params: RunParams, rule_map: dict[str, Any], factor: float
) -> tuple[RunParams, dict[str, Any]]:
    backtest = dataclasses.replace(params.backtest, init_cash=params.backtest.init_cash * factor)
    sizing = dict(rule_map.get("sizing") or {"mode": "all_in"})
    if sizing.get("mode") in _BUDGET_MODES and "budget" in sizing:
        sizing["budget"] = sizing["budget"] * factor
    return dataclasses.replace(params, backtest=backtest), {**rule_map, "sizing": sizing}


def walk_forward(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    request: GridRequest,
    *,
    windows: int,
    in_sample_ratio: int,
    mode: Literal["rolling", "anchored"],
    objective: str,
    min_bars: int,
) -> WfoResult:
    """Walk forward over prepared candles (a ``warmup`` column).

    Raises:
        DataValidationError: windows shorter than ``min_bars`` (the rule's longest indicator
            window), or a window whose grid keeps nothing.
    """
    n_warm = int(prepared["warmup"].sum())
    n_bars = len(prepared) - n_warm
    length = check_window_length(n_bars, windows, in_sample_ratio, min_bars)
    ts = prepared["ts_utc"].to_numpy(dtype=np.int64)[n_warm:]
    range_end = int(ts[-1]) + (int(ts[-1] - ts[-2]) if len(ts) > 1 else 0)
    warmup = params.backtest.warmup_bars
    equity = params.backtest.init_cash
    segments: list[Segment] = []
    runs: list[BacktestResult] = []
    for w in wfo_windows(n_bars, windows, in_sample_ratio, mode):
        segment, out = _step(
            prepared,
            n_warm,
            w,
            ts,
            range_end,
            warmup,
            rule,
            params,
            request,
            objective,
            equity,
        )
        segments.append(segment)
        runs.append(out)
        if len(out.equity_values):
            equity = float(out.equity_values[-1])
    ratios = []
    for seg in segments:
        a_in = annualised(seg.in_sample_return, seg.in_days)
        a_out = annualised(seg.return_, seg.out_days)
        if a_in is not None and a_in > 0 and a_out is not None:
            ratios.append(a_out / a_in)
    ts_all, equity_all, metrics = _stitched(runs, params)
    return WfoResult(
        segments,
        float(np.mean(ratios)) if ratios else None,
        float(equity),
        length,
        ts_all,
        equity_all,
        metrics,
    )


def _stitched(
    runs: list[BacktestResult], params: RunParams
) -> tuple[IntArray, FloatArray, dict[str, Any]]:
    """The out-of-sample segments as one run: arrays concatenated, metrics as a run's."""
    ts = np.concatenate([r.ts for r in runs]).astype(np.int64)
    equity = np.concatenate([r.equity_values for r in runs])
    position = np.concatenate([r.position for r in runs])
    closes = np.concatenate(
        [
            r.candles_used["close"].to_numpy(dtype=np.float64)[~r.candles_used["warmup"].to_numpy()]
            for r in runs
            if r.candles_used is not None
        ]
    )
    trades = {
        k: np.concatenate([r.trades[k].to_numpy() for r in runs])
        for k in ("entry_ts", "exit_ts", "pnl", "return_pct")
    }
    init_cash = float(params.backtest.init_cash)
    metrics = compute_metrics(
        ts,
        closes,
        equity,
        position,
        trades,
        init_cash,
        drawdown_series(equity, init_cash),
        periods_per_year=params.backtest.periods_per_year,
    )
    return ts, equity, metrics


def _step(
    prepared: pd.DataFrame,
    n_warm: int,
    w: Window,
    ts: IntArray,
    range_end: int,
    warmup: int,
    rule: Rule,
    params: RunParams,
    request: GridRequest,
    objective: str,
    equity: float,
) -> tuple[Segment, BacktestResult]:
    in_frame = window_frame(prepared, n_warm, w.in_start, w.in_end, warmup)
    outcome = run_grid(in_frame, rule, params, request, keep_partial=False)
    best = _best(outcome.topk, objective)
    factor = equity / params.backtest.init_cash
    run_params, rule_map = _scaled(
        params, variant_rule_map(rule, json.loads(best["params_json"])), factor
    )
    out = run_backtest(
        window_frame(prepared, n_warm, w.out_start, w.out_end, warmup), rule_map, run_params
    )

    def ms(index: int) -> int:
        return int(ts[index]) if index < len(ts) else range_end

    def days(start: int, end: int) -> float:
        return (int(ts[end - 1]) - int(ts[start])) / 86_400_000

    segment = Segment(
        ms(w.in_start),
        ms(w.in_end),
        ms(w.out_start),
        ms(w.out_end),
        str(best["variant_key"]),
        float(best["Total Return [%]"]),
        float(out.metrics["Total Return [%]"]),
        days(w.in_start, w.in_end),
        days(w.out_start, w.out_end),
    )
    return segment, out
