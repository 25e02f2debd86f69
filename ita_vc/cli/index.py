"""``ita-vc index ...``: the SQLite metadata index (a derived cache)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage the metadata index.", no_args_is_help=True)


@app.command("rebuild")
def rebuild_command() -> None:
    """Recreate the index from the files in the workspace (cures a deleted or corrupt index):
    artifacts, runs, run links, rules, presets and the feature cache's entries."""
    from ita_vc.cli.console import err, out
    from ita_vc.index_rebuild import rebuild_index
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    report = rebuild_index(workspace)
    tables = ", ".join(f"{count} {name}" for name, count in report.tables.items())
    out().print(
        f"Index rebuilt: {report.artifacts} artifact(s), {tables} in {report.seconds:.2f} s -> "
        f"{workspace.index_path}",
        markup=False,
    )
    if report.skipped:
        err().print(
            f"skipped {len(report.skipped)} file(s) that cannot be artifacts:", markup=False
        )
        for path, reason in report.skipped:
            err().print(f"  {path}: {reason}", markup=False)
