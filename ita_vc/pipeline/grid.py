"""The staged grid runner: batches, a process pool or Dask, checkpoints, outputs.

Stage A evaluates every base variant (no SL/TP) and keeps the ``preselect`` best by Total
Return; Stage B evaluates the shortlist x the SL/TP axes (pruning as asked) into a top-K heap;
the top-K are then re-run as single backtests for their full metrics (identical by
construction: the same prepared candles, rule and engine), trades kept for the best
``top_trades_n``. Variants are generated lazily, batch by batch; only the shortlist and the
top-K are held, so memory does not grow with the number of variants. After each batch a
checkpoint is written atomically; ``resume`` continues from it and ends with the same result.
Ctrl-C or ``max_seconds`` stop cleanly and write the best-so-far top-K marked ``partial``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from ita_vc.errors import DataValidationError, ItaVcError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from ita_vc.backtest.grid import GridRequest, Variant, VariantResult
    from ita_vc.backtest.params import RunParams
    from ita_vc.rules.model import Rule

__all__ = ["GridOutcome", "run_grid", "variant_from_dict", "variant_to_dict"]

Progress = Callable[[str, int, int], None]


CHECKPOINT_EVERY_S = 2.0
"""Checkpoints are written after a completed batch at most this often (seconds; environment
``ITA_VC_GRID_CHECKPOINT_SECONDS`` overrides it, 0 = after every batch), and always on stop."""


def _checkpoint_every() -> float:
    raw = os.environ.get("ITA_VC_GRID_CHECKPOINT_SECONDS")
    try:
        return CHECKPOINT_EVERY_S if raw is None else max(0.0, float(raw))
    except ValueError:
        raise DataValidationError(f"ITA_VC_GRID_CHECKPOINT_SECONDS: not a number: {raw!r}"
                                  ) from None


@dataclass(frozen=True)
class _Checkpoint:
    """The search state after the last completed batch."""

    shortlist: list[Any]
    topk: list[Any]
    state: dict[str, Any]


@dataclass
class GridOutcome:
    """The result of a grid run."""

    topk: pd.DataFrame
    trades: pd.DataFrame
    summary: dict[str, Any]
    partial: bool
    files: list[str] = field(default_factory=list)


def variant_to_dict(variant: Variant) -> dict[str, Any]:
    """JSON form of a variant (checkpoints, topk rows)."""
    return {"indicators": [[n, [[k, v] for k, v in p]] for n, p in variant.indicators],
            "sl_pct": variant.sl_pct, "tp_pct": variant.tp_pct}


def variant_from_dict(data: dict[str, Any]) -> Variant:
    """Inverse of :func:`variant_to_dict`."""
    from ita_vc.backtest.grid import Variant

    return Variant(tuple((n, tuple((k, v) for k, v in p)) for n, p in data["indicators"]),
                   data.get("sl_pct"), data.get("tp_pct"))


def _batches(items: Iterable[Variant], size: int) -> Iterator[list[Variant]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class _Executor:
    """Runs batches in order: in-process, in a local process pool, or on a Dask cluster."""

    def __init__(self, payload: tuple[Any, ...], workers: int | None,
                 scheduler: str | None) -> None:  # a Dask scheduler address
        from ita_vc.backtest import grid

        self.payload = payload
        self.pool: ProcessPoolExecutor | None = None
        self.client: Any = None
        self.workers = workers or os.cpu_count() or 1
        if scheduler:
            try:
                from distributed import Client
            except ImportError as exc:
                raise ItaVcError("--scheduler needs dask.distributed (pip install "
                                 "'dask[distributed]')") from exc
            self.client = Client(scheduler)  # type: ignore[no-untyped-call]
            self.remote_payload = self.client.scatter(payload, broadcast=True)
        elif self.workers > 1:
            self.pool = ProcessPoolExecutor(self.workers, initializer=grid.init_pool_worker,
                                            initargs=payload)
        else:
            grid.init_worker(*payload)

    def map(self, batches: Iterable[list[Variant]]) -> Iterator[list[VariantResult]]:
        from ita_vc.backtest import grid

        if self.client is not None:
            window = max(2, 2 * len(self.client.scheduler_info().get("workers", {})))
            pending: list[Any] = []
            for batch in batches:
                pending.append(self.client.submit(grid.evaluate_batch, batch,
                                                  self.remote_payload, pure=False))
                if len(pending) >= window:
                    yield pending.pop(0).result()
            for future in pending:
                yield future.result()
        elif self.pool is not None:
            pending_local: list[Any] = []
            for batch in batches:
                pending_local.append(self.pool.submit(grid.evaluate_batch, batch))
                if len(pending_local) >= 2 * self.workers:
                    yield pending_local.pop(0).result()
            for future in pending_local:
                yield future.result()
        else:
            for batch in batches:
                yield grid.evaluate_batch(batch)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.client is not None:
            self.client.close()


def _guards(request: GridRequest, bars: int) -> tuple[int, int, bool]:
    """Stage A and Stage B variant counts (arithmetic: nothing is generated), refused above
    ``max_variants`` or ``max_compute_bytes``."""
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
    return base, stage_b, exact


def _prune(result: VariantResult, prune: dict[str, Any]) -> bool:
    floor = prune.get("max_drawdown_floor")
    if floor is not None and result.max_drawdown < float(floor):
        return True
    low, high = prune.get("min_trades"), prune.get("max_trades")
    return bool((low is not None and result.trades < low) or
                (high is not None and result.trades > high))


def run_grid(  # noqa: PLR0912, PLR0915 - the stages, in order
    prepared: pd.DataFrame, rule: Rule, params: RunParams, request: GridRequest, *,
    workers: int | None = None, scheduler: str | None = None, resume: bool = False,
    max_seconds: float | None = None, checkpoint: Path | None = None,
    progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
    keep_partial: bool = True,
) -> GridOutcome:
    """Run a grid over prepared candles (a ``warmup`` column; see the module docstring).

    The search stops early, keeping the best so far (``partial``), after ``max_seconds``, when
    ``should_stop()`` turns true (checked after every batch: how the CLI turns a Ctrl-C into a
    clean stop), or on a ``KeyboardInterrupt``. With ``keep_partial=False`` an interrupted search
    raises ``KeyboardInterrupt`` (after saving the checkpoint) instead of building a partial top-K.

    Raises:
        DataValidationError: a guard refused the request, or a bad resume checkpoint.
        KeyboardInterrupt: interrupted, with ``keep_partial=False``.
    """
    import pandas as pd

    from ita_vc.backtest.grid import check_rule_indicators, grid_arrays, merge_top
    from ita_vc.backtest.report import metrics_table_md
    from ita_vc.backtest.run import ENGINE_VERSION, run_backtest
    from ita_vc.utils.atomic import atomic_write_bytes
    from ita_vc.utils.hashing import hash_canonical
    from ita_vc.utils.tablehash import hash_dataframe

    check_rule_indicators([n for n, _params in request.axes], rule)
    high, low, close, n_warm, ts = grid_arrays(prepared)
    bars = len(close) - n_warm
    if bars <= 0:
        raise DataValidationError("the range holds no bars: nothing to sweep")
    base_count, stage_b_max, exact_count = _guards(request, bars)
    settings = {
        "direction": request.direction or rule.direction,
        "sizing": request.sizing or rule.sizing, "fee_rate": params.backtest.fee_rate,
        "slip": params.backtest.slip, "init_cash": params.backtest.init_cash,
    }
    data_hash = hash_dataframe(prepared[["ts_utc", "open", "high", "low", "close", "volume"]])
    request_hash = hash_canonical(request.to_dict())
    engine_hash = hash_canonical({"engine_version": ENGINE_VERSION, "settings": settings,
                                  "data_hash": data_hash, "params": params.to_dict()})
    started = time.perf_counter()
    state: dict[str, Any] = {"stage": "A", "next_batch": 0, "shortlist": [], "topk": [],
                             "evaluated_a": 0, "evaluated_b": 0, "pruned": 0}
    if resume and checkpoint is not None and checkpoint.exists():
        from ita_vc.pipeline.grid_checkpoint import load_checkpoint

        state = load_checkpoint(checkpoint, request, request_hash, engine_hash)

    def as_items(results: list[VariantResult]) -> list[dict[str, Any]]:
        return [{"key": r.key, "total_return": r.total_return, "max_drawdown": r.max_drawdown,
                 "trades": r.trades, "sharpe": r.sharpe, "variant": variant_to_dict(r.variant)}
                for r in results]

    # The search state is replaced, never mutated, and only by one assignment per batch: a
    # Ctrl-C landing anywhere leaves `ck` consistent (the last completed batch).
    ck = _Checkpoint(list(state["shortlist"]), list(state["topk"]),
                     {k: v for k, v in state.items() if k not in ("shortlist", "topk")})
    stop_reason = "complete"
    last_saved = [time.perf_counter()]
    every = _checkpoint_every()

    def save_checkpoint(point: _Checkpoint, *, force: bool = False) -> None:
        now = time.perf_counter()
        if checkpoint is None or (not force and now - last_saved[0] < every):
            return
        doc = {"request_hash": request_hash, "engine_params_hash": engine_hash,
               "state": {**point.state, "shortlist": as_items(point.shortlist),
                         "topk": as_items(point.topk)}}
        atomic_write_bytes(checkpoint, json.dumps(doc, sort_keys=True).encode("utf-8"))
        last_saved[0] = now

    executor = _Executor((high, low, close, n_warm, settings, ts), workers, scheduler)

    def stop_now() -> str | None:
        if should_stop is not None and should_stop():
            return "interrupted"
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            return "max_seconds"
        return None

    def fold_a(point: _Checkpoint, results: list[Any], next_batch: int) -> _Checkpoint:
        return _Checkpoint(merge_top(point.shortlist, results, request.preselect), point.topk,
                           {**point.state, "next_batch": next_batch,
                            "evaluated_a": point.state["evaluated_a"] + len(results)})

    def fold_b(point: _Checkpoint, results: list[Any], next_batch: int) -> _Checkpoint:
        kept = [r for r in results if not _prune(r, request.prune)]
        return _Checkpoint(point.shortlist, merge_top(point.topk, kept, request.top_k),
                           {**point.state, "next_batch": next_batch,
                            "evaluated_b": point.state["evaluated_b"] + len(results),
                            "pruned": point.state["pruned"] + len(results) - len(kept)})

    def run_stage(variants: Iterable[Variant], fold: Callable[..., _Checkpoint], stage: str,
                  total: int) -> str | None:
        """Evaluate the stage's batches from the checkpoint on; why it stopped early, if so."""
        nonlocal ck
        skip = ck.state["next_batch"]
        batches = islice(_batches(variants, request.batch_size), skip, None)
        for index, results in enumerate(executor.map(batches), start=skip):
            ck = fold(ck, results, index + 1)
            save_checkpoint(ck)
            if progress is not None:
                progress(stage, ck.state[f"evaluated_{stage.lower()}"], total)
            reason = stop_now()
            if reason is not None:
                return reason
        return None

    plain_in_b = None in request.sl_values and None in request.tp_values
    try:
        if ck.state["stage"] == "A":
            stopped = run_stage(request.base_variants(), fold_a, "A", base_count)
            if stopped is not None:
                stop_reason = stopped
            else:
                # Stage A already computed every shortlisted variant without SL/TP: when the
                # axes hold (None, None), those results enter Stage B as they are.
                ck = fold_b(_Checkpoint(ck.shortlist, ck.topk, {**ck.state, "stage": "B"}),
                            ck.shortlist if plain_in_b else [], 0)
        if ck.state["stage"] == "B" and stop_reason == "complete":
            expanded = (v for r in sorted(ck.shortlist, key=lambda r: r.key)
                        for v in request.expand(r.variant.base)
                        if not (plain_in_b and v.sl_pct is None and v.tp_pct is None))
            total_b = len(ck.shortlist) * len(request.sl_values) * len(request.tp_values)
            stopped = run_stage(expanded, fold_b, "B", total_b)
            if stopped is not None:
                stop_reason = stopped
            else:
                ck = _Checkpoint(ck.shortlist, ck.topk, {**ck.state, "stage": "done"})
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    finally:
        executor.close()
    save_checkpoint(ck, force=True)
    if stop_reason == "interrupted" and not keep_partial:
        raise KeyboardInterrupt
    partial = stop_reason != "complete"
    shortlist, topk, state = ck.shortlist, ck.topk, ck.state
    search_time = time.perf_counter() - started
    final = topk if state["stage"] == "done" or topk else shortlist[: request.top_k]
    base_rule = {"setup_id": rule.setup_id, "version": str(rule.version),
                 **dict(rule.params),
                 "direction": settings["direction"], "sizing": settings["sizing"]}
    # what `grid promote` needs beyond the variant: the execution the request overrode (only
    # then, so a grid without overrides writes the rows it always did)
    overrides = {k: v for k, v in (("direction", request.direction), ("sizing", request.sizing))
                 if v is not None}
    rows, trade_frames = [], []
    for rank, result in enumerate(final, start=1):
        single = run_backtest(prepared, result.variant.rule(base_rule), params)
        m = single.metrics
        if (m["Total Return [%]"], m["Max. Drawdown [%]"], m["Num. Trades"], m["Sharpe Ratio"]) \
                != (result.total_return, result.max_drawdown, result.trades, result.sharpe):
            raise ItaVcError(f"internal: the grid and a single run disagree on {result.key}")
        row = {"rank": rank, "variant_key": result.key, **single.metrics,
               "params_json": json.dumps({**variant_to_dict(result.variant), **overrides},
                                         sort_keys=True),
               "report_table_md": metrics_table_md(single.metrics), "partial": partial}
        rows.append(row)
        if rank <= request.top_trades_n:
            trade_frames.append(single.trades.assign(variant_key=result.key, rank=rank))
    topk_frame = pd.DataFrame(rows)
    trades = pd.concat(trade_frames, ignore_index=True) if trade_frames else pd.DataFrame()
    summary = {
        "grid_request_hash": request_hash, "engine_params_hash": engine_hash,
        "setup_id": rule.setup_id, "rule_version": rule.version.tag,
        "params_hash": rule.params_hash, "data_hash": data_hash, "bars": bars,
        "partial": partial, "stop_reason": stop_reason, "stage_reached": state["stage"],
        # an inexact (upper-bound) count is replaced by the true one once Stage A is done
        "counts": {"stage_a_variants": base_count if exact_count or state["stage"] == "A"
                   else state["evaluated_a"], "stage_a_evaluated": state["evaluated_a"],
                   "stage_b_max": stage_b_max, "stage_b_evaluated": state["evaluated_b"],
                   "pruned": state["pruned"], "top_k": len(rows)},
        "timings": {"search_s": round(search_time, 3),
                    "total_s": round(time.perf_counter() - started, 3)},
    }
    if request.default_axes:  # present only then: a grid that names its axes records as before
        from ita_vc.backtest.grid_axes import DEFAULT_AXES_NOTE

        summary["default_axes"] = DEFAULT_AXES_NOTE
    return GridOutcome(topk_frame, trades, summary, partial)
