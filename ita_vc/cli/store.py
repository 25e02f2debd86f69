"""``ita-vc store ...``: look at the Persistent Store."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Inspect stored artifacts.", no_args_is_help=True)


@app.command("ls")
def ls_command(
    kind: Annotated[str | None, typer.Option(help="Only this artifact kind.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Only this symbol.")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Only this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List indexed artifacts (path, kind, format, size, hash, symbol, timeframe, run)."""
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    refs = PersistentStore(Workspace.discover()).list(kind=kind, symbol=symbol, run_id=run_id)
    if as_json:
        out().print_json(json.dumps([r.to_dict() for r in refs]))
        return
    optional = [k for k in ("symbol", "timeframe", "run_id") if any(k in r.meta for r in refs)]
    columns = [
        Col("path", no_wrap=True),
        Col("kind", 2, no_wrap=True),
        Col("format", 3, no_wrap=True),
        Col("size", 1, justify="right", no_wrap=True),
        Col("sha256", 4, no_wrap=True),
        *(Col(key, 5, no_wrap=key == "run_id") for key in optional),
    ]
    cells = [
        [
            ref.path,
            ref.kind,
            ref.format,
            f"{ref.size:,}",
            ref.sha256[7:19],
            *(str(ref.meta.get(key, "")) for key in optional),
        ]
        for ref in refs
    ]
    print_table(
        out(),
        columns,
        cells,
        title=f"{len(refs)} artifact(s)",
        caption="sha256: first 12 hex digits",
    )
