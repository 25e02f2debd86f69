"""The validation suite (issue #16): is a run's edge real? One core for the ``validate`` stage of
dvc.yaml and ``ita-vc validate``.

The run is the backtest of the rule version over ``[start, end)`` with the run's params, on
prepared candles (a ``warmup`` column). The tests (docs/validation.md defines each to the
letter): the permutation test (1), the block bootstrap of the daily returns (2), Monte Carlo over
the trades (3), walk-forward optimisation (4) and the grid's overfitting statistics, CSCV/PBO and
the Deflated Sharpe Ratio (5). Randomness only from ``numpy.random.default_rng(seed)``: a fresh
generator for each of (1), (2) and (3), drawn here, in order, whatever the parallelism. Same
inputs and seed -> the same outcome, bit for bit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ita_vc.backtest.metrics import daily_returns, return_days_index
from ita_vc.backtest.records import TRADE_EQUITY_BEFORE, TRADE_PNL
from ita_vc.backtest.run import run_backtest
from ita_vc.errors import DataValidationError
from ita_vc.grid.returns import too_many_variants
from ita_vc.validation.outcome import SUMMARY_SCHEMA_VERSION, ValidationOutcome, WfoSeries
from ita_vc.validation.permutation import permutation_test
from ita_vc.validation.resampling import (
    block_bootstrap,
    check_bootstrap,
    check_monte_carlo,
    monte_carlo,
)
from ita_vc.validation.stats import cscv, deflated_sharpe, sharpe_columns
from ita_vc.validation.walkforward import check_window_length, variant_rule_map, walk_forward

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from ita_vc.backtest.params import RunParams
    from ita_vc.backtest.run import BacktestResult
    from ita_vc.catalog import Catalog
    from ita_vc.grid.request import GridRequest
    from ita_vc.grid.returns import VariantReturns
    from ita_vc.rules.model import Rule
    from ita_vc.utils.arrays import FloatArray
    from ita_vc.validation.params import ValidationParams

__all__ = [
    "GridEvidence",
    "grid_evidence",
    "longest_window",
    "run_daily_returns",
    "run_validation",
]


@dataclass(frozen=True)
class GridEvidence:
    """What the overfitting statistics read from a grid: its rank-1 variant (``params_json``
    of the top-K row) and the daily returns of every Stage A variant."""

    best_key: str
    best_params: dict[str, Any]
    returns: VariantReturns


def _num(value: object) -> float | None:
    """A JSON number: finite floats as they are, anything else (None, NaN, inf) as null."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _pcts(values: FloatArray) -> dict[str, float | None]:
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return {"p5": _num(p5), "p50": _num(p50), "p95": _num(p95)}


def longest_window(rule: Rule, catalog: Catalog) -> int:
    """The rule's longest indicator window: its largest integer-typed indicator parameter
    (windows, fast/slow lengths) per the catalog; 1 when it has none."""
    from ita_vc.backtest.signals import resolve_indicator_params

    longest = 1
    for name, values in resolve_indicator_params(rule.indicators, catalog):
        spec = catalog.get(name)
        for pname, value in dict(values).items():
            param = spec.params.get(pname) if spec is not None else None
            if param is not None and param.type == "int":
                longest = max(longest, int(value))
    return longest


def run_daily_returns(result: BacktestResult, periods_per_year: float) -> FloatArray:
    """The daily returns a run's Sharpe Ratio uses (docs/backtest-model.md)."""
    if len(result.ts) == 0:
        return np.empty(0)
    index = return_days_index(result.ts, periods_per_year)
    return daily_returns(result.equity_values[index])


def grid_evidence(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    request: GridRequest,
    *,
    max_variants: int,
    workers: int | None = None,
    scheduler: str | None = None,
) -> GridEvidence:
    """Run the grid (staged, as the grid stage does) and the daily returns of its Stage A
    variants: what ``ita-vc validate`` computes itself for the overfitting statistics.

    Raises:
        DataValidationError: more Stage A variants than ``max_variants``; a guard refused the
            grid.
    """
    from ita_vc.grid.returns import stage_a_returns
    from ita_vc.grid.search import run_grid

    returns = stage_a_returns(
        prepared,
        rule,
        params,
        request,
        max_variants=max_variants,
        workers=workers,
        scheduler=scheduler,
    )
    outcome = run_grid(
        prepared, rule, params, request, workers=workers, scheduler=scheduler, keep_partial=False
    )
    best = outcome.topk.iloc[0]
    return GridEvidence(str(best["variant_key"]), json.loads(best["params_json"]), returns)


