"""``ita-vc validate``: the validation suite (docs/validation.md) without DVC."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace


def validate_command(
    params: Annotated[
        Path | None,
        typer.Option(help="params file with a validation: section (default: params.yaml)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (default: the validation folder of the results kind, "
            "results/validation, through the store)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Local processes for permutations and grids (default: all)."),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for another running `validate` (default 0: refuse at once, "
            "exit 10)."
        ),
    ] = 0,
) -> None:
    """Is the edge real? Run params.yaml's `validation:` tests on the rule's backtest.

    The same core as the dvc.yaml `validate` stage: the permutation test, the block bootstrap,
    Monte Carlo over trades, walk-forward and the grid's overfitting statistics (PBO, DSR) -
    each only when its section is set. The candles are prepared as the `prepare` stage does
    and, for the overfitting statistics, the grid of params.yaml runs here (with its Stage A
    daily returns). Everything is checked before any work (exit 11 on bad input). Same inputs
    and seed: the same bytes.
    """
    import math

    if not math.isfinite(wait) or wait < 0:
        raise typer.BadParameter(f"--wait: {wait}: must be a finite number >= 0")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ita_vc.cli.console import out as console
    from ita_vc.pipeline.outputs import DirSink, StoreSink, write_validation
    from ita_vc.pipeline.stages import read_grid_params, validate_workspace
    from ita_vc.snapshot.records import record_validation, recorded_run
    from ita_vc.store.artifacts import PersistentStore
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    results = Path(workspace.config.store.kinds["results"], "validation")
    if out is not None:
        _check_out(workspace, out)
    else:  # a symlinked results/validation leading out is refused now, not after the work
        workspace.contained(results / "validation_summary.json")
    sink = DirSink(out) if out else None  # checked before any work
    with (
        workspace.lock(name="validate", timeout=wait, purpose="ita-vc validate"),
        recorded_run(workspace, "validate") as rec,
        Progress(
            TextColumn("{task.fields[test]}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console(),
        ) as bar,
    ):
        task = bar.add_task("validate", total=None, test="checking")
        rec.stage("preflight")
        rec.config(read_grid_params(workspace, params).data)

        def progress(test: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, test=test)
            rec.progress(test, done, total)

        outcome = validate_workspace(
            workspace.root,
            params_path=params,
            workers=workers,
            scheduler=scheduler,
            progress=progress,
        )
        if sink is not None:
            files = write_validation(outcome, sink)
        else:  # results/ is also `ita-vc run`'s: written under the workspace lock
            with workspace.lock(timeout=wait, purpose="ita-vc validate (writing results)"):
                store = PersistentStore(workspace)
                files = write_validation(outcome, StoreSink(store, "results", "validation"))
        record_validation(rec, outcome.summary, [out or workspace.path(str(results))])
    where = out or results
    _print_summary(outcome.summary)
    console().print(
        f"{len(files)} file(s) -> {where} (report.md). Outside DVC: `ita-vc run --stage "
        "validate` records a validation with its run.",
        markup=False,
    )


def _check_out(workspace: Workspace, out: Path) -> None:
    """``--out`` may not be inside what the workspace versions by hand (data/, .git, .dvc).

    Raises:
        UsageError: naming the folder.
    """
    from ita_vc.errors import UsageError

    root = workspace.root.resolve()
    target = out.resolve()
    if not target.is_relative_to(root):
        return
    rel = target.relative_to(root).as_posix()
    for folder in (workspace.config.paths.data_root, ".git", ".dvc"):
        if rel == folder or rel.startswith(folder.rstrip("/") + "/"):
            raise UsageError(
                f"--out {out}: inside {folder}/, which the workspace versions; write the "
                "validation elsewhere (default: results/validation)"
            )


def _print_summary(summary: dict[str, object]) -> None:
    from ita_vc.cli.console import out as console
    from ita_vc.validation.verdict import verdict_lines

    for line in verdict_lines(summary):
        console().print(line, markup=False)
