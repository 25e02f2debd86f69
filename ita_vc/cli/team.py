"""``ita-vc push``, ``ita-vc pull``, ``ita-vc clone``: share runs with a team (see
``ita_vc.team.sync``)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ita_vc.team.sync import PullReport

GitRemote = Annotated[str, typer.Option("--git-remote", help="The git remote (branches and pins).")]
DvcRemote = Annotated[
    str | None,
    typer.Option("--dvc-remote", help="The DVC remote for the objects (default: core.remote)."),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout", help="Seconds the remote may stay silent before giving up (exit 13)."
    ),
]
Jobs = Annotated[int | None, typer.Option("--jobs", "-j", help="Parallel transfers (DVC's).")]
Wait = Annotated[
    float,
    typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


@contextmanager
def _bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar fed with ``(done, total)`` objects."""
    from rich.progress import MofNCompleteColumn, Progress

    from ita_vc.cli.console import err

    with Progress(
        *Progress.get_default_columns(), MofNCompleteColumn(), console=err(), transient=True
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def push_command(
    git_remote: GitRemote = "origin",
    dvc_remote: DvcRemote = None,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="Push even when some objects are neither local nor remote (listed).",
        ),
    ] = False,
    jobs: Jobs = None,
    timeout: Timeout = 30.0,
    wait: Wait = 0,
    as_json: AsJson = False,
) -> None:
    """Share your work: the objects the new runs, the pinned runs and the workspace need go to
    the DVC remote (only those, not the whole cache), then git pushes the branch and the
    ita/keep/* pins. Refuses before pushing anything when an object is neither in the local
    cache nor on the remote (exit 6)."""
    from ita_vc.cli.console import out
    from ita_vc.team.sync import push_workspace
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    with _bar(f"pushing to DVC remote {dvc_remote or '(default)'}") as progress:
        report = push_workspace(
            workspace,
            git_remote=git_remote,
            dvc_remote=dvc_remote,
            allow_missing=allow_missing,
            jobs=jobs,
            timeout=timeout,
            progress=progress,
            wait=wait,
        )
    if as_json:
        out().print_json(json.dumps(report.to_dict()))
        return
    console = out()
    console.print(
        f"pushed {report.pushed} object(s) to DVC remote {report.dvc_remote} "
        f"({report.dvc_url}); {report.already_on_remote} of the {report.objects_needed} "
        f"needed were there already ({len(report.runs)} run(s) checked: the new ones and "
        "the pinned ones)",
        markup=False,
    )
    for line in report.missing:
        console.print(f"  not pushed (missing everywhere): {line}", markup=False)
    console.print(
        f"git: {report.branch} -> {report.git_remote}"
        + (f" with {report.pins} pin tag(s)" if report.pins else "")
        + f" ({report.commits} new commit(s))",
        markup=False,
    )


def _print_pull(report: PullReport, as_json: bool) -> None:
    from ita_vc.cli.console import out
    from ita_vc.errors import IntegrityError

    if as_json:
        out().print_json(json.dumps(report.to_dict()))
    else:
        console = out()
        if report.before != report.after:
            console.print(
                f"git: {report.branch or 'HEAD'} at {str(report.after)[:10]} "
                f"({report.commits} new commit(s))",
                markup=False,
            )
        console.print(
            f"fetched {report.fetched} object(s) from DVC remote {report.dvc_remote} "
            f"({report.dvc_url}); the workspace needs {report.objects_needed} "
            f"({report.objects_needed - report.fetched - len(report.missing_remotely)} "
            "already in the cache)",
            markup=False,
        )
        for line in report.kept_local_changes:
            console.print(f"  kept your change: {line}", markup=False)
        for line in report.missing_remotely:
            console.print(f"  MISSING on the remote: {line}", markup=False)
        bad = [r for r in report.runs if not r.ok]
        console.print(
            f"verified {len(report.runs)} run(s) (light: snapshot hash, every object in the "
            f"cache or on the remote): {len(report.runs) - len(bad)} ok",
            markup=False,
        )
        for run in bad:
            what = "snapshot modified" if not run.snapshot_ok else ""
            objects = "; ".join(run.missing[:5]) + (" ..." if len(run.missing) > 5 else "")
            console.print(
                f"  {run.run_id}: {what}{'; ' if what and objects else ''}"
                f"{'missing on the remote: ' + objects if objects else ''}",
                markup=False,
            )
    if not report.ok:
        raise IntegrityError(
            "the remote lacks objects the workspace or the pulled runs need (listed above); "
            "ask whoever recorded them to `ita-vc push`"
        )


def pull_command(
    git_remote: GitRemote = "origin",
    dvc_remote: DvcRemote = None,
    jobs: Jobs = None,
    timeout: Timeout = 30.0,
    wait: Wait = 0,
    as_json: AsJson = False,
) -> None:
    """Get the team's work: git fetch (branches and pins) and a fast-forward, the objects the
    workspace needs, then a light verification of the runs that arrived and the pinned runs;
    names what the remote lacks (exit 6)."""
    from ita_vc.team.sync import pull_workspace
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    with _bar(f"pulling from DVC remote {dvc_remote or '(default)'}") as progress:
        report = pull_workspace(
            workspace,
            git_remote=git_remote,
            dvc_remote=dvc_remote,
            jobs=jobs,
            timeout=timeout,
            progress=progress,
            wait=wait,
        )
    _print_pull(report, as_json)


def clone_command(
    url: Annotated[str, typer.Argument(help="The git URL of the team's workspace.")],
    directory: Annotated[str, typer.Argument(help="A new (or empty) folder.")],
    dvc_remote: DvcRemote = None,
    hooks: Annotated[
        bool, typer.Option(help="Install ita-vc's git hooks (as `ita-vc init --hooks`).")
    ] = True,
    jobs: Jobs = None,
    timeout: Timeout = 30.0,
    as_json: AsJson = False,
) -> None:
    """git clone, ita-vc's hooks, then the objects the workspace needs and a light
    verification of the runs (as `ita-vc pull`)."""
    from ita_vc.team.sync import clone_workspace

    with _bar(f"pulling from DVC remote {dvc_remote or '(default)'}") as progress:
        report = clone_workspace(
            url,
            directory,
            dvc_remote=dvc_remote,
            hooks=hooks,
            jobs=jobs,
            timeout=timeout,
            progress=progress,
        )
    _print_pull(report, as_json)
