"""``ita-vc run``, ``ita-vc runs ...``, ``ita-vc snapshot verify``, ``ita-vc reproduce``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

runs_app = typer.Typer(help="List, show, compare and pin recorded runs.", no_args_is_help=True)
snapshot_app = typer.Typer(help="Check run snapshots.", no_args_is_help=True)


def _workspace() -> Workspace:
    from ita_vc.workspace import Workspace

    return Workspace.discover()


def _value(value: object) -> str:
    from ita_vc.backtest.report import format_value

    if isinstance(value, dict | list):
        return json.dumps(value)
    return format_value(value)


def run_command(
    setup: Annotated[str | None, typer.Option("--setup", help="Rule setup id.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Rule version vX.Y.")] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", "-S", help="key.path=value in params.yaml (as dvc exp run -S)."),
    ] = None,
    stage: Annotated[
        list[str] | None,
        typer.Option(
            "--stage",
            help="dvc.yaml stage to reproduce with its upstream (repeatable; default: "
            "report, i.e. prepare -> backtest -> report; the grid runs only when named).",
        ),
    ] = None,
    mode: Annotated[str, typer.Option(help="backtest, live or train.")] = "backtest",
    note: Annotated[str | None, typer.Option(help="A note kept in the snapshot.")] = None,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            "--allow-dirty", help="Run with uncommitted changes (recorded in the snapshot)."
        ),
    ] = False,
    no_commit: Annotated[
        bool, typer.Option("--no-commit", help="Stage params.yaml, dvc.lock and the snapshot only.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Record a new run even if an identical run is recorded.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
    ] = 0,
) -> None:
    """Run the pipeline (dvc repro), snapshot its provenance, commit the run."""
    from ita_vc.cli.console import err, out
    from ita_vc.errors import DataValidationError
    from ita_vc.snapshot.runner import run_pipeline
    from ita_vc.yaml_rewrite import YamlEditError, parse_set_value

    overrides = []
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise DataValidationError(f"-S needs key.path=value, got {item!r}")
        try:
            if key.strip() == "rule.version":  # text, not YAML: 1.10 must not become 1.1
                overrides.append((key.strip(), raw.strip().strip("'\"")))
            else:
                overrides.append((key.strip(), parse_set_value(raw)))
        except YamlEditError as exc:
            raise DataValidationError(f"-S {key.strip()}: {exc}") from exc
    console = out()
    report = run_pipeline(
        _workspace(),
        setup_id=setup,
        version=version,
        overrides=overrides,
        mode=mode,
        note=note,
        allow_dirty=allow_dirty,
        commit=not no_commit,
        wait=wait,
        stages=stage,
        force=force,
        progress=lambda line: console.print(f"  {line}", markup=False, highlight=False),
    )
    for warning in report.warnings:
        err().print(f"warning: {warning}", markup=False)
    if report.already:
        console.print(
            f"already recorded as {report.run_id} ({report.snapshot_path}): same "
            f"stages ({' -> '.join(report.stages)}), inputs and mode; nothing run "
            "(--force records a new run)",
            markup=False,
        )
        return
    s = report.snapshot
    m = s["metrics"]
    console.print(
        f"run {report.run_id}: {s['setup_id']} {s['rule_version']} on {s['market']} "
        f"{s['symbol']} {s['timeframe']}" + (" [dirty]" if s["git_dirty"] else ""),
        markup=False,
    )
    for key in ("Total Return [%]", "Max. Drawdown [%]", "Sharpe Ratio", "Num. Trades"):
        console.print(f"  {key:<20} {_value(m.get(key))}", markup=False)
    console.print(
        f"snapshot {report.snapshot_path}"
        + (f", committed {report.committed[:10]}" if report.committed else ""),
        markup=False,
    )


@runs_app.command("list")
def list_command(
    setup: Annotated[str | None, typer.Option("--setup", help="Only this setup.")] = None,
    sort: Annotated[str | None, typer.Option(help="Sort by this metric, descending.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recorded runs with their key metrics (newest first)."""
    from rich.table import Table

    from ita_vc.cli.console import out
    from ita_vc.snapshot.runs import list_runs

    rows = list_runs(_workspace(), setup_id=setup, sort=sort, limit=limit)
    if as_json:
        out().print_json(json.dumps(rows))
        return
    metric_keys = ["Total Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "Num. Trades"]
    if sort and sort not in metric_keys:
        metric_keys.insert(0, sort)
    table = Table(title=f"{len(rows)} run(s)")
    for column in ("run_id", "setup", "version", "created", "kept", *metric_keys):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r["run_id"],
            r["setup_id"],
            r["rule_version"],
            r["created_at"],
            "yes" if r["kept"] else "",
            *(_value(r["metrics"].get(k)) for k in metric_keys),
        )
    out().print(table)