def _header(result: BacktestResult, validation: ValidationParams) -> dict[str, Any]:
    s = result.summary
    rng = s.get("range") or {}
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        **{
            k: s.get(k)
            for k in ("setup_id", "rule_version", "params_hash", "market", "symbol", "timeframe")
        },
        "range": {k: rng.get(k) for k in ("start", "end", "first_bar", "last_bar", "bars")},
        **{k: s.get(k) for k in ("data_hash", "config_hash", "engine_version")},
        "seed": validation.seed,
    }


@dataclass(frozen=True)
class _Run:
    """One validation's inputs and the run's own backtest, shared by the tests."""

    prepared: pd.DataFrame
    rule: Rule
    params: RunParams
    validation: ValidationParams
    catalog: Catalog
    result: BacktestResult
    daily: FloatArray
    workers: int | None
    scheduler: str | None
    step: Callable[[str, int, int], None]


Part = tuple[dict[str, Any] | None, dict[str, Any]]
"""A test's summary entry (None: skipped) and its chart series (ValidationOutcome fields)."""


def run_validation(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    validation: ValidationParams,
    catalog: Catalog,
    *,
    request: GridRequest | None = None,
    grid: GridEvidence | Callable[[], GridEvidence] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ValidationOutcome:
    """Validate the run of ``rule`` with ``params`` on prepared candles.

    ``request`` (the grid of params.yaml) is needed by the walk-forward test, ``grid`` (the
    grid's rank-1 variant and Stage A daily returns, or a function that computes them: called
    only once the data passed every check) by the overfitting statistics.
    ``progress(test, done, total)`` is called as each test goes.

    Raises:
        DataValidationError: a test's inputs do not allow it (walk-forward windows shorter
            than the rule's longest indicator window, no grid for the overfitting statistics,
            too many variants, a range of fewer than two bars or daily returns).
    """

    def step(name: str, done: int, total: int) -> None:
        if progress is not None:
            progress(name, done, total)

    result = run_backtest(prepared, rule, params, catalog=catalog)
    daily = run_daily_returns(result, params.backtest.periods_per_year)
    run = _Run(prepared, rule, params, validation, catalog, result, daily, workers, scheduler, step)
    _preflight(run, request)  # every refusal the data makes before the grid or any test runs
    evidence = None
    if validation.overfitting is not None:
        evidence = grid() if callable(grid) else grid
        _check_overfitting(evidence, validation.overfitting.partitions,
                           validation.overfitting.max_variants)  # fmt: skip
    summary = _header(result, validation)
    summary["periods_per_year"] = params.backtest.periods_per_year
    summary["actual"] = {
        "Total Return [%]": _num(result.metrics["Total Return [%]"]),
        "Sharpe Ratio": _num(result.metrics["Sharpe Ratio"]),
    }
    summary["psr0"] = _num(deflated_sharpe(daily, []).psr0) if len(daily) > 1 else None
    extra: dict[str, Any] = {}
    notes: list[str] = []
    parts: list[tuple[str, Callable[[], Part]]] = [
        ("permutation", lambda: _permutation(run, notes)),
        ("block_bootstrap", lambda: _bootstrap(run)),
        ("monte_carlo", lambda: _monte_carlo(run, notes)),
        ("wfo", lambda: _wfo(run, request)),
        ("overfitting", lambda: _overfitting(run, evidence)),
    ]
    for name, compute in parts:
        entry, series = compute()
        summary[name] = entry
        extra.update(series)
    return ValidationOutcome(summary, notes=notes, **extra)


def _preflight(run: _Run, request: GridRequest | None) -> None:
    """What the data allows, checked for every test before any of them (or the grid of the
    overfitting statistics) runs.

    Raises:
        DataValidationError: the first test the inputs do not allow, and why.
    """
    v = run.validation
    n_warm = int(run.prepared["warmup"].sum())
    bars = len(run.prepared) - n_warm
    if v.permutation_n is not None and bars < 2:
        raise DataValidationError(
            "params.yaml: validation.permutation: the range holds fewer than 2 bars: nothing "
            "to permute"
        )
    boot = v.block_bootstrap
    if boot is not None:
        if len(run.daily) < 2:
            raise DataValidationError(
                f"params.yaml: validation.block_bootstrap: the range gives {len(run.daily)} "
                "daily returns; the bootstrap needs at least 2: an integer block_size, a "
                "longer range, or `block_bootstrap: null` skips the test"
            )
        check_bootstrap(boot.n, len(run.daily), boot.block_size)
    if v.monte_carlo_n is not None:
        check_monte_carlo(v.monte_carlo_n, len(run.result.engine_trades))
    if v.wfo is not None:
        if request is None:
            raise DataValidationError("validation.wfo: needs the grid of params.yaml (grid:)")
        check_window_length(
            bars, v.wfo.windows, v.wfo.in_sample_ratio, longest_window(run.rule, run.catalog)
        )
    if v.overfitting is not None:  # the grid's daily returns are the run's days
        _check_partitions(len(run.daily), v.overfitting.partitions)


def _check_partitions(days: int, partitions: int) -> None:
    if days < partitions:
        raise DataValidationError(
            f"params.yaml: validation.overfitting.partitions: {partitions} blocks need at least "
            f"{partitions} daily returns, the range gives {days}: fewer partitions, a longer "
            "range, or `overfitting: null` skips the test"
        )


def _check_overfitting(grid: GridEvidence | None, partitions: int, max_variants: int) -> None:
    if grid is None:
        raise DataValidationError(
            "validation.overfitting: needs the grid's per-variant daily returns "
            "(the grid stage writes them when validation.overfitting is set)"
        )
    t, n = grid.returns.matrix.shape
    if n > max_variants:
        raise too_many_variants(n, max_variants)
    if n < 2:
        raise DataValidationError(
            f"params.yaml: validation.overfitting: the grid has {n} Stage A variant(s); CSCV "
            "ranks at least 2 (widen the grid's indicator axes)"
        )
    _check_partitions(t, partitions)


def _permutation(run: _Run, notes: list[str]) -> Part:
    n = run.validation.permutation_n
    if n is None:
        return None, {}
    if len(run.result.engine_trades) == 0:
        notes.append(
            "Permutation: the run closed no trades, so its p-value says nothing about an edge "
            "(a permuted path's closes are exp(log(close_0) + cumsum(r)), which can differ from "
            "the actual closes in the last bits: on flat prices a moving average may cross on "
            "that rounding and trade)."
        )
    perm, values = permutation_test(
        run.prepared,
        run.rule,
        run.params,
        run.catalog,
        n=n,
        seed=run.validation.seed,
        workers=run.workers,
        scheduler=run.scheduler,
        progress=lambda done, total: run.step("permutation", done, total),
    )
    entry = {
        "n": n,
        "metric": "Total Return [%]",
        "actual": _num(perm.actual),
        "p_value": _num(perm.p_value),
        "mean_return": _num(perm.mean_return),
        "distribution_summary": {
            "p5": _num(perm.p5),
            "p50": _num(perm.p50),
            "p95": _num(perm.p95),
        },
    }
    return entry, {"permuted_returns": values}


def _bootstrap(run: _Run) -> Part:
    boot = run.validation.block_bootstrap
    if boot is None:
        return None, {}
    r = run.daily
    if len(r) < 2:
        raise DataValidationError(
            f"validation.block_bootstrap: the range gives {len(r)} daily return(s); "
            "the bootstrap needs at least 2"
        )
    run.step("block_bootstrap", 0, boot.n)
    b, totals = block_bootstrap(
        r,
        n=boot.n,
        block_size=boot.block_size,
        confidence=boot.confidence,
        seed=run.validation.seed,
        periods_per_year=run.params.backtest.periods_per_year,
    )
    run.step("block_bootstrap", boot.n, boot.n)
    entry = {
        "n": boot.n,
        "block_size": b.block_size,
        "block_size_setting": boot.block_size,
        "confidence": boot.confidence,
        "days": len(r),
        "return_ci": {"lower": _num(b.return_ci[0]), "upper": _num(b.return_ci[1])},
        "sharpe_ci": None
        if b.sharpe_ci is None
        else {"lower": _num(b.sharpe_ci[0]), "upper": _num(b.sharpe_ci[1])},
        "sharpe_defined": b.sharpe_defined,
    }
    return entry, {"bootstrap_returns": totals}


def _monte_carlo(run: _Run, notes: list[str]) -> Part:
    n = run.validation.monte_carlo_n
    if n is None:
        return None, {}
    trades = run.result.engine_trades  # the engine's rows: equity_before under any pin
    q = trades[:, TRADE_PNL] / trades[:, TRADE_EQUITY_BEFORE]
    init_cash = float(run.params.backtest.init_cash)
    run.step("monte_carlo", 0, n)
    mc, fan = monte_carlo(q, init_cash, n=n, seed=run.validation.seed)
    run.step("monte_carlo", n, n)
    if len(q) == 0:
        notes.append("Monte Carlo: the run closed no trades, so nothing was drawn.")
    entry = {
        "n": n,
        "trades": len(q),
        "init_cash": init_cash,
        "equity_p5": _num(mc.equity_p5),
        "equity_p50": _num(mc.equity_p50),
        "equity_p95": _num(mc.equity_p95),
        "max_drawdown_p5": _num(mc.max_drawdown_p5),
        "max_drawdown_p50": _num(mc.max_drawdown_p50),
        "max_drawdown_p95": _num(mc.max_drawdown_p95),
        "prob_loss": _num(mc.prob_loss),
    }
    return entry, {"mc_fan": fan}


def _wfo(run: _Run, request: GridRequest | None) -> Part:
    wfo = run.validation.wfo
    if wfo is None:
        return None, {}
    if request is None:
        raise DataValidationError("validation.wfo: needs the grid of params.yaml (grid:)")
    run.step("wfo", 0, wfo.windows)
    w = walk_forward(
        run.prepared,
        run.rule,
        run.params,
        request,
        windows=wfo.windows,
        in_sample_ratio=wfo.in_sample_ratio,
        mode=wfo.mode,
        objective=wfo.objective,
        min_bars=longest_window(run.rule, run.catalog),
    )
    run.step("wfo", wfo.windows, wfo.windows)
    entry = {
        "windows": wfo.windows,
        "in_sample_ratio": wfo.in_sample_ratio,
        "mode": wfo.mode,
        "objective": wfo.objective,
        "window_bars": w.window_bars,
        "segments": [
            {
                "in_sample_start": s.in_sample_start,
                "in_sample_end": s.in_sample_end,
                "out_sample_start": s.out_sample_start,
                "out_sample_end": s.out_sample_end,
                "variant_key": s.variant_key,
                "in_sample_return": _num(s.in_sample_return),
                "return": _num(s.return_),
            }
            for s in w.segments
        ],
        "final_equity": _num(w.final_equity),
        "metrics": {k: (_num(v) if isinstance(v, float) else v) for k, v in w.metrics.items()},
        "wfe": _num(w.wfe),
    }
    series = WfoSeries(
        w.ts,
        w.equity,
        [s.out_sample_start for s in w.segments],
        float(run.params.backtest.init_cash),
    )
    return entry, {"wfo": series}


def _overfitting(run: _Run, grid: GridEvidence | None) -> Part:
    over = run.validation.overfitting
    if over is None:
        return None, {}
    if grid is None:  # run_validation refused it already
        raise DataValidationError("validation.overfitting: no grid")
    partitions, step = over.partitions, run.step
    matrix = grid.returns.matrix
    t, n = matrix.shape
    combos = math.comb(partitions, partitions // 2)
    step("overfitting", 0, combos)
    result = cscv(matrix, partitions)
    step("overfitting", combos, combos)
    best = run_backtest(run.prepared, variant_rule_map(run.rule, grid.best_params), run.params)
    best_returns = run_daily_returns(best, run.params.backtest.periods_per_year)
    dsr = deflated_sharpe(best_returns, sharpe_columns(matrix))
    std = float(best_returns.std(ddof=1)) if len(best_returns) > 1 else 0.0
    return (
        {
            "partitions": partitions,
            "n_variants": n,
            "days": t,
            "combinations": result.combinations,
            "pbo": _num(result.pbo),
            "lambda": _pcts(result.lambdas),
            "best_variant_key": grid.best_key,
            "sr": _num(float(best_returns.mean()) / std) if std > 0 else None,
            "psr0": _num(dsr.psr0),
            "sr0": _num(dsr.sr0),
            "dsr": _num(dsr.dsr),
            "n_trials": dsr.n_trials,
        },
        {"lambdas": result.lambdas},
    )
