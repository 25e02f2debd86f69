"""Walk-forward optimisation (issue #16 (4)), first version: segments and WFE.

Each in-sample window runs the grid of ``params.yaml: grid:`` (the staged runner); the best of
its top-K by the objective (descending, nulls last, ties: variant_key ascending) is backtested
on the next out-of-sample segment, starting with the equity the previous segment ended with.
Still to do (WIP.md): the stitched out-of-sample equity and its 25 metrics.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ita_vc.backtest.run import run_backtest
from ita_vc.errors import DataValidationError
from ita_vc.grid.request import variant_from_dict
from ita_vc.grid.search import run_grid
from ita_vc.validation.stats import Window, wfo_windows

if TYPE_CHECKING:
    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.grid.request import GridRequest
    from ita_vc.rules.model import Rule

__all__ = ["Segment", "WfoResult", "annualised", "walk_forward", "window_frame"]

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


@dataclass(frozen=True, slots=True)
class WfoResult:
    segments: list[Segment]
    wfe: float | None
    final_equity: float


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
    length = n_bars // (windows + in_sample_ratio)
    if length < max(1, min_bars):
        raise DataValidationError(
            f"validation.wfo: {n_bars} bars make windows of {length} bars, shorter than the "
            f"rule's longest indicator window ({min_bars}): use fewer windows or more data"
        )
    ts = prepared["ts_utc"].to_numpy(dtype=np.int64)[n_warm:]
    range_end = int(ts[-1]) + (int(ts[-1] - ts[-2]) if len(ts) > 1 else 0)
    warmup = params.backtest.warmup_bars
    base_rule = {"setup_id": rule.setup_id, "version": str(rule.version), **dict(rule.params)}
    equity = params.backtest.init_cash
    segments: list[Segment] = []
    for w in wfo_windows(n_bars, windows, in_sample_ratio, mode):
        segments.append(
            _step(
                prepared,
                n_warm,
                w,
                ts,
                range_end,
                warmup,
                rule,
                params,
                request,
                base_rule,
                objective,
                equity,
            )
        )
        equity *= 1 + segments[-1].return_ / 100
    ratios = []
    for seg in segments:
        a_in = annualised(seg.in_sample_return, seg.in_days)
        a_out = annualised(seg.return_, seg.out_days)
        if a_in is not None and a_in > 0 and a_out is not None:
            ratios.append(a_out / a_in)
    return WfoResult(segments, float(np.mean(ratios)) if ratios else None, float(equity))


def _step(
    prepared: pd.DataFrame,
    n_warm: int,
    w: Window,
    ts: np.ndarray,
    range_end: int,
    warmup: int,
    rule: Rule,
    params: RunParams,
    request: GridRequest,
    base_rule: dict[str, Any],
    objective: str,
    equity: float,
) -> Segment:
    in_frame = window_frame(prepared, n_warm, w.in_start, w.in_end, warmup)
    outcome = run_grid(in_frame, rule, params, request, keep_partial=False)
    best = _best(outcome.topk, objective)
    variant = variant_from_dict(json.loads(best["params_json"]))
    factor = equity / params.backtest.init_cash
    run_params, rule_map = _scaled(params, variant.rule(base_rule), factor)
    out = run_backtest(
        window_frame(prepared, n_warm, w.out_start, w.out_end, warmup), rule_map, run_params
    )

    def ms(index: int) -> int:
        return int(ts[index]) if index < len(ts) else range_end

    def days(start: int, end: int) -> float:
        return (int(ts[end - 1]) - int(ts[start])) / 86_400_000

    return Segment(
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
