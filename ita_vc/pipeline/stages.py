"""The four stages ``dvc.yaml`` runs (``python -m ita_vc.pipeline <stage>``): thin I/O around
the core. ``prepare -> backtest -> report`` is one chain; ``grid`` stands beside it (it reads the
candles itself and depends on no other stage's outs). Paths below are for the default
``store.kinds.results: results``; the stages write below whatever folder that names.

* ``prepare``: canonical candles (``data.source_timeframe``) -> the requested timeframe by
  rollup, ``[start, end)`` plus up to ``warmup_bars`` before -> ``results/prepared/``
  (candles.parquet, prepare.json);
* ``backtest``: prepared candles + the rule version (through the registry) + params ->
  ``results/backtest/`` (trades, fills, equity, drawdown, summary.json) and
  ``results/metrics.json``;
* ``report``: the backtest's outputs + the prepared candles (the price) ->
  ``results/report/`` (report.md, price.png, equity.png, drawdown.png, report.html) and
  ``results/plots/equity.csv`` (``dvc plots``);
* ``grid``: the parameter search of ``params.yaml: grid:`` over candles prepared as
  ``prepare`` does -> ``results/grid/`` (topk.parquet, trades.parquet of the best
  ``top_trades_n``, report.md, summary.json, and with ``validation.overfitting`` set
  variant_returns.parquet, the daily returns of every Stage A variant); an interrupted stage
  writes nothing (``ita-vc grid run`` is the resumable command);
* ``validate``: the validation suite of ``params.yaml: validation:`` (docs/validation.md) on
  the prepared candles, the rule and params, and for the overfitting statistics the grid's
  outputs -> ``results/validation/`` (validation_summary.json, report.md, the charts).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from ita_vc.backtest.params import parse_params
from ita_vc.backtest.run import prepare_candles, run_backtest
from ita_vc.candles.dataset import CandleStore
from ita_vc.candles.validate import format_ts
from ita_vc.errors import ConfigError, DataValidationError, ItaVcError
from ita_vc.features import activate, cache_settings
from ita_vc.grid import run_grid
from ita_vc.grid.request import GridSetup, check_params_and_grid, parse_grid
from ita_vc.grid.returns import stage_a_returns, variant_returns_frame
from ita_vc.pipeline.engine_pin import pinned_engine
from ita_vc.pipeline.outputs import (
    StoreSink,
    write_backtest,
    write_grid,
    write_report,
    write_report_v1,
    write_validation,
)
from ita_vc.rules.registry import RuleRegistry
from ita_vc.store.artifacts import PersistentStore
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.validation.params import ValidationParams, parse_validation
from ita_vc.validation.suite import GridEvidence, grid_evidence, run_validation
from ita_vc.workspace import Workspace
from ita_vc.yaml_read import (
    YamlDocument,
    YamlError,
    load_yaml_document,
    load_yaml_file,
    read_text_file,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from ita_vc.grid.request import GridInputs
    from ita_vc.validation.outcome import ValidationOutcome

__all__ = [
    "PARAMS_FILE",
    "grid_candles",
    "grid_inputs",
    "grid_request",
    "load_params_file",
    "read_grid_params",
    "stage_backtest",
    "stage_grid",
    "stage_prepare",
    "stage_report",
    "stage_validate",
    "validate_workspace",
    "validation_setup",
]

PARAMS_FILE = "params.yaml"
PREPARED = "prepared"
BACKTEST = "backtest"
REPORT = "report"
PLOTS = "plots"
VALIDATION = "validation"


def load_params_document(root: Path) -> YamlDocument:
    """``params.yaml`` of the workspace, safely loaded, with its node index (the lines that
    messages quote).

    Raises:
        DataValidationError: missing or invalid.
    """
    path = root / PARAMS_FILE
    try:
        doc = load_yaml_document(
            read_text_file(path, max_bytes=1 << 20),
            str(path),
            allow_aliases=True,
            max_bytes=1 << 20,
        )
    except YamlError as exc:
        raise DataValidationError(str(exc)) from exc
    if not isinstance(doc.data, dict):
        raise DataValidationError(f"{PARAMS_FILE} must be a mapping")
    return doc


def load_params_file(root: Path) -> dict[str, Any]:
    """``params.yaml`` of the workspace, safely loaded.

    Raises:
        DataValidationError: missing or invalid.
    """
    data: dict[str, Any] = load_params_document(root).data
    return data


def _context(root: Path | None) -> tuple[Any, Any, dict[str, Any]]:
    workspace = Workspace.discover(root)
    return workspace, PersistentStore(workspace), load_params_file(workspace.root)


def _results(store: Any, *parts: str) -> str:
    return PurePosixPath(store.workspace.config.store.kinds["results"], *parts).as_posix()


def stage_prepare(root: Path | None = None) -> dict[str, Any]:
    """Run the prepare stage; returns its report."""
    workspace, store, raw = _context(root)
    params = parse_params(raw)
    candles = CandleStore(workspace).load(
        params.data.market, params.data.symbol, params.data.source_timeframe
    )
    prepared, report = prepare_candles(candles, params)
    report.update(params.to_dict()["data"])
    sink = StoreSink(
        store,
        "results",
        PREPARED,
        meta={"symbol": params.data.symbol, "timeframe": params.data.timeframe},
    )
    sink.table(prepared, "candles.parquet")
    sink.json(report, "prepare.json")
    return report


def stage_backtest(root: Path | None = None, engine: str | None = None) -> dict[str, Any]:
    """Run the backtest stage under the ``engine`` dvc.yaml pins (None: the newest); returns
    the summary."""
    workspace, store, raw = _context(root)
    params = parse_params(raw, engine=engine)
    if not params.setup_id or not params.version:
        raise DataValidationError("params.yaml: rule.setup_id and rule.version are required")
    registry = RuleRegistry(workspace)
    rule = registry.get(params.setup_id, params.version)
    prepared = store.load_dataframe(_results(store, PREPARED, "candles.parquet"))
    result = run_backtest(prepared, rule, params, catalog=registry.catalog)
    meta = {
        "symbol": params.data.symbol,
        "timeframe": params.data.timeframe,
        "rule_version": rule.version.tag,
    }
    write_backtest(
        result, StoreSink(store, "results", BACKTEST, meta=meta), StoreSink(store, "results")
    )
    return result.summary


def stage_report(root: Path | None = None, engine: str | None = None) -> str:
    """Run the report stage; returns the report.md path."""
    _workspace, store, _raw = _context(root)
    summary = store.load_json(_results(store, BACKTEST, "summary.json"))
    metrics = store.load_json(_results(store, "metrics.json"))
    equity = store.load_dataframe(_results(store, BACKTEST, "equity.parquet"))
    drawdown = store.load_dataframe(_results(store, BACKTEST, "drawdown.parquet"))
    sink = StoreSink(store, "results", REPORT)
    if engine == "1.0":  # a pipeline pinned to engine 1.0 keeps its reports byte for byte
        write_report_v1(summary, metrics, equity, drawdown, sink)
    else:
        trades = store.load_dataframe(_results(store, BACKTEST, "trades.parquet"))
        candles = store.load_dataframe(_results(store, PREPARED, "candles.parquet"))
        write_report(summary, metrics, equity, drawdown, sink, trades=trades, candles=candles)
    plot = equity.assign(
        time=[format_ts(int(t)) for t in equity["ts_utc"]],
        drawdown_pct=drawdown["drawdown"] * 100.0,
    )[["time", "equity", "drawdown_pct"]]
    # a presentation file for `dvc plots`: plain CSV, no store sidecar inside the DVC out
    target = store.workspace.path(_results(store, PLOTS, "equity.csv"))
    atomic_write_bytes(target, plot.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return _results(store, REPORT, "report.md")


def read_grid_params(workspace: Any, path: Path | None = None) -> YamlDocument:
    """The params of a grid run: ``path`` (``ita-vc grid run --params``), else the
    workspace's ``params.yaml`` with its node index. Messages name keys as ``params.yaml:
    ...``, so another file's lines are not indexed (they would point into the wrong file).

    Raises:
        DataValidationError: unreadable, too large, invalid YAML or not a mapping.
    """
    if path is None:
        return load_params_document(workspace.root)
    try:
        raw = load_yaml_file(path, max_bytes=1 << 20, allow_aliases=True)
    except YamlError as exc:
        raise DataValidationError(str(exc)) from exc
    if not isinstance(raw, dict):
        raise DataValidationError(f"{path} must be a mapping (rule, data, backtest, grid)")
    return YamlDocument(str(path), raw, {})


def grid_request(
    workspace: Any,
    raw: dict[str, Any],
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
    engine: str | None = None,
) -> GridSetup:
    """``(rule, run params, grid request)`` of a workspace's params: everything checked and
    the grid's size guarded (counted from its axes), before any candles are read. ``index``
    (the params file's node index) puts each problem's line in its message.

    Raises:
        DataValidationError: bad params or grid, other indicators than the rule's, too many
            variants, a sizing budget above ``init_cash``.
        RuleValidationError: the rule version is invalid.
    """
    registry = RuleRegistry(workspace)
    if engine is None:
        engine = pinned_engine(workspace.root)
    params = check_params_and_grid(raw, registry.catalog, index=index, engine=engine)
    if not params.setup_id or not params.version:
        raise DataValidationError("params.yaml: rule.setup_id and rule.version are required")
    rule = registry.get(params.setup_id, params.version)
    request = parse_grid(raw.get("grid"), registry.catalog, rule, index=index)
    budget = (request.sizing or rule.sizing).get("budget")
    if budget is not None and budget > params.backtest.init_cash:
        raise DataValidationError(
            f"params.yaml: grid.sizing.budget: {budget!r}: larger than "
            f"backtest.init_cash {params.backtest.init_cash!r}"
        )
    return GridSetup(rule, params, request)


def grid_candles(workspace: Any, params: Any) -> Any:
    """The prepared candles of a grid run (the same as the backtest's ``prepare`` stage).

    Raises:
        DataValidationError: no such dataset, or a range outside the data.
    """
    candles = CandleStore(workspace).load(
        params.data.market, params.data.symbol, params.data.source_timeframe
    )
    prepared, _report = prepare_candles(candles, params)
    return prepared


def grid_inputs(
    workspace: Any,
    raw: dict[str, Any],
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
    engine: str | None = None,
) -> GridInputs:
    """``(prepared candles, rule, run params, grid request)`` of a workspace's params: the
    request is checked and guarded (:func:`grid_request`) before any candles are loaded.

    Raises:
        DataValidationError: bad params or grid (see :func:`grid_request`), no candles.
    """
    from ita_vc.grid.request import GridInputs

    rule, params, request = grid_request(workspace, raw, index=index, engine=engine)
    return GridInputs(grid_candles(workspace, params), rule, params, request)


def read_validation(raw: Mapping[str, Any], index: Any = None) -> ValidationParams | None:
    """params.yaml's ``validation:`` section (None: absent or null).

    Raises:
        DataValidationError: every problem of the section, with its line.
    """
    return parse_validation(raw.get("validation"), index=index)


def stage_grid(
    root: Path | None = None,
    engine: str | None = None,
    search: Mapping[str, Any] | None = None,
    features_from: Path | None = None,
) -> dict[str, Any]:
    """Run the grid stage (``params.yaml: grid:``) into ``results/grid/``; returns the summary.
    ``search`` holds more keyword arguments of :func:`~ita_vc.grid.run_grid` (a job's
    progress, stop, checkpoint and workers: :mod:`ita_vc.jobs`), and ``features_from`` the
    workspace whose feature cache to use (a job's worktree uses its workspace's: entries are
    keyed by content); they change no output.

    Raises:
        KeyboardInterrupt: the search was interrupted. Nothing is written then: a stage's outs
            are what DVC records as the stage's result, and a partial top-K is not that result
            (``ita-vc grid run`` is the command that keeps partial results and resumes).
    """
    workspace = Workspace.discover(root)
    params_doc = load_params_document(workspace.root)
    validation = read_validation(params_doc.data, params_doc.index)  # checked before any work
    if engine == "1.0":  # engine 1.0's grid outputs stay 0.3's, byte for byte
        validation = None
    prepared, rule, params, request = grid_inputs(
        workspace, params_doc.data, index=params_doc.index, engine=engine
    )
    store = PersistentStore(workspace)
    returns = None
    if validation is not None and validation.overfitting is not None:
        returns = stage_a_returns(
            prepared, rule, params, request, max_variants=validation.overfitting.max_variants
        )
    features = cache_settings(features_from or workspace.root)  # docs/cache.md
    with activate(features):
        outcome = run_grid(prepared, rule, params, request, keep_partial=False, **(search or {}))
    sink = StoreSink(store, "results", "grid")
    write_grid(outcome, sink, timings=False, engine=params.engine)
    if returns is not None:
        sink.table(variant_returns_frame(returns), VARIANT_RETURNS)
    return outcome.summary


VARIANT_RETURNS = "variant_returns.parquet"


def validation_setup(
    workspace: Any,
    raw: dict[str, Any],
    *,
    index: Mapping[str, tuple[int, str | None]] | None = None,
    engine: str | None = None,
) -> tuple[GridSetup, ValidationParams]:
    """The rule, run params, grid request and validation settings of a workspace's params,
    every problem of all of them refused at once, before any candles are read. A params file
    without a ``validation:`` section validates with every test skipped.

    Raises:
        DataValidationError: bad params, grid or validation section.
    """
    errors = []
    validation = None
    try:
        validation = read_validation(raw, index)
    except DataValidationError as exc:
        errors.append(str(exc))
    setup = None
    try:
        setup = grid_request(workspace, raw, index=index, engine=engine)
    except DataValidationError as exc:
        errors.append(str(exc))
    if errors or setup is None:
        raise DataValidationError("\n".join(errors))
    return setup, validation or parse_validation({})  # type: ignore[return-value]


def _stage_grid_evidence(
    store: Any, prepared: Any, setup: GridSetup, validation: ValidationParams
) -> GridEvidence | None:
    """The grid stage's outputs the overfitting statistics read, checked to be of this grid
    and these candles, and whole.

    Raises:
        DataValidationError: missing, stale or damaged grid outputs (what to run is said).
    """
    if validation.overfitting is None:
        return None
    from ita_vc.grid.search import _context, _request_hash

    folder = _results(store, "grid")
    rerun = (
        "run the grid stage (`dvc repro grid`; if DVC says it did not change, its params lack "
        "`validation.overfitting`: `ita-vc init --upgrade --yes` adds it) or `ita-vc validate`"
    )
    try:
        summary = store.load_json(f"{folder}/summary.json")
        topk = store.load_dataframe(f"{folder}/topk.parquet")
    except (ItaVcError, OSError) as exc:
        raise DataValidationError(f"{folder}: no grid outputs ({exc}): {rerun}") from exc
    rule, params, request = setup
    key = _context(prepared, rule, params, request).key
    if not isinstance(summary, dict) or (
        summary.get("grid_request_hash") != _request_hash(request)
        or summary.get("engine_params_hash") != key
    ):
        raise DataValidationError(
            f"{folder} is the result of another grid, data or params than params.yaml's: {rerun}"
        )
    try:
        frame = store.load_dataframe(f"{folder}/{VARIANT_RETURNS}")
    except (ItaVcError, OSError) as exc:
        raise DataValidationError(
            f"{folder}/{VARIANT_RETURNS} is missing or unreadable (the grid ran without "
            f"validation.overfitting?): {rerun}"
        ) from exc
    return GridEvidence(*_best_row(topk, folder, rerun), _returns_of(frame, request, folder, rerun))


def _best_row(topk: Any, folder: str, rerun: str) -> tuple[str, dict[str, Any]]:
    """The top-K's rank-1 variant key and its params (checked)."""
    import json

    from ita_vc.grid.request import variant_from_dict

    damaged = DataValidationError(f"{folder}/topk.parquet is damaged or empty: {rerun}")
    if len(topk) == 0 or not {"variant_key", "params_json"} <= set(topk.columns):
        raise damaged
    best = topk.iloc[0]
    try:
        row = json.loads(best["params_json"])
        variant_from_dict(row)
    except (TypeError, ValueError, KeyError) as exc:
        raise damaged from exc
    if not isinstance(row, dict):
        raise damaged
    return str(best["variant_key"]), row


def _returns_of(frame: Any, request: Any, folder: str, rerun: str) -> Any:
    """The daily-returns matrix of the file, checked against the grid's Stage A variants."""
    from ita_vc.grid.returns import VariantReturns

    keys = [str(c) for c in frame.columns[1:]]
    expected = sorted(v.key for v in request.base_variants())
    if len(frame.columns) < 1 or frame.columns[0] != "ts_utc" or keys != expected:
        raise DataValidationError(
            f"{folder}/{VARIANT_RETURNS} does not hold this grid's Stage A variants "
            f"({len(keys):,} columns, {len(expected):,} variants): {rerun}"
        )
    matrix = np.ascontiguousarray(frame[keys].to_numpy(dtype="float64"))  # as computed
    if not np.isfinite(matrix).all():
        raise DataValidationError(
            f"{folder}/{VARIANT_RETURNS} holds non-finite returns (a damaged file): {rerun}"
        )
    return VariantReturns(keys, frame["ts_utc"].to_numpy(dtype="int64"), matrix)


def stage_validate(root: Path | None = None, engine: str | None = None) -> dict[str, Any]:
    """Run the validate stage into ``results/validation/``; returns the summary."""
    if engine == "1.0":
        raise ConfigError(
            "the validate stage needs engine 1.1 (the trades' equity_before, the grid's daily "
            "returns); dvc.yaml pins 1.0: `ita-vc init --upgrade --yes` moves the pipeline "
            "(docs/backtest-model.md says what changes)"
        )
    workspace = Workspace.discover(root)
    params_doc = load_params_document(workspace.root)
    setup, validation = validation_setup(
        workspace, params_doc.data, index=params_doc.index, engine=engine
    )
    store = PersistentStore(workspace)
    prepared = store.load_dataframe(_results(store, PREPARED, "candles.parquet"))
    grid = _stage_grid_evidence(store, prepared, setup, validation)
    rule, params, request = setup
    outcome = run_validation(
        prepared,
        rule,
        params,
        validation,
        RuleRegistry(workspace).catalog,
        request=request,
        grid=grid,
    )
    recorded = store.load_json(_results(store, BACKTEST, "summary.json"))
    if recorded.get("config_hash") != outcome.summary["config_hash"]:
        raise DataValidationError(
            f"{_results(store, BACKTEST, 'summary.json')} records config "
            f"{recorded.get('config_hash')}, params.yaml now gives "
            f"{outcome.summary['config_hash']}: run the backtest stage first (`dvc repro`)"
        )
    write_validation(outcome, StoreSink(store, "results", VALIDATION))
    summary: dict[str, Any] = outcome.summary
    return summary


def validate_workspace(
    root: Path | None = None,
    *,
    params_path: Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ValidationOutcome:
    """The validation of a workspace's params (``ita-vc validate``, without DVC): params and
    every setting checked, then the candles prepared as the ``prepare`` stage does, what the
    data allows checked (before any test or grid runs), the grid of the overfitting statistics
    run here (only then), then the suite. Nothing is written (see
    :func:`~ita_vc.pipeline.outputs.write_validation`).

    Raises:
        DataValidationError: bad params or settings, no candles, or inputs a test refuses.
    """
    workspace = Workspace.discover(root)
    params_doc = read_grid_params(workspace, params_path)
    (rule, params, request), validation = validation_setup(
        workspace, params_doc.data, index=params_doc.index
    )
    prepared = grid_candles(workspace, params)
    grid: Callable[[], GridEvidence] | None = None
    if validation.overfitting is not None:
        max_variants = validation.overfitting.max_variants

        def grid_of() -> GridEvidence:  # run_validation calls it once the data passed its checks
            if progress is not None:
                progress("grid (overfitting)", 0, 1)
            return grid_evidence(
                prepared,
                rule,
                params,
                request,
                max_variants=max_variants,
                workers=workers,
                scheduler=scheduler,
            )

        grid = grid_of

    return run_validation(
        prepared,
        rule,
        params,
        validation,
        RuleRegistry(workspace).catalog,
        request=request,
        grid=grid,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
    )
