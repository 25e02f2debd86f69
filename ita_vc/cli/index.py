"""``ita-vc index ...``: the SQLite metadata index (a derived cache)."""

from __future__ import annotations

import time

import typer

app = typer.Typer(help="Manage the metadata index.", no_args_is_help=True)


@app.command("rebuild")
def rebuild_command() -> None:
    """Recreate the index from the files in the workspace (cures a deleted or corrupt index)."""
    from ita_vc.cli.console import err, out
    from ita_vc.features import sync_feature_cache
    from ita_vc.snapshot.runs import sync_runs
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    store = PersistentStore(workspace)
    started = time.perf_counter()
    report = store.rebuild()
    runs = len(sync_runs(workspace))
    sync_feature_cache(workspace)  # the feature cache's rows, from its files (docs/cache.md)
    elapsed = time.perf_counter() - started
    out().print(
        f"Index rebuilt: {report.count} artifact(s), {runs} run(s) in {elapsed:.2f} s -> "
        f"{store.index.path}",
        markup=False,
    )
    if report.skipped:
        err().print(
            f"skipped {len(report.skipped)} file(s) that cannot be artifacts:", markup=False
        )
        for path, reason in report.skipped:
            err().print(f"  {path}: {reason}", markup=False)
