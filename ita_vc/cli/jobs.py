"""``ita-vc jobs ...`` and ``ita-vc worker``: the job queue (docs/jobs.md)."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ita_vc.jobs.model import Job
    from ita_vc.jobs.store import JobStore
    from ita_vc.workspace import Workspace

app = typer.Typer(
    help="Backtest jobs: queued, observable, cancellable (run by `ita-vc worker`).",
    no_args_is_help=True,
)

_JOB = "Job id (e.g. 42)."
_TOP_COLUMNS = ("Total Return [%]", "Max. Drawdown [%]", "Sharpe Ratio", "Num. Trades")


@contextlib.contextmanager
def _session() -> Iterator[tuple[Workspace, JobStore]]:
    """The workspace and its job store, closed when the command ends."""
    from ita_vc.jobs.worker import open_store
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    store = open_store(workspace)
    try:
        yield workspace, store
    finally:
        store.close()


def _ms(value: int | None) -> str:
    if value is None:
        return "-"
    import datetime as dt

    try:
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{value} (not a time)"


def _safe(value: object, limit: int = 2000) -> str:
    """Text from the store or a user, printable: control characters (terminal escapes) shown
    as ``?``, cut at ``limit``."""
    from ita_vc.jobs.model import printable

    return printable(str(value)[:limit])


def _check_note(note: str) -> None:
    """A note is printable UTF-8 text of at most 2,000 characters.

    Raises:
        UsageError: otherwise.
    """
    from ita_vc.errors import UsageError

    if len(note) > 2000:
        raise UsageError(f"--note: at most 2000 characters, got {len(note)}")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"--note: not valid UTF-8 text ({note!r})") from None
    if any(not (c.isprintable() or c in " \t") for c in note):
        raise UsageError(f"--note: control characters are not allowed ({note!r})")


def _obj(value: object) -> dict[str, Any]:
    """A JSON object from the store, or {} when it is something else (a damaged row)."""
    return value if isinstance(value, dict) else {}


def _progress(job: Job) -> str:
    if job.stage is None:
        return "-"
    if job.total:
        return f"{job.stage} {job.processed or 0:,}/{job.total:,}"
    return job.stage


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@app.command("submit")
def submit_command(
    grid: Annotated[bool, typer.Option("--grid", help="A grid job (the default).")] = False,
    backtest: Annotated[
        bool, typer.Option("--backtest", help="A single backtest (prepare -> backtest -> report).")
    ] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", "-S", help="key.path=value over params.yaml (as `ita-vc run -S`)."),
    ] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first (then oldest first).")] = 0,
    note: Annotated[str | None, typer.Option(help="A note kept with the job.")] = None,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            "--allow-dirty",
            help="Queue despite uncommitted changes (recorded; the worker runs the commit).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> None:
    """Freeze the request (commit, params, rule version, data, grid) and queue it."""
    from ita_vc.cli.console import out
    from ita_vc.cli.run import parse_sets
    from ita_vc.errors import UsageError
    from ita_vc.jobs.request import freeze_request

    if grid and backtest:
        raise UsageError("--grid and --backtest exclude each other")
    if note is not None:
        _check_note(note)
    if abs(priority) > 1_000_000:
        raise UsageError(f"--priority: between -1000000 and 1000000, got {priority}")
    with _session() as (workspace, store):
        frozen = freeze_request(
            workspace, "backtest" if backtest else "grid", parse_sets(sets), allow_dirty=allow_dirty
        )
        same = store.same_request(frozen.request_hash)
        job_id = store.submit(
            frozen.kind,
            frozen.body,
            frozen.request_hash,
            priority=priority,
            note=note,
            max_attempts=workspace.config.jobs.max_attempts,
        )
        if as_json:
            _json({"id": job_id, "request_hash": frozen.request_hash, "state": "queued"})
            return
        if same:
            out().print(
                f"note: the same request as job(s) {', '.join(map(str, same))} (queued, running "
                "or succeeded): its result will be the same",
                markup=False,
            )
        dirty = frozen.body.get("dirty") or []
        out().print(
            f"job {job_id} queued ({frozen.kind}, {frozen.body['rule']['setup_id']} "
            f"{frozen.body['rule']['version']}, commit {frozen.body['git_commit'][:10]}); "
            f"`ita-vc worker` runs it, `ita-vc jobs status {job_id}` follows it",
            markup=False,
        )
        if dirty:
            out().print(
                f"note: {len(dirty)} uncommitted change(s) are NOT in the job (the worker runs "
                "the commit): " + ", ".join(dirty[:5]),
                markup=False,
            )


@app.command("list")
def list_command(
    state: Annotated[
        str | None,
        typer.Option(help="queued, running, succeeded, failed or cancelled."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The jobs, newest first."""
    from rich.table import Table

    from ita_vc.cli.console import out

    with _session() as (_workspace, store):
        jobs = store.list_jobs(state, limit)
        if as_json:
            _json([{k: v for k, v in j.to_dict().items() if k != "request"} for j in jobs])
            return
        if not jobs:
            out().print("no jobs" + (f" {state}" if state else ""), markup=False)
            return
        table = Table("id", "state", "kind", "rule", "progress", "attempt", "submitted", "note")
        for job in jobs:
            rule = _obj(job.request.get("rule"))
            table.add_row(
                str(job.id),
                _safe(job.state)
                + (" (cancel asked)" if job.cancel_requested and job.state == "running" else "")
                + (" DAMAGED" if job.damaged else ""),
                _safe(job.kind),
                _safe(f"{rule.get('setup_id', '?')} {rule.get('version', '')}"),
                _safe(_progress(job)),
                f"{job.attempt}/{job.max_attempts}",
                _ms(job.submitted_at),
                _safe(job.note or "", 40),
            )
        out().print(table)


