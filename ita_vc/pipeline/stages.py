"""The stages ``dvc.yaml`` runs (``python -m ita_vc.pipeline <stage>``): thin I/O around the core.

* ``prepare``: canonical candles (``data.source_timeframe``) -> the requested timeframe by
  rollup, ``[start, end)`` plus up to ``warmup_bars`` before -> ``results/prepared/``;
* ``backtest``: prepared candles + the rule version (through the registry) + params ->
  ``results/backtest/`` (trades, fills, equity, drawdown, summary.json) and
  ``results/metrics.json``;
* ``report``: -> ``results/report/`` (report.md, equity.png, drawdown.png) and
  ``results/plots/equity.csv`` (``dvc plots``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ita_vc.errors import DataValidationError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "PARAMS_FILE",
    "grid_inputs",
    "load_params_file",
    "stage_backtest",
    "stage_grid",
    "stage_prepare",
    "stage_report",
]

PARAMS_FILE = "params.yaml"
PREPARED = "prepared"
BACKTEST = "backtest"
REPORT = "report"
PLOTS = "plots"


def load_params_file(root: Path) -> dict[str, Any]:
    """``params.yaml`` of the workspace, safely loaded.

    Raises:
        DataValidationError: missing or invalid.
    """
    from ita_vc.yamlio import YamlError, load_yaml_file

    try:
        raw = load_yaml_file(root / PARAMS_FILE, max_bytes=1 << 20, allow_aliases=True)
    except YamlError as exc:
        raise DataValidationError(str(exc)) from exc
    if not isinstance(raw, dict):
        raise DataValidationError(f"{PARAMS_FILE} must be a mapping")
    return raw


def _context(root: Path | None) -> tuple[Any, Any, dict[str, Any]]:
    from ita_vc.store.artifacts import PersistentStore
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover(root)
    return workspace, PersistentStore(workspace), load_params_file(workspace.root)


def _results(store: Any, *parts: str) -> str:
    from pathlib import PurePosixPath

    return PurePosixPath(store.workspace.config.store.kinds["results"], *parts).as_posix()


def stage_prepare(root: Path | None = None) -> dict[str, Any]:
    """Run the prepare stage; returns its report."""
    from ita_vc.backtest.params import parse_params
    from ita_vc.backtest.run import prepare_candles
    from ita_vc.candles.dataset import CandleStore
    from ita_vc.pipeline.outputs import StoreSink

    workspace, store, raw = _context(root)
    params = parse_params(raw)
    candles = CandleStore(workspace).load(params.data.market, params.data.symbol,
                                          params.data.source_timeframe)
    prepared, report = prepare_candles(candles, params)
    report.update(params.to_dict()["data"])
    sink = StoreSink(store, "results", PREPARED,
                     meta={"symbol": params.data.symbol, "timeframe": params.data.timeframe})
    sink.table(prepared, "candles.parquet")
    sink.json(report, "prepare.json")
    return report


def stage_backtest(root: Path | None = None) -> dict[str, Any]:
    """Run the backtest stage; returns the summary."""
    from ita_vc.backtest.params import parse_params
    from ita_vc.backtest.run import run_backtest
    from ita_vc.pipeline.outputs import StoreSink, write_backtest
    from ita_vc.rules.registry import RuleRegistry

    workspace, store, raw = _context(root)
    params = parse_params(raw)
    if not params.setup_id or not params.version:
        raise DataValidationError("params.yaml: rule.setup_id and rule.version are required")
    registry = RuleRegistry(workspace)
    rule = registry.get(params.setup_id, params.version)
    prepared = store.load_dataframe(_results(store, PREPARED, "candles.parquet"))
    result = run_backtest(prepared, rule, params, catalog=registry.catalog)
    meta = {"symbol": params.data.symbol, "timeframe": params.data.timeframe,
            "rule_version": rule.version.tag}
    write_backtest(result, StoreSink(store, "results", BACKTEST, meta=meta),
                   StoreSink(store, "results"))
    return result.summary


def stage_report(root: Path | None = None) -> str:
    """Run the report stage; returns the report.md path."""
    from ita_vc.candles.validate import format_ts
    from ita_vc.pipeline.outputs import StoreSink, write_report

    _workspace, store, _raw = _context(root)
    summary = store.load_json(_results(store, BACKTEST, "summary.json"))
    metrics = store.load_json(_results(store, "metrics.json"))
    equity = store.load_dataframe(_results(store, BACKTEST, "equity.parquet"))
    drawdown = store.load_dataframe(_results(store, BACKTEST, "drawdown.parquet"))
    write_report(summary, metrics, equity, drawdown, StoreSink(store, "results", REPORT))
    plot = equity.assign(time=[format_ts(int(t)) for t in equity["ts_utc"]],
                         drawdown_pct=drawdown["drawdown"] * 100.0)[["time", "equity",
                                                                     "drawdown_pct"]]
    # a presentation file for `dvc plots`: plain CSV, no store sidecar inside the DVC out
    from ita_vc.store.atomic import atomic_write_bytes

    target = store.workspace.path(_results(store, PLOTS, "equity.csv"))
    atomic_write_bytes(target, plot.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return _results(store, REPORT, "report.md")


def grid_inputs(workspace: Any, raw: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """``(prepared candles, rule, run params, grid request)`` of a workspace's params.

    Raises:
        DataValidationError: no ``grid:`` section or bad params.
    """
    from ita_vc.backtest.grid import parse_grid
    from ita_vc.backtest.params import parse_params
    from ita_vc.backtest.run import prepare_candles
    from ita_vc.candles.dataset import CandleStore
    from ita_vc.rules.registry import RuleRegistry

    params = parse_params(raw)
    if not params.setup_id or not params.version:
        raise DataValidationError("params: rule.setup_id and rule.version are required")
    registry = RuleRegistry(workspace)
    rule = registry.get(params.setup_id, params.version)
    request = parse_grid(raw.get("grid"), registry.catalog)
    candles = CandleStore(workspace).load(params.data.market, params.data.symbol,
                                          params.data.source_timeframe)
    prepared, _report = prepare_candles(candles, params)
    return prepared, rule, params, request


def stage_grid(root: Path | None = None) -> dict[str, Any]:
    """Run the grid stage (``params.yaml: grid:``) into ``results/grid/``; returns the summary.

    Raises:
        KeyboardInterrupt: the search was interrupted. Nothing is written then: a stage's outs
            are what DVC records as the stage's result, and a partial top-K is not that result
            (``ita-vc grid run`` is the command that keeps partial results and resumes).
    """
    from ita_vc.pipeline.grid import run_grid
    from ita_vc.pipeline.outputs import StoreSink, write_grid

    workspace, store, raw = _context(root)
    prepared, rule, params, request = grid_inputs(workspace, raw)
    outcome = run_grid(prepared, rule, params, request, keep_partial=False)
    write_grid(outcome, StoreSink(store, "results", "grid"), timings=False)
    return outcome.summary