@runs_app.command("show")
def show_command(run_id: Annotated[str, typer.Argument(help="Run id.")]) -> None:
    """Print a run's snapshot."""
    from ita_vc.cli.console import out
    from ita_vc.snapshot.capture import SnapshotStore

    out().print_json(json.dumps(SnapshotStore(_workspace()).load_snapshot(run_id)))


@runs_app.command("diff")
def diff_command(
    a: Annotated[str, typer.Argument(help="First run id.")],
    b: Annotated[str, typer.Argument(help="Second run id.")],
) -> None:
    """Params, rule, data, code and metrics of two runs side by side."""
    from rich.table import Table

    from ita_vc.cli.console import out
    from ita_vc.snapshot.runs import diff_runs

    rows = diff_runs(_workspace(), a, b)
    if not rows:
        out().print("no differences")
        return
    table = Table(title=f"{a} vs {b}")
    for column in ("section", "key", a, b):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r.section, r.key, _value(r.a), _value(r.b))
    out().print(table)


@runs_app.command("keep")
def keep_command(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    reason: Annotated[str | None, typer.Option(help="Why it is kept.")] = None,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
    ] = 0,
) -> None:
    """Pin a run, on whichever branch it was recorded (git tag ita/keep/RUN_ID on the commit
    holding its snapshot; push tags to share it)."""
    from ita_vc.cli.console import out
    from ita_vc.snapshot.runs import keep_run

    tag = keep_run(_workspace(), run_id, reason, wait=wait)
    out().print(f"pinned {run_id}: tag {tag} (share it: git push origin {tag})", markup=False)


@snapshot_app.command("verify")
def verify_command(
    run_id: Annotated[str | None, typer.Argument(help="Run id (or --all).")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every recorded run.")] = False,
    deep: Annotated[bool, typer.Option(help="Also re-hash every object and the data.")] = False,
    remote: Annotated[
        str | None, typer.Option(help="Accept objects held by this DVC remote.")
    ] = None,
) -> None:
    """Check snapshot hashes, rule hashes and the DVC objects of runs; non-zero on mismatch."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn
    from rich.table import Table

    from ita_vc.cli.console import out
    from ita_vc.errors import IntegrityError, UsageError
    from ita_vc.snapshot.capture import SnapshotStore
    from ita_vc.snapshot.verify import verify_run

    workspace = _workspace()
    if all_runs == (run_id is not None):
        raise UsageError("give a RUN_ID or --all (not both)")
    run_ids = SnapshotStore(workspace).run_ids() if all_runs else [str(run_id)]
    table = Table(title="snapshot verify" + (" --deep" if deep else ""))
    for column in ("run_id", "check", "result", "detail"):
        table.add_column(column, overflow="fold")
    failed = 0
    with Progress(
        *Progress.get_default_columns(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=out(),
        transient=True,
        disable=not deep,
    ) as bar:
        task = bar.add_task("re-hashing", total=None)
        for rid in run_ids:
            report = verify_run(
                workspace, rid, deep=deep, remote=remote, progress=lambda n: bar.advance(task, n)
            )
            failed += not report.ok
            for check in report.checks:
                table.add_row(rid, check.name, "pass" if check.ok else "FAIL", check.detail)
    out().print(table)
    if failed:
        raise IntegrityError(f"{failed} of {len(run_ids)} run(s) failed verification")


def reproduce_command(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    keep_worktree: Annotated[bool, typer.Option(help="Keep the temporary worktree.")] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
    ] = 0,
) -> None:
    """Re-run a recorded run with that commit's code in a temporary worktree and compare."""
    from ita_vc.cli.console import out
    from ita_vc.errors import IntegrityError
    from ita_vc.snapshot.reproduce import reproduce_run

    console = out()
    report = reproduce_run(
        _workspace(),
        run_id,
        keep_worktree=keep_worktree,
        wait=wait,
        progress=lambda line: console.print(f"  {line}", markup=False),
    )
    if report.engine_note:
        console.print(f"note: {report.engine_note}", markup=False)
    for title, rows in (
        ("inputs differ", report.input_diffs),
        ("outputs differ", report.output_diffs),
        ("metrics differ", report.metric_diffs),
        ("package versions differ", report.package_diffs),
    ):
        if rows:
            console.print(f"{title}:", markup=False)
            for row in rows:
                console.print(f"  {row}", markup=False)
    if not report.bit_exact:
        raise IntegrityError(f"{run_id} did not reproduce (see the differences above)")
    console.print(
        f"{run_id} reproduced bit-exactly at {report.commit[:10]} ({' -> '.join(report.stages)})",
        markup=False,
    )