def _status_lines(row: Job, now: int) -> list[str]:
    """``jobs status``'s lines (every value from the store made printable)."""
    request = row.request
    rule = _obj(request.get("rule"))
    lines = [
        f"job {row.id}: {row.state}" + (" (cancel requested)" if row.cancel_requested else ""),
        f"  kind        {row.kind}, priority {row.priority}",
        f"  rule        {rule.get('setup_id', '?')} {rule.get('version', '?')} "
        f"({rule.get('params_hash', '?')})",
        f"  commit      {request.get('git_commit', '?')} (ita-vc "
        f"{request.get('ita_vc_version', '?')}, engine {request.get('engine') or 'default'})",
        f"  request     {row.request_hash}",
        f"  progress    {_progress(row)} (updated {_ms(row.progress_at)})",
        f"  attempt     {row.attempt} of {row.max_attempts}",
        f"  submitted   {_ms(row.submitted_at)}; started {_ms(row.started_at)}; "
        f"finished {_ms(row.finished_at)}",
    ]
    if row.state == "running":
        expired = row.lease_expires_at is not None and row.lease_expires_at < now
        lines.append(
            f"  lease       {row.lease_owner}, heartbeat {_ms(row.heartbeat_at)}, expires "
            f"{_ms(row.lease_expires_at)}"
            + (" - EXPIRED: the next idle worker reclaims it" if expired else "")
        )
    dirty = request.get("dirty")
    if isinstance(dirty, list) and dirty:
        lines.append(
            f"  not in job  {len(dirty)} uncommitted path(s): {', '.join(map(str, dirty[:5]))}"
        )
    if row.note:
        lines.append(f"  note        {row.note}")
    if row.damaged:
        lines.append(f"  DAMAGED     {row.damaged}")
    if row.last_error:
        lines.append(f"  last error  {row.last_error}")
    result = _obj(row.result)
    if result:
        size = result.get("bytes")
        lines.append(
            f"  result      {result.get('files')} file(s), "
            + (f"{size:,} bytes; " if isinstance(size, int) else "")
            + f"`ita-vc jobs top {row.id}`, `ita-vc jobs adopt {row.id}`"
        )
        summary = _obj(result.get("summary"))
        counts = _obj(summary.get("counts"))
        if summary.get("stop_reason"):
            lines.append(
                f"  search      {summary.get('stop_reason')}: Stage A "
                f"{counts.get('stage_a_evaluated', '?')}, Stage B "
                f"{counts.get('stage_b_evaluated', '?')}, pruned {counts.get('pruned', '?')}, "
                f"top {counts.get('top_k', '?')}"
            )
    return [_safe(line) for line in lines]


