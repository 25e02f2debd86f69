"""``ita-vc lineage PATH|HASH``: which runs produced a file or hash, and which runs used it."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def lineage_command(
    target: Annotated[
        str,
        typer.Argument(
            help="A file in the workspace, or a hash or prefix of one: sha256:<hex>, md5:<hex>, "
            "a data hash, or at least 6 hex digits."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which runs produced this file (manifest, outputs, attached) and which runs used it
    (data, dvc.lock deps, params hash, preset), with each run's rule version and commit.
    Nothing found is not an error: the message says so and the exit code is 0."""
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.snapshot.links import lineage
    from ita_vc.workspace import Workspace

    result = lineage(Workspace.discover(), target)
    console = out()
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    if not result.found:
        console.print(
            f"no run produced or used {target} (matched: {', '.join(result.hashes)})",
            markup=False,
        )
        return
    columns = [
        Col("role", no_wrap=True),
        Col("run_id", no_wrap=True),
        Col("rule", 1, no_wrap=True),
        Col("commit", 2, no_wrap=True),
        Col("via", 3),
    ]
    cells = [
        [role, hit.run_id, hit.rule or "-", (hit.commit or "-")[:10], hit.via]
        for role, hits in (("produced", result.produced), ("used", result.used))
        for hit in hits
    ]
    print_table(
        console,
        columns,
        cells,
        title=f"lineage of {target}: produced by {len(result.produced)}, "
        f"used by {len(result.used)}",
    )
