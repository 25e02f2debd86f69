"""The staged search: Stage A, Stage B, then the top-K as single backtests.

:func:`stage_a` evaluates every base variant (no SL/TP) and keeps the ``preselect`` best by
Total Return; :func:`stage_b` evaluates the shortlist x the SL/TP axes (pruning as asked) into
a top-K; :func:`finalize` re-runs the top-K as single backtests for their full metrics
(identical by construction: the same prepared candles, rule and engine), trades kept for the
best ``top_trades_n``. Variants are generated lazily, batch by batch; only the shortlist and the
top-K are held, so memory does not grow with the number of variants. After each batch a
checkpoint is written atomically; ``resume`` continues from it and ends with the same result.
Ctrl-C or ``max_seconds`` stop cleanly and write the best-so-far top-K marked ``partial``.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from ita_vc.backtest.report import metrics_table_md
from ita_vc.backtest.report_v1 import metrics_table_md as metrics_table_md_v1
from ita_vc.backtest.run import run_backtest
from ita_vc.errors import DataValidationError, ItaVcError
from ita_vc.grid.axes import DEFAULT_AXES_NOTE
from ita_vc.grid.checkpoint import (
    CheckpointWriter,
    SearchState,
    load_checkpoint,
    parse_checkpoint,
)
from ita_vc.grid.evaluate import (
    EngineSettings,
    EvalContext,
    VariantResult,
    evaluation_context,
    merge_top,
)
from ita_vc.grid.executor import Executor
from ita_vc.grid.request import check_rule_indicators, variant_to_dict
from ita_vc.utils.hashing import hash_canonical

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from ita_vc.backtest.params import RunParams
    from ita_vc.grid.request import GridRequest, Variant
    from ita_vc.rules.model import Rule

    Fold = Callable[[SearchState, list[VariantResult], int, GridRequest], SearchState]

__all__ = ["GridOutcome", "Search", "finalize", "run_grid", "stage_a", "stage_b"]


@dataclass
class GridOutcome:
    """The result of a grid run."""

    topk: pd.DataFrame
    trades: pd.DataFrame
    summary: dict[str, Any]
    partial: bool
    files: list[str] = field(default_factory=list)
    evaluated: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The Stage A variants the search held (every one when there are at most ``preselect``,
    else the best ``preselect``), best first: ``variant_key``, ``params_json`` (as in
    ``topk``), Total Return, Max. Drawdown, Sharpe, trades. For the grid report's charts; not
    written as a table."""


class Counts(NamedTuple):
    """Stage A and Stage B variant counts, from the axes (nothing generated)."""

    stage_a: int
    stage_b_max: int
    exact: bool
    """False: ``stage_a`` is an upper bound (several constraints on one indicator)."""


def guards(request: GridRequest, bars: int) -> Counts:
    """The variant counts, refused above ``max_variants`` or ``max_compute_bytes``.

    Raises:
        DataValidationError: naming the count, the limit and its field.
    """
    base, exact = request.count_stage_a()
    stage_b = request.count_stage_b(base)
    total = base + stage_b
    up_to = "" if exact else "up to "
    if total > request.max_variants:
        raise DataValidationError(
            f"params.yaml: grid: the grid has {up_to}{total:,} variants (Stage A {base:,} + "
            f"Stage B {stage_b:,}), more than max_variants = {request.max_variants:,} "
            "(grid.max_variants); narrow the ranges or raise the limit"
        )
    compute = total * bars * 8
    if compute > request.max_compute_bytes:
        raise DataValidationError(
            f"params.yaml: grid: the grid computes {up_to}{compute / 1e9:,.1f} GB of equity "
            f"values ({total:,} variants x {bars:,} bars x 8 bytes), more than "
            "max_compute_bytes = "
            f"{request.max_compute_bytes / 1e9:,.1f} GB (grid.max_compute_bytes)"
        )
    return Counts(base, stage_b, exact)


def _pruned(result: VariantResult, prune: dict[str, Any]) -> bool:
    floor = prune.get("max_drawdown_floor")
    if floor is not None and result.max_drawdown < float(floor):
        return True
    low, high = prune.get("min_trades"), prune.get("max_trades")
    return bool(
        (low is not None and result.trades < low) or (high is not None and result.trades > high)
    )


