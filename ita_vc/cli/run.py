"""``ita-vc run``, ``ita-vc runs ...``, ``ita-vc snapshot verify``, ``ita-vc reproduce``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ita_vc.snapshot.summary import RunSummary, Section
    from ita_vc.workspace import Workspace

runs_app = typer.Typer(help="List, show, compare and pin recorded runs.", no_args_is_help=True)
snapshot_app = typer.Typer(help="Check run snapshots.", no_args_is_help=True)


def _workspace() -> Workspace:
    from ita_vc.workspace import Workspace

    return Workspace.discover()


def _run_id(workspace: Workspace, ref: str) -> str:
    """A run id from what the user typed: a full id, a unique prefix, @latest or @latest~N."""
    from ita_vc.snapshot.runs import resolve_run_id

    return resolve_run_id(workspace, ref)


_RUN_REF_HELP = "Run id, a unique prefix of one, @latest or @latest~N."


def parse_sets(sets: list[str] | None) -> list[tuple[str, object]]:
    """``-S key.path=value`` options as (key, value) pairs (values read as YAML scalars).

    Raises:
        DataValidationError: not ``key=value``, or a value that is not a scalar.
    """
    from ita_vc.errors import DataValidationError
    from ita_vc.yaml_rewrite import YamlEditError, parse_set_value

    overrides: list[tuple[str, object]] = []
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
    return overrides


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
    from ita_vc.backtest.format import format_metric
    from ita_vc.cli.console import err, out
    from ita_vc.snapshot.runner import run_pipeline

    overrides = parse_sets(sets)
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
        console.print(f"  {key:<20} {format_metric(key, m.get(key))}", markup=False)
    console.print(
        f"snapshot {report.snapshot_path}"
        + (f", committed {report.committed[:10]}" if report.committed else ""),
        markup=False,
    )


_LIST_METRICS = ("Total Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "Num. Trades")


@runs_app.command("list")
def list_command(
    setup: Annotated[str | None, typer.Option("--setup", help="Only this setup.")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only runs recorded at or after DATE (YYYY-MM-DD, UTC)."),
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Only runs whose note contains TEXT.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only runs with this status: running, completed, failed, cancelled or "
            "abandoned (failed, cancelled and running runs come from the clone's run log).",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            help="Sort by this metric, descending: a metric name in any case or an alias "
            "(sharpe, sortino, calmar, return, dd, trades, winrate, profit, ...); or by a "
            "validation number: p_value, pbo (ascending), dsr."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Only runs of rule SETUP@vX.Y (or SETUP@X.Y).")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Only runs whose data hash starts with this (>= 6 hex)."),
    ] = None,
) -> None:
    """Runs with their status and key metrics (newest first): committed runs, and the failed,
    cancelled, running and uncommitted ones of this clone's run log."""
    from ita_vc.backtest.format import format_metric
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.snapshot.links import filter_runs
    from ita_vc.snapshot.runs import VALIDATION_COLUMNS, list_runs

    workspace = _workspace()
    rows = list_runs(
        workspace,
        setup_id=setup,
        sort=sort,
        limit=None,
        symbol=symbol,
        since=since,
        note=note,
        status=status,
    )
    rows = filter_runs(workspace, rows, rule=rule, data=data)[:limit]  # --rule, --data
    if as_json:
        out().print_json(json.dumps(rows))
        return
    metric_keys = list(_LIST_METRICS)
    sort_key = rows[0].get("sort_metric") if rows else None
    # the validation columns appear when a listed run has the number (the validate stage ran)
    metric_keys += [
        k for k in VALIDATION_COLUMNS if any(r["validation"][k] is not None for r in rows)
    ]
    if sort_key and sort_key not in metric_keys:
        metric_keys.insert(0, sort_key)
    columns = [
        Col("run_id", no_wrap=True),
        Col("status", 1, no_wrap=True),
        Col("setup", 2),
        Col("version", 3, no_wrap=True),
        Col("symbol", 4),
        Col("created", 5, no_wrap=True),
        Col("kept", 6),
        *(
            Col(k, 0 if k == sort_key else 1 + (i > 0), justify="right", no_wrap=True)
            for i, k in enumerate(metric_keys)
        ),
        Col("note", 7),
    ]
    cells = [
        [
            r["run_id"],
            _status_cell(r),
            r["setup_id"] or "-",
            r["rule_version"] or "-",
            f"{r.get('symbol') or '-'} {r.get('timeframe') or ''}".strip(),
            r["created_at"],
            "yes" if r["kept"] else "",
            *(
                _validation_cell(r["validation"][k])
                if k in VALIDATION_COLUMNS
                else format_metric(k, r["metrics"].get(k))
                for k in metric_keys
            ),
            _note_cell(r),
        ]
        for r in rows
    ]
    print_table(out(), columns, cells, title=f"{len(rows)} run(s)")


