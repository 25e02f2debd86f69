"""``ita-vc runs plot``: recorded runs overlaid on one time axis (HTML or PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def plot_command(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Run ids: full, a unique prefix, @latest or @latest~N (`ita-vc runs list`).",
            show_default=False,
            metavar="RUN",
        ),
    ],
    metric: Annotated[
        str,
        typer.Option(
            help="equity (equity / initial cash), drawdown (% below the peak) or returns "
            "(cumulative return %)."
        ),
    ] = "equity",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Chart file: .html (interactive, self-contained) or .png; default "
            "dvc_plots/runs_plot.html in the workspace (ignored by git)."
        ),
    ] = None,
) -> None:
    """Overlay runs on one time axis, normalised to their initial cash, read from what each
    run committed (works after later runs overwrote results/)."""
    from ita_vc.cli.console import out as stdout
    from ita_vc.snapshot.plot import plot_runs
    from ita_vc.workspace import Workspace

    name = metric.strip().lower()
    path = plot_runs(Workspace.discover(), runs, name, out)
    stdout().print(f"wrote {path.resolve()} ({len(runs)} run(s), {name})", markup=False)
