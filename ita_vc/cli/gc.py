"""``ita-vc gc`` and ``ita-vc trash ...``: retention on top of DVC's cache."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

trash_app = typer.Typer(
    help="Soft-deleted DVC objects: list, restore, purge.", no_args_is_help=True
)


def _gb(size: int) -> str:
    return f"{size / 1024**3:.3f} GB" if size >= 1024**3 // 10 else f"{size / 1024**2:.2f} MB"


def gc_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan/report as JSON.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm removals above confirm_above_gb.")
    ] = False,
    force_shared_cache: Annotated[
        bool,
        typer.Option("--force-shared-cache", help="Collect a cache shared with other projects."),
    ] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
    ] = 0,
    cloud: Annotated[
        bool,
        typer.Option(
            "--cloud", help="Collect the DVC remote instead of the local cache (same policy)."
        ),
    ] = False,
    dvc_remote: Annotated[
        str | None,
        typer.Option("--dvc-remote", help="With --cloud: the DVC remote (default: core.remote)."),
    ] = None,
    git_remote: Annotated[
        str,
        typer.Option(
            "--git-remote", help="With --cloud: fetch the team's branches, tags and pins here."
        ),
    ] = "origin",
    timeout: Annotated[
        float, typer.Option(help="With --cloud: seconds the remote may stay silent (exit 13).")
    ] = 30.0,
) -> None:
    """Apply configs/retention.yaml to the DVC cache: soft delete / archive what the policy
    says, bring back trashed objects it keeps, purge what aged out of the trash, write a purge
    report. Holds the workspace lock (a run, an import or a restore waits or is refused).
    --cloud does the same on the DVC remote (its trash under a prefix of the bucket), after
    fetching the team's branches, tags and pins."""
    from ita_vc.cli.console import out
    from ita_vc.retention.apply import collect_garbage, compute_plan
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    if cloud:
        _cloud(workspace, dry_run, as_json, yes, wait, dvc_remote, git_remote, timeout)
        return
    if dry_run:
        plan, facts = compute_plan(workspace)
        trashed = {o.oid for o in facts.objects if o.in_trash}
        back = [d for d in plan.decisions if d.action == "keep" and d.oid in trashed]
        if as_json:
            out().print_json(json.dumps(plan.to_dict()))
            return
        _plan_table(
            plan,
            f"retention plan ({facts.revisions} revisions, "
            f"{len(facts.runs)} runs, {len(plan.decisions)} cached objects)",
        )
        if back:
            out().print(
                f"{len(back)} trashed object(s) are kept by this plan and would go "
                "back into the cache",
                markup=False,
            )
        from ita_vc.retention.policy import load_policy
        from ita_vc.snapshot.records import prune_records

        drop = prune_records(
            workspace,
            load_policy(workspace.root).max_runs,
            protect=[r.run_id for r in facts.runs if r.pinned],
            dry_run=True,
        )
        if drop:
            out().print(
                f"run log: the records of {len(drop)} run(s) beyond the newest max_runs "
                "completed (and max_runs failed) runs would be dropped",
                markup=False,
            )
        out().print("dry run: nothing changed. `ita-vc gc` executes this plan.")
        return
    _plan, _facts, report = collect_garbage(
        workspace, yes=yes, wait=wait, force_shared_cache=force_shared_cache
    )
    data = report.to_dict()
    if as_json:
        out().print_json(json.dumps(data))
        return
    out().print(
        f"moved {data['total_files_trashed']} object(s) ({data['trashed_gb']:.4f} GB) "
        f"to the trash, archived {len(data['archived'])}, purged "
        f"{data['total_files_purged']} ({data['freed_space_gb']:.4f} GB freed)"
        + (f", brought back {len(report.restored)} the plan keeps" if report.restored else ""),
        markup=False,
    )
    if report.records_dropped:
        out().print(
            f"run log: dropped the records of {len(report.records_dropped)} run(s) beyond the "
            "newest max_runs completed and max_runs failed runs (pinned and running ones are "
            "kept)",
            markup=False,
        )
    out().print(
        f"purge report {report.report_path}; audit log {data['audit_log_path']}", markup=False
    )


def _plan_table(plan: Any, title: str) -> None:
    from ita_vc.cli.console import Col, out, print_table

    cells = [
        [
            row["class"],
            f"{row['keep']} / {_gb(row['keep_bytes'])}",
            f"{row['delete']} / {_gb(row['delete_bytes'])}",
            f"{row['archive']} / {_gb(row['archive_bytes'])}",
            ", ".join(f"{k} ({v})" for k, v in sorted(row["keep_reasons"].items())),
        ]
        for row in plan.summary()
    ]
    print_table(
        out(),
        [Col("class"), Col("keep"), Col("delete"), Col("archive", 1), Col("why kept", 2)],
        cells,
        title=title,
    )


