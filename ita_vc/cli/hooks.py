"""``ita-vc hooks ...``: git hooks that run the rule checks."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Install or remove the git hooks.", no_args_is_help=True)


@app.command("install")
def install_command(
    dvc: Annotated[
        bool | None,
        typer.Option(
            "--dvc/--no-dvc", help="Also install DVC's hooks (default: in a DVC repository)."
        ),
    ] = None,
) -> None:
    """Install the pre-commit hook (keeps an existing hook as pre-commit.legacy).

    The hooks name this environment's python and dvc by absolute path: after moving or
    recreating the virtualenv, run it again (it updates its own hooks in place).
    """
    from ita_vc.cli.console import out
    from ita_vc.rules.hook_install import install_hooks
    from ita_vc.workspace import find_root

    report = install_hooks(find_root(), with_dvc=dvc)
    console = out()
    for item in report.moved:
        console.print(f"moved     {item}", markup=False)
    for item in report.written:
        console.print(f"wrote     {report.hooks_dir / item}", markup=False)
    for item in report.unchanged:
        console.print(f"unchanged {report.hooks_dir / item} (already up to date)", markup=False)
    for item in report.kept:
        console.print(f"kept      {report.hooks_dir / item} (not ita-vc's)", markup=False)


@app.command("uninstall")
def uninstall_command() -> None:
    """Remove every hook `hooks install` wrote (a pre-commit.legacy is put back)."""
    from ita_vc.cli.console import out
    from ita_vc.rules.hook_install import uninstall_hooks
    from ita_vc.workspace import find_root

    report = uninstall_hooks(find_root())
    console = out()
    if not report.removed:
        console.print("no ita-vc hook installed; nothing changed")
    for item in report.removed:
        console.print(f"removed {item} from {report.hooks_dir}", markup=False)
    for item in report.moved:
        console.print(f"moved     {item}", markup=False)