@dataclass(frozen=True)
class StopRule:
    """When a search stops early: ``should_stop()`` turns true, or ``max_seconds`` passed."""

    started: float
    max_seconds: float | None = None
    should_stop: Callable[[], bool] | None = None

    def reason(self) -> str | None:
        """``interrupted``, ``max_seconds``, or None to go on."""
        if self.should_stop is not None and self.should_stop():
            return "interrupted"
        if self.max_seconds is not None and time.perf_counter() - self.started > self.max_seconds:
            return "max_seconds"
        return None


@dataclass
class Search:
    """One search: its request, where batches run, and its state.

    ``state`` is replaced, never mutated, and by one assignment per batch: a Ctrl-C landing
    anywhere leaves it consistent (the last completed batch), ready to be checkpointed.
    """

    request: GridRequest
    executor: Executor[list[VariantResult]]
    checkpoints: CheckpointWriter
    stop: StopRule
    state: SearchState
    progress: Callable[[str, int, int], None] | None = None

    @property
    def plain_in_b(self) -> bool:
        """Stage B's axes hold (no SL, no TP): Stage A already evaluated those variants."""
        return None in self.request.sl_values and None in self.request.tp_values


def _batches(items: Iterable[Variant], size: int) -> Iterator[list[Variant]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _fold_a(
    state: SearchState, results: list[VariantResult], next_batch: int, request: GridRequest
) -> SearchState:
    return replace(
        state,
        shortlist=merge_top(state.shortlist, results, request.preselect),
        next_batch=next_batch,
        evaluated_a=state.evaluated_a + len(results),
    )


def _fold_b(
    state: SearchState, results: list[VariantResult], next_batch: int, request: GridRequest
) -> SearchState:
    kept = [r for r in results if not _pruned(r, request.prune)]
    return replace(
        state,
        topk=merge_top(state.topk, kept, request.top_k),
        next_batch=next_batch,
        evaluated_b=state.evaluated_b + len(results),
        pruned=state.pruned + len(results) - len(kept),
    )


def _run_stage(
    search: Search,
    variants: Iterable[Variant],
    fold: Fold,
    total: int,
) -> str | None:
    """Evaluate the stage's batches from the state's ``next_batch`` on; why it stopped early,
    if it did."""
    stage = search.state.stage
    skip = search.state.next_batch
    batches = islice(_batches(variants, search.request.batch_size), skip, None)
    for index, results in enumerate(search.executor.map(batches), start=skip):
        search.state = fold(search.state, results, index + 1, search.request)
        search.checkpoints.save(search.state)
        if search.progress is not None:
            done = search.state.evaluated_a if stage == "A" else search.state.evaluated_b
            search.progress(stage, done, total)
        reason = search.stop.reason()
        if reason is not None:
            return reason
    return None


def stage_a(search: Search, total: int) -> str | None:
    """Stage A: every base variant into the shortlist, then on to Stage B; why it stopped
    early, if it did."""
    stopped = _run_stage(search, search.request.base_variants(), _fold_a, total)
    if stopped is not None:
        return stopped
    # Stage A already computed every shortlisted variant without SL/TP: when the axes hold
    # (None, None), those results enter Stage B as they are.
    state = search.state
    search.state = _fold_b(
        replace(state, stage="B"), state.shortlist if search.plain_in_b else [], 0, search.request
    )
    return None


def stage_b(search: Search) -> str | None:
    """Stage B: the shortlist x the SL/TP axes into the top-K; why it stopped early, if it
    did."""
    request, plain = search.request, search.plain_in_b
    shortlist = sorted(search.state.shortlist, key=lambda r: r.key)
    expanded = (
        v
        for r in shortlist
        for v in request.expand(r.variant.base)
        if not (plain and v.sl_pct is None and v.tp_pct is None)
    )
    total = len(shortlist) * len(request.sl_values) * len(request.tp_values)
    stopped = _run_stage(search, expanded, _fold_b, total)
    if stopped is None:
        search.state = replace(search.state, stage="done")
    return stopped


def _search(search: Search, counts: Counts) -> str:
    """Run the stages the state has not finished; why the search ended."""
    try:
        stopped = stage_a(search, counts.stage_a) if search.state.stage == "A" else None
        if stopped is None and search.state.stage == "B":
            stopped = stage_b(search)
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        search.executor.close()
    search.checkpoints.save(search.state, force=True)
    return stopped or "complete"


@dataclass(frozen=True)
class Ending:
    """How a search ended, for :func:`finalize`."""

    state: SearchState
    stop_reason: str
    counts: Counts
    started: float
    search_s: float


def _rows(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    request: GridRequest,
    context: EvalContext,
    final: list[VariantResult],
    partial: bool,
) -> tuple[list[dict[str, Any]], list[pd.DataFrame]]:
    """The top-K rows (single backtests, checked against the grid's numbers) and trades."""
    # a stage pinned to engine 1.0 writes engine 1.0's table text (its runs reproduce)
    table_md = metrics_table_md_v1 if params.engine == "1.0" else metrics_table_md
    base_rule = {
        "setup_id": rule.setup_id,
        "version": str(rule.version),
        **dict(rule.params),
        "direction": context.settings.direction,
        "sizing": context.settings.sizing,
    }
    # what `grid promote` needs beyond the variant: the execution the request overrode (only
    # then, so a grid without overrides writes the rows it always did)
    overrides = {
        k: v
        for k, v in (("direction", request.direction), ("sizing", request.sizing))
        if v is not None
    }
    rows, trade_frames = [], []
    for rank, result in enumerate(final, start=1):
        single = run_backtest(prepared, result.variant.rule(base_rule), params)
        m = single.metrics
        if (m["Total Return [%]"], m["Max. Drawdown [%]"], m["Num. Trades"], m["Sharpe Ratio"]) != (
            result.total_return,
            result.max_drawdown,
            result.trades,
            result.sharpe,
        ):
            raise ItaVcError(f"internal: the grid and a single run disagree on {result.key}")
        rows.append(
            {
                "rank": rank,
                "variant_key": result.key,
                **single.metrics,
                "params_json": json.dumps(
                    {**variant_to_dict(result.variant), **overrides}, sort_keys=True
                ),
                "report_table_md": table_md(single.metrics),
                "partial": partial,
            }
        )
        if rank <= request.top_trades_n:
            trade_frames.append(single.trades.assign(variant_key=result.key, rank=rank))
    return rows, trade_frames


def _evaluated(results: list[VariantResult]) -> pd.DataFrame:
    """The Stage A results as rows (see :attr:`GridOutcome.evaluated`)."""
    return pd.DataFrame(
        [
            {
                "variant_key": r.key,
                "params_json": json.dumps(variant_to_dict(r.variant), sort_keys=True),
                "Total Return [%]": r.total_return,
                "Max. Drawdown [%]": r.max_drawdown,
                "Sharpe Ratio": r.sharpe,
                "Num. Trades": r.trades,
            }
            for r in results
        ],
        columns=[
            "variant_key",
            "params_json",
            "Total Return [%]",
            "Max. Drawdown [%]",
            "Sharpe Ratio",
            "Num. Trades",
        ],
    )


def _summary(
    rule: Rule, request: GridRequest, context: EvalContext, ending: Ending, top_k: int
) -> dict[str, Any]:
    state, counts = ending.state, ending.counts
    summary = {
        "grid_request_hash": _request_hash(request),
        "engine_params_hash": context.key,
        "setup_id": rule.setup_id,
        "rule_version": rule.version.tag,
        "params_hash": rule.params_hash,
        "data_hash": context.data_hash,
        "bars": len(context.arrays.close) - context.arrays.n_warm,
        "partial": ending.stop_reason != "complete",
        "stop_reason": ending.stop_reason,
        "stage_reached": state.stage,
        # an inexact (upper-bound) count is replaced by the true one once Stage A is done
        "counts": {
            "stage_a_variants": counts.stage_a
            if counts.exact or state.stage == "A"
            else state.evaluated_a,
            "stage_a_evaluated": state.evaluated_a,
            "stage_b_max": counts.stage_b_max,
            "stage_b_evaluated": state.evaluated_b,
            "pruned": state.pruned,
            "top_k": top_k,
        },
        "timings": {
            "search_s": round(ending.search_s, 3),
            "total_s": round(time.perf_counter() - ending.started, 3),
        },
    }
    if request.default_axes:  # present only then: a grid that names its axes records as before
        summary["default_axes"] = DEFAULT_AXES_NOTE
    return summary


def finalize(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    request: GridRequest,
    context: EvalContext,
    ending: Ending,
) -> GridOutcome:
    """The outcome: the top-K (or, stopped in Stage A, the best of the shortlist) re-run as
    single backtests, their trades, and the summary.

    Raises:
        ItaVcError: a single run disagrees with the grid's evaluation (a bug).
    """
    state = ending.state
    partial = ending.stop_reason != "complete"
    final = state.topk if state.stage == "done" or state.topk else state.shortlist[: request.top_k]
    rows, trade_frames = _rows(prepared, rule, params, request, context, final, partial)
    trades = pd.concat(trade_frames, ignore_index=True) if trade_frames else pd.DataFrame()
    return GridOutcome(
        pd.DataFrame(rows),
        trades,
        _summary(rule, request, context, ending, len(rows)),
        partial,
        evaluated=_evaluated(state.shortlist),
    )


def _request_hash(request: GridRequest) -> str:
    return hash_canonical(request.to_dict())


def _context(
    prepared: pd.DataFrame, rule: Rule, params: RunParams, request: GridRequest
) -> EvalContext:
    """The evaluation context (refused when the range holds no bars to trade)."""
    settings = EngineSettings(
        direction=request.direction or rule.direction,
        sizing=request.sizing or rule.sizing,
        fee_rate=params.backtest.fee_rate,
        slip=params.backtest.slip,
        init_cash=params.backtest.init_cash,
    )
    context = evaluation_context(prepared, settings, params)
    if len(context.arrays.close) - context.arrays.n_warm <= 0:
        raise DataValidationError("the range holds no bars: nothing to sweep")
    return context


def run_grid(
    prepared: pd.DataFrame,
    rule: Rule,
    params: RunParams,
    request: GridRequest,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    max_seconds: float | None = None,
    checkpoint: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_partial: bool = True,
    saved_checkpoint: dict[str, Any] | None = None,
    save_state: Callable[[bytes, SearchState], None] | None = None,
) -> GridOutcome:
    """Run a grid over prepared candles (a ``warmup`` column; see the module docstring).

    The search stops early, keeping the best so far (``partial``), after ``max_seconds``, when
    ``should_stop()`` turns true (checked after every batch: how the CLI turns a Ctrl-C into a
    clean stop), or on a ``KeyboardInterrupt``. With ``keep_partial=False`` an interrupted search
    raises ``KeyboardInterrupt`` (after saving the checkpoint) instead of building a partial top-K.
    A job (:mod:`ita_vc.jobs`) keeps its checkpoint in the job store: it starts from
    ``saved_checkpoint`` (a checkpoint document; one of another request or engine setting, or
    damaged, is ignored: the search starts over, with the same result) and gets each checkpoint
    through ``save_state(document, state)``.

    Raises:
        DataValidationError: a guard refused the request, or a bad resume checkpoint.
        KeyboardInterrupt: interrupted, with ``keep_partial=False``.
    """
    check_rule_indicators([n for n, _params in request.axes], rule)
    context = _context(prepared, rule, params, request)
    counts = guards(request, len(context.arrays.close) - context.arrays.n_warm)
    started = time.perf_counter()
    request_hash = _request_hash(request)
    state = SearchState()
    if saved_checkpoint is not None:
        with contextlib.suppress(DataValidationError):
            state = parse_checkpoint(
                saved_checkpoint, "the job's checkpoint", request, request_hash, context.key
            )
    if resume and checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, request, request_hash, context.key)
    writer = CheckpointWriter(checkpoint, request_hash, context.key, save_state)
    search = Search(
        request,
        Executor(context, workers, scheduler),
        writer,
        StopRule(started, max_seconds, should_stop),
        state,
        progress,
    )
    stop_reason = _search(search, counts)
    if stop_reason == "interrupted" and not keep_partial:
        raise KeyboardInterrupt
    ending = Ending(search.state, stop_reason, counts, started, time.perf_counter() - started)
    return finalize(prepared, rule, params, request, context, ending)