def _cloud(
    workspace: Any,
    dry_run: bool,
    as_json: bool,
    yes: bool,
    wait: float,
    dvc_remote: str | None,
    git_remote: str,
    timeout: float,
) -> None:
    """``gc --cloud``: plan (and unless --dry-run, execute) on the DVC remote."""
    from ita_vc.cli.console import out
    from ita_vc.cli.team import _bar
    from ita_vc.retention.cloud import collect_cloud_garbage

    with _bar("moving remote objects to the trash") as progress:
        plan, facts, report = collect_cloud_garbage(
            workspace,
            dvc_remote=dvc_remote,
            git_remote=git_remote,
            dry_run=dry_run,
            yes=yes,
            wait=wait,
            timeout=timeout,
            progress=progress,
        )
    if as_json:
        data = plan.to_dict() if dry_run else report.to_dict()
        out().print_json(json.dumps({"remote": report.remote, "url": report.url, **data}))
        return
    if dry_run:
        _plan_table(
            plan,
            f"remote retention plan: {report.remote} ({report.url}; {facts.revisions} "
            f"revisions, {len(facts.runs)} runs, {len(plan.decisions)} remote objects)",
        )
        out().print(
            f"dry run: nothing changed. `ita-vc gc --cloud` moves the removals to "
            f"{report.trash} (purged after safety_window_days).",
            markup=False,
        )
        return
    data = report.to_dict()
    out().print(
        f"remote {report.remote}: moved {data['total_files_trashed']} object(s) "
        f"({data['trashed_gb']:.4f} GB) to {report.trash}, archived {len(report.archived)}, "
        f"purged {data['total_files_purged']} ({data['freed_space_gb']:.4f} GB freed)"
        + (f", brought back {len(report.restored)} the plan keeps" if report.restored else "")
        + (f", settled {len(report.recovered)} interrupted step(s)" if report.recovered else ""),
        markup=False,
    )
    out().print(
        f"purge report {report.report_path}; audit log {report.audit_log_path}", markup=False
    )


@trash_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Objects in the trash (path, class, size, when, runs)."""
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.retention.trash import Trash
    from ita_vc.vcs.dvc import cache_dir
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    entries = Trash(workspace, cache_dir(workspace.root)).entries()
    if as_json:
        out().print_json(json.dumps([e.to_dict() for e in entries]))
        return
    columns = [
        Col("oid", no_wrap=True),
        Col("path", 2),
        Col("class", 3),
        Col("size", 4, justify="right", no_wrap=True),
        Col("trashed_at", 5, no_wrap=True),
        Col("runs", 1),
    ]
    cells = [
        [e.oid[:12], e.path, e.cls or "", _gb(e.size), e.trashed_at, ", ".join(e.runs)]
        for e in entries
    ]
    print_table(out(), columns, cells, title=f"{len(entries)} object(s) in the trash")


@trash_app.command("restore")
def restore_command(
    what: Annotated[str | None, typer.Argument(help="A run id or an object id.")] = None,
    all_objects: Annotated[bool, typer.Option("--all", help="Everything in the trash.")] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
    ] = 0,
) -> None:
    """Move objects back into the DVC cache (then `dvc checkout` works again)."""
    from ita_vc.cli.console import out
    from ita_vc.retention.apply import restore_from_trash
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    is_run = what is not None and what[:3] in ("bt_", "lv_", "tr_")
    restored = restore_from_trash(
        workspace,
        run_id=what if is_run else None,
        oid=None if is_run else what,
        everything=all_objects,
        wait=wait,
    )
    out().print(f"restored {len(restored)} object(s) into the DVC cache")


@trash_app.command("purge")
def purge_command(
    older_than: Annotated[
        float, typer.Option("--older-than", min=0, help="Days in the trash (>= 0).")
    ],
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another ita-vc command holding the workspace."),
    ] = 0,
) -> None:
    """Delete trash objects for good once they have been there this many days (objects the
    current retention plan keeps go back into the cache instead)."""
    from ita_vc.cli.console import out
    from ita_vc.retention.apply import purge_trash_safely
    from ita_vc.workspace import Workspace

    report = purge_trash_safely(Workspace.discover(), older_than, wait=wait)
    freed = sum(p["size"] for p in report.purged)
    out().print(
        f"purged {len(report.purged)} object(s), {_gb(freed)} freed"
        + (f"; brought back {len(report.restored)} the plan keeps" if report.restored else "")
    )