@app.command("status")
def status_command(
    job: Annotated[str, typer.Argument(help=_JOB)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> None:
    """One job: state, progress, attempts, lease, error, result."""
    from ita_vc.cli.console import out
    from ita_vc.jobs.model import parse_job_id

    job_id = parse_job_id(job)
    with _session() as (_workspace, store):
        row = store.get(job_id)
        if as_json:
            _json(row.to_dict())
            return
        lines = _status_lines(row, store.now())
        out().print("\n".join(lines), markup=False, highlight=False)


@app.command("top")
def top_command(
    job: Annotated[str, typer.Argument(help=_JOB)],
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many rows.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The job's best variants: best so far while it runs, the final top-K after."""
    from rich.table import Table

    from ita_vc.backtest.format import format_metric
    from ita_vc.cli.console import out
    from ita_vc.jobs.model import parse_job_id

    job_id = parse_job_id(job)
    with _session() as (_workspace, store):
        row = store.get(job_id)
        found = store.topk(job_id)
        rows, final, attempt = found if found is not None else ([], False, row.attempt)
        if as_json:
            _json(
                {
                    "job": job_id,
                    "state": row.state,
                    "final": final,
                    "attempt": attempt,
                    "rows": rows[:limit],
                }
            )
            return
        if not rows:
            out().print(f"job {job_id} ({row.state}): no results yet", markup=False)
            return
        what = "final top-K" if final else f"best so far (attempt {attempt}, {_progress(row)})"
        table = Table(
            "rank",
            "variant",
            "Total Return [%]",
            "Max. Drawdown [%]",
            "Sharpe Ratio",
            "Num. Trades",
            title=f"job {job_id}: {what}",
        )
        for item in (_obj(r) for r in rows[:limit]):
            table.add_row(
                _safe(item.get("rank")),
                _safe(
                    item.get("variant_key") or ("(the backtest)" if row.kind == "backtest" else "")
                ),
                *(
                    "-"
                    if not isinstance(item.get(name), int | float)
                    else format_metric(name, item[name])
                    for name in (
                        "Total Return [%]",
                        "Max. Drawdown [%]",
                        "Sharpe Ratio",
                        "Num. Trades",
                    )
                ),
            )
        out().print(table)


@app.command("cancel")
def cancel_command(job: Annotated[str, typer.Argument(help=_JOB)]) -> None:
    """Cancel a job: at once when queued, at the next batch boundary when running."""
    from ita_vc.cli.console import out
    from ita_vc.jobs.model import parse_job_id

    job_id = parse_job_id(job)
    with _session() as (_workspace, store):
        row = store.cancel(job_id)
        if row.state == "running":
            said = "cancel requested: its worker stops at the next batch boundary"
        else:
            said = row.state
        out().print(f"job {job_id}: {said}", markup=False)


@app.command("logs")
def logs_command(job: Annotated[str, typer.Argument(help=_JOB)]) -> None:
    """The job's log: submission, claims, resumes, errors, end."""
    from ita_vc.cli.console import out
    from ita_vc.jobs.model import parse_job_id

    job_id = parse_job_id(job)
    with _session() as (_workspace, store):
        store.get(job_id)
        for at, attempt, level, message in store.events(job_id):
            out().print(
                f"{_ms(at)}  attempt {attempt}  {level:5}  {message}", markup=False, highlight=False
            )


@app.command("adopt")
def adopt_command(
    job: Annotated[str, typer.Argument(help=_JOB)],
    note: Annotated[str | None, typer.Option(help="A note kept in the snapshot.")] = None,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
    ] = 0,
) -> None:
    """Make a succeeded job's outputs a committed run (as `ita-vc run` records one)."""
    from ita_vc.cli.console import out
    from ita_vc.jobs.adopt import adopt_job
    from ita_vc.jobs.model import parse_job_id

    job_id = parse_job_id(job)
    if note is not None:
        _check_note(note)
    with _session() as (workspace, store):
        report = adopt_job(workspace, store, job_id, note=note, wait=wait)
        if report.already:
            out().print(f"job {job_id}: already recorded as {report.run_id}", markup=False)
            return
        out().print(
            f"job {job_id} adopted as {report.run_id} ({report.snapshot_path}, commit "
            f"{(report.committed or '')[:10]})",
            markup=False,
        )


def _supervise(args: list[str], root: Path, concurrency: int, once: bool) -> int:
    """Run ``concurrency`` worker processes (each in its own session: a Ctrl-C reaches this
    process, which passes SIGINT/SIGTERM on once to each); a worker killed by a signal is
    replaced (unless stopping or ``once``). Returns the exit code."""
    import signal
    import subprocess
    import time

    from ita_vc.cli.console import err

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(args, cwd=root, start_new_session=True)

    children = [spawn() for _ in range(concurrency)]
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    saved = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    codes: list[int] = []
    try:
        while children:
            for child in list(children):
                code = child.poll()
                if code is None:
                    continue
                children.remove(child)
                if code >= 0 or once or stopping:
                    codes.append(code if code >= 0 else 128 - code)
                else:
                    err().print(
                        f"worker process {child.pid} was killed (signal {-code}); its job "
                        "is reclaimed after its lease; starting another worker process",
                        markup=False,
                    )
                    children.append(spawn())
            time.sleep(0.2)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    return 0 if stopping and all(c in (0, 130) for c in codes) else max(codes, default=0)


def worker_command(
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Jobs at once (each in its own process).")
    ] = 1,
    once: Annotated[bool, typer.Option("--once", help="Run one job (or none) and exit.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes of each job's grid pool (default: CPU count)."),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address for the grid batches.")
    ] = None,
) -> None:
    """Claim queued jobs and run them; Ctrl-C (or SIGTERM) stops at the next batch boundary
    and gives the job back to the queue (it resumes from its checkpoint)."""
    import signal
    import sys

    from ita_vc.cli.console import err
    from ita_vc.cli.interrupt import graceful_sigint
    from ita_vc.jobs.worker import Worker
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    if concurrency > 1:
        args = [sys.executable, "-m", "ita_vc", "worker"] + (["--once"] if once else [])
        args += [f"--workers={workers}"] if workers else []
        args += [f"--scheduler={scheduler}"] if scheduler else []
        raise typer.Exit(_supervise(args, workspace.root, concurrency, once))
    options: dict[str, Any] = {"workers": workers}  # None: the CPU count, as the grid stage
    if scheduler:
        options["scheduler"] = scheduler
    worker = Worker(workspace, options=options)
    console = err()
    with graceful_sigint() as ctrl_c:
        previous = signal.signal(signal.SIGTERM, lambda *_: ctrl_c.set())
        worker.stop_event = ctrl_c
        try:
            console.print(f"worker {worker.name}: waiting for jobs (Ctrl-C stops)", markup=False)
            worker.run(once=once, on_event=lambda line: console.print(line, markup=False))
        finally:
            signal.signal(signal.SIGTERM, previous)