def _status_cell(row: dict[str, object]) -> str:
    """``completed``; ``failed (backtest)``: a run that stopped names its stage."""
    status = str(row.get("status"))
    stage = row.get("stage")
    if status in ("failed", "cancelled", "running", "abandoned") and stage:
        return f"{status} ({stage})"
    return status if row.get("flow") in (None, "backtest") else f"{status} [{row.get('flow')}]"


def _note_cell(row: dict[str, object]) -> str:
    """The run's note; a failed run's error (exit code and the message's first line)."""
    if row.get("error_message"):
        first = str(row["error_message"]).splitlines()[0]
        return f"exit {row.get('error_code')}: {first[:120]}"
    return str(row.get("note") or "")


def _validation_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@runs_app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help=_RUN_REF_HELP)],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole snapshot document (JSON).")
    ] = False,
) -> None:
    """A run at a glance: rule, data, execution, git, metrics, outputs and environment; for a
    run known only to the clone's run log (running, failed, cancelled, abandoned, grid run,
    validate), its record: status, stage, progress, error."""
    from ita_vc.cli.console import out
    from ita_vc.snapshot.capture import SnapshotStore
    from ita_vc.snapshot.records import log_records
    from ita_vc.snapshot.runs import record_lines, resolve_run_id
    from ita_vc.snapshot.summary import run_summary

    workspace = _workspace()
    records = log_records(workspace)
    rid = resolve_run_id(workspace, run_id, extra=records)
    store = SnapshotStore(workspace)
    if rid in records and not workspace.path(store.snapshot_relpath(rid)).is_file():
        record = records[rid]
        if as_json:
            out().print_json(json.dumps(record.to_dict()))
            return
        for label, value in record_lines(record):
            out().print(f"{label:<12} {value}" if label else f"{'':<12} {value}", markup=False)
        return
    if as_json:
        out().print_json(json.dumps(SnapshotStore(workspace).load_snapshot(rid)))
        return
    _print_summary(run_summary(workspace, rid))


def _section_lines(section: Section) -> list[str]:
    """``[title]`` then ``label  text`` lines, the labels padded to one width."""
    width = max((len(line.label) for line in section.lines), default=0)
    return [f"[{section.title}]"] + [
        f"{line.label:<{width}}  {line.text}" for line in section.lines
    ]


def _side_by_side(left: list[str], right: list[str]) -> list[str]:
    """Two blocks of lines next to each other (no trailing blanks)."""
    width = max((len(line) for line in left), default=0) + 4
    rows = max(len(left), len(right))
    left, right = left + [""] * (rows - len(left)), right + [""] * (rows - len(right))
    return [f"{a:<{width}}{b}".rstrip() for a, b in zip(left, right, strict=True)]


def _print_summary(summary: RunSummary) -> None:
    """The sections as ``label  value`` blocks (two side by side on a wide console), the
    metrics in a two-column table."""
    from rich.table import Table

    from ita_vc.cli.console import out

    console = out()
    console.print(summary.headline, markup=False, style="bold")
    by_title = {s.title: s for s in summary.sections}
    wide = console.width >= 120  # two sections side by side
    for pair in (("run", "git"), ("rule", "execution"), ("data", "outputs")):
        blocks = [_section_lines(by_title[t]) for t in pair if t in by_title]
        if wide and len(blocks) == 2:
            blocks = [_side_by_side(*blocks)]
        for block in blocks:
            console.print("\n".join(block), markup=False, highlight=False)
    metrics = Table(title="metrics", title_justify="left", show_edge=False, pad_edge=False)
    half = (len(summary.metrics) + 1) // 2
    for _ in range(2 if half else 1):
        metrics.add_column("metric", no_wrap=True)
        metrics.add_column("value", justify="right", no_wrap=True)
    left, right = summary.metrics[:half], summary.metrics[half:]
    for i, m in enumerate(left):
        other = right[i] if i < len(right) else None
        metrics.add_row(m.name, m.text, *((other.name, other.text) if other else ("", "")))
    console.print(metrics)
    if "validation" in by_title:  # the validate stage ran with this run
        console.print("\n".join(_section_lines(by_title["validation"])), markup=False)
    if "environment" in by_title:
        console.print("\n".join(_section_lines(by_title["environment"])), markup=False)


