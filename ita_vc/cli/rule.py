"""``ita-vc rule ...``: the Rule & Version Registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ita_vc.rules import RuleRegistry

app = typer.Typer(help="Create, version, inspect and check trading rules.", no_args_is_help=True)

Wait = Annotated[
    float,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        help="Wait this long for another ita-vc command holding the workspace (default 0: refuse "
        "at once, exit 10).",
    ),
]


def _registry() -> RuleRegistry:
    from ita_vc.rules import RuleRegistry
    from ita_vc.workspace import Workspace

    return RuleRegistry(Workspace.discover())


@app.command("new")
def new_command(
    setup_id: Annotated[str, typer.Argument(help="Setup id: letters, digits, _ . - (max 64).")],
    from_file: Annotated[
        Path | None,
        typer.Option("--from", help="Start from this YAML file (seed format accepted)."),
    ] = None,
    author: Annotated[str | None, typer.Option(help="Author (default: git user.name).")] = None,
    wait: Wait = 0,
) -> None:
    """Create rules/SETUP_ID/v1.0.yaml with its params_hash."""
    from ita_vc.cli.console import out

    rule = _registry().new(setup_id, from_file=from_file, author=author, wait=wait)
    out().print(f"Created {rule.path} ({rule.params_hash})")


@app.command("bump")
def bump_command(
    setup_id: Annotated[str, typer.Argument(help="Setup id.")],
    major: Annotated[bool, typer.Option("--major", help="v1.2 -> v2.0.")] = False,
    minor: Annotated[bool, typer.Option("--minor", help="v1.2 -> v1.3 (the default).")] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", "-S", help="key.path=value (value parsed as YAML); repeatable."),
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from", help="Take the parameters from this YAML file.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why; kept in lifecycle.yaml.")] = None,
    author: Annotated[str | None, typer.Option(help="Author (default: git user.name).")] = None,
    wait: Wait = 0,
) -> None:
    """Write the next version from the latest one (comments and key order kept)."""
    from ita_vc.cli.console import out
    from ita_vc.errors import RuleValidationError

    if major and minor:
        raise RuleValidationError("choose one of --major and --minor")
    rule = _registry().bump(
        setup_id,
        major=major,
        sets=sets or [],
        from_file=from_file,
        reason=reason,
        author=author,
        wait=wait,
    )
    out().print(f"Created {rule.path} ({rule.params_hash})")


@app.command("rehash")
def rehash_command(
    ref: Annotated[str, typer.Argument(help="SETUP_ID or SETUP_ID@vX.Y (default: latest).")],
    wait: Wait = 0,
) -> None:
    """Recompute params_hash of a version never committed, after editing it by hand.

    Comments and key order are kept; a committed version is refused (it is immutable: use
    `ita-vc rule bump`).
    """
    from ita_vc.cli.console import out
    from ita_vc.rules.registry import parse_version_ref

    setup_id, version = parse_version_ref(ref)
    result = _registry().rehash(setup_id, version, wait=wait)
    rule = result.rule
    if result.changed:
        out().print(
            f"Rehashed {rule.path}: params_hash {result.old_hash or '(none)'} -> "
            f"{rule.params_hash}",
            markup=False,
        )
    else:
        out().print(
            f"{rule.path}: params_hash is already right ({rule.params_hash}); nothing written",
            markup=False,
        )


@app.command("list")
def list_command(
    active: Annotated[bool, typer.Option("--active", help="Only active versions.")] = False,
    setup: Annotated[str | None, typer.Option("--setup", help="Only this setup.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List rule versions: setup, version, status, params_hash, created."""
    from ita_vc.cli.console import Col, out, print_table

    rows = _registry().list(active_only=active, setup_id=setup)
    if as_json:
        out().print_json(
            json.dumps(
                [
                    {
                        "setup_id": r.setup_id,
                        "version": r.version.tag,
                        "status": r.status,
                        "active": r.active,
                        "deprecation_reason": r.deprecation_reason,
                        "params_hash": r.params_hash,
                        "created": r.created,
                        "author": r.author,
                    }
                    for r in rows
                ]
            )
        )
        return
    columns = [
        Col("setup", no_wrap=True),
        Col("version", no_wrap=True),
        Col("status"),
        Col("params_hash", 1, no_wrap=True),
        Col("created", 2, no_wrap=True),
        Col("author", 3),
    ]
    cells = [
        [
            r.setup_id,
            r.version.tag,
            r.status if not r.deprecation_reason else f"deprecated: {r.deprecation_reason}",
            r.params_hash[7:19],
            r.created,
            r.author,
        ]
        for r in rows
    ]
    print_table(out(), columns, cells, title=f"{len(rows)} rule version(s)")


