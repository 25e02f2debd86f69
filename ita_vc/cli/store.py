"""``ita-vc store ...``: look at the Persistent Store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

app = typer.Typer(help="Inspect stored artifacts.", no_args_is_help=True)


@app.command("ls")
def ls_command(
    kind: Annotated[str | None, typer.Option(help="Only this artifact kind.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Only this symbol.")] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="The files of this run (id, unique prefix, @latest or @latest~N): its manifest "
            "or outputs, attached artifacts and artifacts saved with its run_id.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List indexed artifacts (path, kind, format, size, hash, symbol, timeframe, run)."""
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.store import PersistentStore
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    if run_id is not None:
        _run_files(workspace, run_id, kind=kind, symbol=symbol, as_json=as_json)
        return
    refs = PersistentStore(workspace).list(kind=kind, symbol=symbol, run_id=run_id)
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


def _run_files(
    workspace: Workspace, ref: str, *, kind: str | None, symbol: str | None, as_json: bool
) -> None:
    """``store ls --run-id``: the run's linked files (manifest or snapshot outputs, attached;
    left out when --kind or --symbol filters) and the artifacts whose metadata names it."""
    from ita_vc.cli.console import Col, out, print_table
    from ita_vc.errors import UsageError
    from ita_vc.snapshot.capture import SnapshotStore
    from ita_vc.snapshot.links import linked_artifacts
    from ita_vc.snapshot.manifest import mime_of
    from ita_vc.snapshot.records import local_manifest_files, log_records
    from ita_vc.snapshot.runs import resolve_run_id
    from ita_vc.store import PersistentStore

    records = log_records(workspace)
    try:
        rid = resolve_run_id(workspace, ref, extra=records)
    except UsageError as exc:
        if not ref.strip() or ref.startswith("@") or "ambiguous" in str(exc):
            raise
        rid = ref  # not a recorded run: artifacts saved with this run_id only
    linked = (
        linked_artifacts(workspace, rid)
        if kind is None and symbol is None and rid in SnapshotStore(workspace).run_ids()
        else []
    )
    if not linked and kind is None and symbol is None and rid in records:
        linked = local_manifest_files(workspace, records[rid])  # grid run, validate, ...
    rows = {row["path"]: row for row in linked}
    for art in PersistentStore(workspace).list(kind=kind, symbol=symbol, run_id=rid):
        rows.setdefault(
            art.path,
            {
                "run_id": rid,
                "path": art.path,
                "name": art.path.rsplit("/", 1)[-1],
                "sha256": art.sha256,
                "size": art.size,
                "mime": mime_of(art.path),
                "source": "meta",
            },
        )
    listed = [rows[p] for p in sorted(rows)]
    if as_json:
        out().print_json(json.dumps(listed))
        return
    columns = [
        Col("path", no_wrap=True),
        Col("size", 1, justify="right", no_wrap=True),
        Col("hash", 2, no_wrap=True),
        Col("mime", 3),
        Col("source", 2, no_wrap=True),
    ]
    cells = [
        [r["path"], f"{r['size']:,}", _short(r["sha256"]), r["mime"], r["source"]] for r in listed
    ]
    print_table(
        out(),
        columns,
        cells,
        title=f"{len(listed)} file(s) of run {rid}",
        caption="hash: sha256 (or DVC md5 for runs without a manifest), first 12 hex digits",
    )


def _short(value: str) -> str:
    """``sha256:abcdef...`` -> ``abcdef012345``; ``md5:...`` keeps its scheme."""
    scheme, _, digits = value.partition(":")
    return digits[:12] if scheme == "sha256" else f"{scheme}:{digits[:12]}"


@app.command("attach")
def attach_command(
    run_id: Annotated[str, typer.Argument(help="Run id, a unique prefix of one, @latest.")],
    path: Annotated[str, typer.Argument(help="A stored artifact (a file under a store folder).")],
) -> None:
    """Link an existing artifact to a recorded run (provenance/RUN.attached.json: commit it)."""
    import os

    from ita_vc.cli.console import out
    from ita_vc.snapshot.links import attach_artifact
    from ita_vc.snapshot.runs import resolve_run_id
    from ita_vc.workspace import Workspace

    workspace = Workspace.discover()
    rid = resolve_run_id(workspace, run_id)
    row = attach_artifact(workspace, rid, os.path.abspath(path))  # from the current folder
    out().print(f"attached {row['path']} ({row['sha256'][:19]}) to {rid}", markup=False)
