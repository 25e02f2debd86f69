"""``ita-vc init``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def init_command(
    path: Annotated[Path, typer.Argument(help="Folder to turn into a workspace.")] = Path("."),
    hooks: Annotated[
        bool,
        typer.Option(
            "--hooks", help="Also install the rule-check git hooks (ita-vc hooks install)."
        ),
    ] = False,
    upgrade: Annotated[
        bool,
        typer.Option(
            "--upgrade",
            help="Show what today's templates change in an existing workspace "
            "(dvc.yaml engine pins, plot template, .gitignore); write it with --yes.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --upgrade: write the changes.")] = False,
) -> None:
    """Create an ita-vc workspace: git + DVC, configs/config.yaml, params.yaml, dvc.yaml, rules/.

    Idempotent: existing files are never overwritten; a second run says nothing changed.
    `--upgrade` brings a workspace made by an older release up to date (diff first).
    """
    from ita_vc.cli.console import out
    from ita_vc.initialize import init_workspace

    if yes and not upgrade:
        from ita_vc.errors import UsageError

        raise UsageError("--yes goes with --upgrade")
    if upgrade:
        _upgrade(path, yes)
        return
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
    console.print(
        "Next steps:\n"
        "  1. git add -A && git commit -m 'ita-vc init'\n"
        "  2. ita-vc data import FILE --market generic --symbol NAME --commit   "
        "(candles: CSV, Binance/Bybit dumps, parquet)\n"
        "  3. ita-vc rule new NAME && git add rules && git commit -m 'rule NAME'\n"
        "  4. set rule.setup_id, data.market and data.symbol in params.yaml, commit it\n"
        "  5. ita-vc run   (dvc repro + snapshot + commit), then ita-vc runs list"
    )
    if not hooks:
        console.print(
            "Protect committed rule versions with a pre-commit check, either\n"
            "  ita-vc hooks install              (a git hook, keeps existing hooks), or\n"
            "  the pre-commit framework: hook id ita-vc-rule-check (see docs/rules.md)"
        )


def _upgrade(path: Path, yes: bool) -> None:
    from ita_vc.cli.console import out
    from ita_vc.upgrade import apply_upgrade, plan_upgrade, upgrade_notes
    from ita_vc.workspace import find_root

    root = find_root(path)
    changes = plan_upgrade(root)
    console = out()
    for note in upgrade_notes(root):
        console.print(f"note: {note}", markup=False)
    if not changes:
        console.print(
            f"{root} is up to date with this ita-vc's templates; nothing to change.", markup=False
        )
        return
    for change in changes:
        console.print(f"# {change.path}: {change.why}", markup=False)
        console.print(change.diff(), markup=False, highlight=False, end="")
    if not yes:
        console.print(
            f"{len(changes)} file(s) would change; nothing written. Run "
            "`ita-vc init --upgrade --yes` to write them.",
            markup=False,
        )
        return
    apply_upgrade(root, changes)
    console.print(
        f"wrote {len(changes)} file(s); commit them (git add -A && git commit), then "
        "`dvc status` shows the stages whose commands changed.",
        markup=False,
    )
