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
    from rich.table import Table

    from ita_vc.cli.console import out
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    refs = PersistentStore(Workspace.discover()).list(kind=kind, symbol=symbol, run_id=run_id)
    if as_json:
        out().print_json(json.dumps([r.to_dict() for r in refs]))
        return
    optional = [k for k in ("symbol", "timeframe", "run_id") if any(k in r.meta for r in refs)]
    table = Table(title=f"{len(refs)} artifact(s)", caption="sha256: first 12 hex digits")
    table.add_column("path", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("format", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("sha256", no_wrap=True)
    for key in optional:
        table.add_column(key, overflow="fold")
    for ref in refs:
        extra = [str(ref.meta.get(key, "")) for key in optional]
        table.add_row(ref.path, ref.kind, ref.format, f"{ref.size:,}", ref.sha256[7:19], *extra)
    out().print(table)
