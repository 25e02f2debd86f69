"""``ita-vc grid ...``: parameter sweeps of a rule."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Grid backtests: sweep a rule's parameters and SL/TP.", no_args_is_help=True)


@app.command("run")
def run_command(
    params: Annotated[
        Path | None, typer.Option(help="params file with a grid: section (default: params.yaml).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (default: the grid "
            "folder of the results kind, results/grid, "
            "through the store)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Local processes (default: all cores).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last completed batch.")] = False,
    max_seconds: Annotated[
        float | None, typer.Option(help="Stop after this long; write the best so far (partial).")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for another running `grid "
            "run` (default 0: refuse at once, exit 10)."
        ),
    ] = 0,
) -> None:
    """Run the staged grid (Stage A shortlist, Stage B SL/TP) and write the top-K.

    The request is checked and its size guarded before any candles are read. Only one `grid
    run` at a time per workspace (the grid lock, .ita/grid.lock): it covers the search, the
    checkpoint and the outputs, and no other command.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ita_vc.cli.console import out as console
    from ita_vc.cli.interrupt import graceful_sigint
    from ita_vc.features import activate, cache_settings
    from ita_vc.grid import default_grid_folder, run_grid
    from ita_vc.pipeline.outputs import DirSink, StoreSink, write_grid
    from ita_vc.pipeline.stages import grid_candles, grid_request, read_grid_params
    from ita_vc.snapshot.records import recorded_run, rule_ref
    from ita_vc.store.artifacts import PersistentStore
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    params_doc = read_grid_params(workspace, params)
    # refusals before any work
    rule, run_params, request = grid_request(workspace, params_doc.data, index=params_doc.index)
    checkpoint = workspace.contained(workspace.state_dir / "grid" / "checkpoint.json")
    data = run_params.data
    with (
        workspace.lock(name="grid", timeout=wait, purpose="ita-vc grid run"),
        recorded_run(
            workspace,
            "grid",
            rule=rule_ref(rule.setup_id, rule.version.tag),
            symbol=data.symbol,
            timeframe=data.timeframe,
        ) as rec,
    ):
        rec.config(params_doc.data)
        rec.stage("prepare")
        prepared = grid_candles(workspace, run_params)
        with (
            activate(cache_settings(workspace.root)),
            graceful_sigint() as ctrl_c,
            Progress(
                TextColumn("stage {task.fields[stage]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:,.0f} variants/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console(),
            ) as bar,
        ):
            task = bar.add_task("grid", total=None, stage="A", rate=0.0)

            def progress(stage: str, done: int, total: int) -> None:
                rec.progress(f"stage_{stage.lower()}", done, total)
                elapsed = bar.tasks[task].elapsed or 1e-9
                if ctrl_c.is_set():
                    stage += " (Ctrl-C: stopping after this batch; again to abort)"
                bar.update(task, completed=done, total=total, stage=stage, rate=done / elapsed)

            # Ctrl-C stops the search after the running batch: the best so far is written
            outcome = run_grid(
                prepared,
                rule,
                run_params,
                request,
                workers=workers,
                scheduler=scheduler,
                resume=resume,
                max_seconds=max_seconds,
                checkpoint=checkpoint,
                progress=progress,
                should_stop=ctrl_c.is_set,
            )
        rec.stage("write")
        sink = DirSink(out) if out else StoreSink(PersistentStore(workspace), "results", "grid")
        write_grid(outcome, sink, engine=run_params.engine)
        best_row = outcome.topk.iloc[0].to_dict() if len(outcome.topk) else {}
        rec.set(data_hash=outcome.summary.get("data_hash"))
        rec.finish(
            [out or default_grid_folder(workspace)],
            {
                "stop_reason": outcome.summary["stop_reason"],
                **outcome.summary["counts"],
                **{
                    str(k): v
                    for k, v in best_row.items()
                    if str(k) == "variant_key" or "[%]" in str(k)
                },
            },
        )
        if outcome.summary["stop_reason"] == "interrupted":
            rec.cancelled("interrupted (Ctrl-C): the best variants so far were written")
    from ita_vc.backtest.format import format_metric

    where = out or default_grid_folder(workspace).relative_to(workspace.root)
    best = outcome.topk.iloc[0] if len(outcome.topk) else None
    if request.default_axes:
        console().print(
            "axes: params.yaml names none; swept the rule's own indicators at "
            "their values +/- 5 catalog steps",
            markup=False,
        )
    console().print(
        ("PARTIAL: " if outcome.partial else "")
        + f"{len(outcome.topk)} best variant(s) -> {where}"
        + (
            f"; best {best['variant_key']} "
            f"({format_metric('Total Return [%]', best['Total Return [%]'])} %)"
            if best is not None
            else ""
        ),
        markup=False,
    )
    if outcome.summary["stop_reason"] == "interrupted":
        from ita_vc.errors import EXIT_INTERRUPTED

        raise typer.Exit(EXIT_INTERRUPTED)  # the partial top-K is written; --resume continues


@app.command("promote")
def promote_command(
    variant_key: Annotated[str, typer.Argument(help="A variant_key from topk.parquet.")],
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Folder of topk.parquet "
            "(default: the grid folder of the results "
            "kind, results/grid).",
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Kept in lifecycle.yaml.")] = None,
) -> None:
    """Save a grid variant as a new version of its rule (`rule bump` with its indicators,
    targets, direction and sizing), so that its backtest gives the grid row's numbers."""
    from ita_vc.cli.console import out
    from ita_vc.grid import promote_variant
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    rule = promote_variant(workspace, variant_key, folder=source, reason=reason)
    out().print(f"Created {rule.path} ({rule.params_hash}) from {variant_key}", markup=False)
