"""``ita-vc init``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def init_command(
    path: Annotated[Path, typer.Argument(help="Folder to turn into a workspace.")] = Path("."),
    hooks: Annotated[bool, typer.Option(
        "--hooks", help="Also install the rule-check git hooks (ita-vc hooks install).")] = False,
) -> None:
    """Create an ita-vc workspace: git + DVC, configs/config.yaml, params.yaml, dvc.yaml, rules/.

    Idempotent: existing files are never overwritten; a second run says nothing changed.
    """
    from ita_vc.cli.console import out
    from ita_vc.initialize import init_workspace

    report = init_workspace(path, install_hooks=hooks)
    console = out()
    if not report.changed:
        console.print(f"{report.root} is already an ita-vc workspace; nothing changed.")
        return
    console.print(f"Initialized ita-vc workspace in {report.root}")
    for item in report.created:
        console.print(f"  created {item}")
    for item in report.kept:
        console.print(f"  kept    {item}")
    console.print("Next: git add -A && git commit -m 'ita-vc init'")
    if not hooks:
        console.print(
            "Protect committed rule versions with a pre-commit check, either\n"
            "  ita-vc hooks install              (a git hook, keeps existing hooks), or\n"
            "  the pre-commit framework: hook id ita-vc-rule-check (see docs/rules.md)"
        )