@app.command("show")
def show_command(
    ref: Annotated[str, typer.Argument(help="SETUP_ID or SETUP_ID@vX.Y (default: latest).")],
) -> None:
    """Show a rule version with its lifecycle status."""
    from ita_vc.cli.console import out
    from ita_vc.rules.registry import parse_version_ref

    registry = _registry()
    setup_id, version = parse_version_ref(ref)
    rule = registry.get(setup_id, version)
    entry = registry.status(setup_id, rule.version)
    console = out()
    header = f"{rule.setup_id} {rule.version.tag}  [{entry.status}]  {rule.path}"
    console.print(header, markup=False)
    if entry.deprecation_reason:
        console.print(f"deprecated: {entry.deprecation_reason}")
    console.print(registry.workspace.path(rule.path).read_text("utf-8"), markup=False)


@app.command("diff")
def diff_command(
    setup_id: Annotated[str, typer.Argument(help="Setup id.")],
    a: Annotated[str, typer.Argument(help="Old version (1.0 or v1.0).")],
    b: Annotated[str, typer.Argument(help="New version.")],
) -> None:
    """Semantic, field-by-field difference between two versions."""
    from ita_vc.cli.console import Col, out, print_table

    registry = _registry()
    changes = registry.diff(setup_id, a, b)
    old, new = registry.get(setup_id, a), registry.get(setup_id, b)
    if not changes:
        out().print(f"no differences ({old.params_hash})")
        return
    print_table(
        out(),
        [Col("field"), Col("change", 1), Col("old"), Col("new")],
        [[c.field, c.change, json.dumps(c.old), json.dumps(c.new)] for c in changes],
        title=f"{setup_id}: {old.version.tag} -> {new.version.tag}",
        caption=f"params_hash {old.params_hash[7:19]} -> {new.params_hash[7:19]}",
    )


@app.command("activate")
def activate_command(
    setup_id: Annotated[str, typer.Argument(help="Setup id.")],
    version: Annotated[str, typer.Argument(help="Version (1.2 or v1.2).")],
    wait: Wait = 0,
) -> None:
    """Make a version the active one (the others of the setup become inactive)."""
    from ita_vc.cli.console import out

    resolved = _registry().activate(setup_id, version, wait=wait)
    out().print(f"{setup_id} {resolved.tag} is now active")


@app.command("deprecate")
def deprecate_command(
    setup_id: Annotated[str, typer.Argument(help="Setup id.")],
    version: Annotated[str, typer.Argument(help="Version (1.2 or v1.2).")],
    reason: Annotated[str, typer.Option(help="Why it is deprecated (required).")],
    wait: Wait = 0,
) -> None:
    """Deprecate a version (it becomes inactive; the reason is recorded)."""
    from ita_vc.cli.console import out

    resolved = _registry().deprecate(setup_id, version, reason=reason, wait=wait)
    out().print(f"{setup_id} {resolved.tag} is deprecated: {reason}")


@app.command("check")
def check_command(
    files: Annotated[
        list[str] | None,
        typer.Argument(help="Check these working-tree files instead of the staged state."),
    ] = None,
    against: Annotated[
        str | None, typer.Option(help="Check every commit since the merge base with REV (for CI).")
    ] = None,
    all_files: Annotated[
        bool, typer.Option("--all", help="Check every rule file in the working tree.")
    ] = False,
) -> None:
    """Check rule files; by default what is staged for the next commit (the pre-commit hook)."""
    from ita_vc.errors import RuleValidationError
    from ita_vc.rules.check import run_rule_check

    report = run_rule_check(files=files or [], against=against, all_files=all_files)
    if not report.ok:
        raise RuleValidationError(report.describe())
    typer.echo(f"rule check: {len(report.checked)} file(s) OK")
