"""``ita-vc preset ...``: named copies of params.yaml's run sections (docs/presets.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(
    help="Save params.yaml's run sections as named presets and apply them.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="Preset name: a-z, 0-9, _ . - (max 64).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _json(data: object) -> None:
    from ita_vc.cli.console import out

    out().print_json(json.dumps(data, sort_keys=True))


@app.command("save")
def save_command(
    name: Name,
    from_run: Annotated[
        str | None,
        typer.Option(
            "--from-run", metavar="RUN", help="Take the values of this run (id, prefix, @latest)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing preset.")] = False,
) -> None:
    """Save params.yaml's rule, data, backtest, grid and validation sections (or a run's) as
    presets/NAME.json."""
    from ita_vc.cli.console import out
    from ita_vc.presets import save_preset
    from ita_vc.workspace import Workspace

    preset = save_preset(Workspace.discover(), name, from_run=from_run, force=force)
    out().print(
        f"Saved {preset.file_path} from {preset.source} ({preset.sha256}); commit it to share it",
        markup=False,
    )


@app.command("list")
def list_command(as_json: AsJson = False) -> None:
    """List the presets: name, sections, source, created, sha256."""
    from ita_vc.cli.console import Col, err, out, print_table
    from ita_vc.errors import DataValidationError
    from ita_vc.presets import scan_presets
    from ita_vc.workspace import Workspace

    presets, problems = scan_presets(Workspace.discover())
    if as_json:
        _json([{**p.document(), "file_path": p.file_path} for p in presets])
    elif presets:
        print_table(
            out(),
            [
                Col("name", no_wrap=True),
                Col("sections", 2),
                Col("source", 1),
                Col("created", 3),
                Col("sha256", 4),
            ],
            [
                [p.name, ", ".join(p.values), p.source, p.created_at, p.sha256[7:19]]
                for p in presets
            ],
        )
    elif not problems:
        out().print("no presets yet: save one with `ita-vc preset save NAME`", markup=False)
    if problems:
        for line in problems:
            err().print(line, markup=False)
        raise DataValidationError(f"{len(problems)} preset file(s) are corrupt (listed above)")


@app.command("show")
def show_command(name: Name, as_json: AsJson = False) -> None:
    """Show a preset's values."""
    from ita_vc.cli.console import out
    from ita_vc.presets import load_preset
    from ita_vc.workspace import Workspace

    preset = load_preset(Workspace.discover(), name)
    if as_json:
        _json({**preset.document(), "file_path": preset.file_path})
        return
    from ita_vc.utils.mappings import flatten

    console = out()
    console.print(
        f"{preset.name} ({preset.file_path}): from {preset.source}, {preset.created_at}\n"
        f"sha256 {preset.sha256}",
        markup=False,
    )
    for key, value in flatten(preset.values, lists=False).items():
        console.print(f"  {key}: {json.dumps(value)}", markup=False)


@app.command("diff")
def diff_command(a: Name, b: Name, as_json: AsJson = False) -> None:
    """The dotted keys that differ from preset A to preset B."""
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.presets import diff_presets, load_preset
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    old, new = load_preset(workspace, a), load_preset(workspace, b)
    diff = diff_presets(old, new)
    if as_json:
        _json({"a": old.name, "b": new.name, **diff.to_json()})
        return
    if diff.empty:
        out().print(f"no differences ({old.sha256})", markup=False)
        return
    rows = [[k, "changed", json.dumps(o), json.dumps(n)] for k, (o, n) in diff.changed.items()]
    rows += [[k, "added", "", json.dumps(v)] for k, v in diff.added.items()]
    rows += [[k, "removed", json.dumps(v), ""] for k, v in diff.removed.items()]
    print_table(
        out(),
        [Col("key", no_wrap=True), Col("change", 1), Col("old"), Col("new")],
        sorted(rows),
        title=f"{old.name} -> {new.name}",
    )


@app.command("apply")
def apply_command(
    name: Name,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the new params.yaml; write nothing.")
    ] = False,
) -> None:
    """Write the preset's sections into params.yaml (comments kept) and record
    `preset: {name, sha256}` there."""
    from ita_vc.cli.console import out
    from ita_vc.presets import apply_preset
    from ita_vc.workspace import Workspace

    applied = apply_preset(Workspace.discover(), name, dry_run=dry_run)
    ref = applied.preset
    if dry_run:
        import difflib

        diff = difflib.unified_diff(
            applied.before.splitlines(keepends=True),
            applied.after.splitlines(keepends=True),
            "params.yaml",
            f"params.yaml (preset {ref.name})",
        )
        text = "".join(diff)
        out().print(text or "params.yaml already holds this preset", markup=False, end="")
        if text:
            out().print("(dry run: nothing written)", markup=False)
        return
    if applied.written:
        out().print(
            f"Applied {ref.file_path} to params.yaml ({ref.sha256}); `git diff params.yaml` "
            "shows the change",
            markup=False,
        )
    else:
        out().print(f"params.yaml already holds preset {ref.name} ({ref.sha256})", markup=False)