@runs_app.command("diff")
def diff_command(
    a: Annotated[str, typer.Argument(help="First run: " + _RUN_REF_HELP)],
    b: Annotated[str, typer.Argument(help="Second run: " + _RUN_REF_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences (JSON).")] = False,
) -> None:
    """What differs between two runs and by how much: rule parameters, execution, params.yaml,
    data, code, metrics (change and percent change) and package versions."""
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.snapshot.summary import diff_texts, run_diff

    workspace = _workspace()
    diff = run_diff(workspace, _run_id(workspace, a), _run_id(workspace, b))
    if as_json:
        out().print_json(json.dumps(diff.to_dict()))
        return
    if not diff.rows:
        out().print(f"no differences between {diff.a} and {diff.b}", markup=False)
        return
    columns = [
        Col("section", 3),
        Col("key"),
        Col(diff.a, justify="right", no_wrap=True),
        Col(diff.b, justify="right", no_wrap=True),
        Col("change", 1, justify="right", no_wrap=True),
        Col("%", 2, justify="right", no_wrap=True),
    ]
    cells = [[r.section, r.key, *diff_texts(r)] for r in diff.rows]
    print_table(
        out(), columns, cells, title=f"{diff.a} -> {diff.b}: {len(diff.rows)} difference(s)"
    )


@runs_app.command("keep")
def keep_command(
    run_id: Annotated[str, typer.Argument(help=_RUN_REF_HELP)],
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

    workspace = _workspace()
    rid = _run_id(workspace, run_id)
    tag = keep_run(workspace, rid, reason, wait=wait)
    out().print(f"pinned {rid}: tag {tag} (share it: git push origin {tag})", markup=False)


@snapshot_app.command("verify")
def verify_command(
    run_id: Annotated[
        str | None, typer.Argument(help=_RUN_REF_HELP.removesuffix(".") + " (or --all).")
    ] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every recorded run.")] = False,
    deep: Annotated[bool, typer.Option(help="Also re-hash every object and the data.")] = False,
    remote: Annotated[
        str | None,
        typer.Option(help="Accept objects held by this DVC remote (checked, never downloaded)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds the remote may stay silent (exit 13).")
    ] = 30.0,
) -> None:
    """Check snapshot hashes, rule hashes and the DVC objects of runs; non-zero on mismatch."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.errors import IntegrityError, UsageError
    from ita_vc.snapshot.capture import SnapshotStore
    from ita_vc.snapshot.verify import verify_run

    workspace = _workspace()
    if all_runs == (run_id is not None):
        raise UsageError("give a RUN_ID or --all (not both)")
    run_ids = SnapshotStore(workspace).run_ids() if all_runs else [_run_id(workspace, str(run_id))]
    cells: list[list[str]] = []
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
                workspace,
                rid,
                deep=deep,
                remote=remote,
                timeout=timeout,
                progress=lambda n: bar.advance(task, n),
            )
            failed += not report.ok
            for check in report.checks:
                cells.append([rid, check.name, "pass" if check.ok else "FAIL", check.detail])
    columns = [
        Col("run_id", no_wrap=True),
        Col("check"),
        Col("result", no_wrap=True),
        Col("detail", 1),
    ]
    print_table(out(), columns, cells, title="snapshot verify" + (" --deep" if deep else ""))
    if failed:
        raise IntegrityError(f"{failed} of {len(run_ids)} run(s) failed verification")


def reproduce_command(
    run_id: Annotated[str, typer.Argument(help=_RUN_REF_HELP)],
    keep_worktree: Annotated[bool, typer.Option(help="Keep the temporary worktree.")] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
    ] = 0,
    remote: Annotated[
        str | None,
        typer.Option(
            "--dvc-remote", help="Fetch missing inputs from this DVC remote (default: core.remote)."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds the remote may stay silent (exit 13).")
    ] = 30.0,
) -> None:
    """Re-run a recorded run with that commit's code in a temporary worktree and compare.
    Inputs missing from the local cache (a fresh clone) are fetched from the DVC remote."""
    from ita_vc.cli.console import out
    from ita_vc.errors import IntegrityError
    from ita_vc.snapshot.reproduce import reproduce_run

    console = out()
    workspace = _workspace()
    run_id = _run_id(workspace, run_id)
    report = reproduce_run(
        workspace,
        run_id,
        keep_worktree=keep_worktree,
        wait=wait,
        remote=remote,
        timeout=timeout,
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
