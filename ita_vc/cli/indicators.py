"""``ita-vc indicators ...``: the indicator catalog."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="The indicator catalog (configs/indicators.yaml).", no_args_is_help=True)


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List indicators with each parameter's type, min, max, step and default."""
    from rich.table import Table

    from ita_vc.catalog import load_catalog
    from ita_vc.cli.console import out
    from ita_vc.errors import NotInitializedError
    from ita_vc.workspace import find_root

    try:
        catalog = load_catalog(find_root())
    except NotInitializedError:
        catalog = load_catalog()
    if as_json:
        out().print_json(
            json.dumps(
                {
                    name: {
                        "description": spec.description,
                        "constraints": list(spec.constraints),
                        "params": {p: s.to_dict() for p, s in spec.params.items()},
                    }
                    for name, spec in catalog.indicators.items()
                }
            )
        )
        return
    table = Table(title="indicator catalog")
    for column in ("indicator", "param", "type", "min", "max", "step", "default"):
        table.add_column(column)
    for name, spec in catalog.indicators.items():
        for i, (pname, p) in enumerate(spec.params.items()):
            table.add_row(
                name if i == 0 else "",
                pname,
                p.type,
                f"{p.min:g}",
                f"{p.max:g}",
                f"{p.step:g}",
                str(p.default),
            )
    out().print(table)
