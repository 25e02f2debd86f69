"""``ita-vc hooks ...``: git hooks that run the rule checks."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Install or remove the git hooks.", no_args_is_help=True)


@app.command("install")
def install_command(
    dvc: Annotated[bool | None, typer.Option(
        "--dvc/--no-dvc", help="Also install DVC's hooks (default: in a DVC repository).")] = None,
) -> None:
    """Install the pre-commit hook (keeps an existing hook as pre-commit.legacy)."""
    from ita_vc.cli.console import out
    from ita_vc.rules.hooks import install_hooks
    from ita_vc.workspace import find_root

    report = install_hooks(find_root(), with_dvc=dvc)
    console = out()
    for item in report.moved:
        console.print(f"moved   {item}")
    for item in report.written:
        console.print(f"wrote   {report.hooks_dir / item}")
    for item in report.kept:
        console.print(f"kept    {report.hooks_dir / item}")


@app.command("uninstall")
def uninstall_command() -> None:
    """Remove ita-vc's pre-commit hook (a pre-commit.legacy is put back)."""
    from ita_vc.cli.console import out
    from ita_vc.rules.hooks import uninstall_hooks
    from ita_vc.workspace import find_root

    report = uninstall_hooks(find_root())
    if not report.written:
        out().print("no ita-vc hook installed; nothing changed")
    for item in report.written + report.moved:
        out().print(item)
