"""The runs registry: list, show, diff and pin recorded runs.

Snapshot files (git) are the source of truth; the index's ``runs`` table is a cache kept in
step with them. Pins are git tags ``ita/keep/<run_id>`` on the commit that recorded the run:
durable, shared with ``git push --tags``, and seen by a plain ``dvc gc -T`` as well.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ita_vc.errors import ItaVcError, UsageError
from ita_vc.snapshot.capture import SnapshotStore, check_run_id, run_row
from ita_vc.snapshot.history import recorded_runs
from ita_vc.utils.mappings import flatten
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from collections.abc import Callable

    from ita_vc.workspace import Workspace

__all__ = [
    "KEEP_TAG_PREFIX",
    "DiffRow",
    "diff_runs",
    "keep_run",
    "list_runs",
    "pinned_runs",
    "resolve_run_id",
    "sync_runs",
]

KEEP_TAG_PREFIX = "ita/keep/"


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One line of ``runs diff``."""

    section: str
    key: str
    a: object
    b: object


_LATEST = re.compile(r"@latest(?:~(\d+))?")


def resolve_run_id(workspace: Workspace, ref: str) -> str:
    """The run id ``ref`` names: a full id, a unique prefix of one (``bt_2025_11_10_00``),
    ``@latest`` (the newest run recorded in this checkout) or ``@latest~N`` (N runs before it).

    A full, well-formed id is returned as it is (it may name a run of another branch).

    Raises:
        UsageError: no run matches, the prefix is ambiguous (the candidates are named), or
            ``@latest~N`` goes past the oldest run.
    """
    ids = SnapshotStore(workspace).run_ids()  # oldest first
    latest = _LATEST.fullmatch(ref.strip())
    if latest:
        back = int(latest.group(1) or 0)
        if back >= len(ids):
            raise UsageError(
                f"{ref}: only {len(ids)} run(s) are recorded in this checkout"
                if ids
                else f"{ref}: no run is recorded in this checkout yet"
            )
        return ids[-1 - back]
    if ref in ids:
        return ref
    matches = [run_id for run_id in ids if run_id.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (
            f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        )
        raise UsageError(f"run id prefix {ref!r} is ambiguous: {shown}")
    try:
        return check_run_id(ref)
    except UsageError:
        raise UsageError(
            f"no run matches {ref!r}: give a run id, a unique prefix of one, @latest or "
            "@latest~N (`ita-vc runs list` shows them)"
        ) from None


def sync_runs(workspace: Workspace) -> list[dict[str, Any]]:
    """Index rows for every snapshot file (missing ones are added), oldest first."""
    provenance = SnapshotStore(workspace)
    indexed = {row["run_id"]: row for row in provenance.store.index.runs()}
    rows = []
    for run_id in provenance.run_ids():
        row = indexed.get(run_id)
        if row is None:
            row = run_row(provenance.load_snapshot(run_id), provenance.snapshot_relpath(run_id))
            provenance.store.index.upsert_run(row)
        rows.append(row)
    return rows


def list_runs(
    workspace: Workspace,
    *,
    setup_id: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Runs (newest first, or by a metric descending), with their key metrics and pin state.

    Raises:
        ItaVcError: an unknown sort metric. UsageError: a limit below 1.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"--limit must be a whole number >= 1, got {limit!r}")
    pins = pinned_runs(workspace)
    provenance = SnapshotStore(workspace)
    rows = []
    for row in sync_runs(workspace):
        if setup_id and row["setup_id"] != setup_id:
            continue
        entry = dict(row)
        entry["metrics"] = json.loads(row["metrics_json"])
        entry["kept"] = row["run_id"] in pins
        rows.append(entry)
    if sort:
        values = {}
        for entry in rows:
            metrics = provenance.load_snapshot(entry["run_id"]).get("metrics") or {}
            if sort not in metrics:
                raise ItaVcError(f"unknown metric {sort!r} to sort by")
            values[entry["run_id"]] = metrics[sort]
        rows.sort(key=lambda e: (values[e["run_id"]] is None, -(values[e["run_id"]] or 0)))
        for entry in rows:
            entry["metrics"][sort] = values[entry["run_id"]]
    else:
        rows.reverse()
    return rows[:limit] if limit else rows


def diff_runs(workspace: Workspace, a: str, b: str) -> list[DiffRow]:
    """Params, rule, data, code and metrics of two runs side by side (differences only)."""
    provenance = SnapshotStore(workspace)
    sa, sb = provenance.load_snapshot(a), provenance.load_snapshot(b)
    sections: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "params": lambda s: flatten(s.get("params") or {}, lists=False),
        "rule": lambda s: {k: s.get(k) for k in ("setup_id", "rule_version", "params_hash")},
        "data": lambda s: {
            k: s.get(k) for k in ("market", "symbol", "timeframe", "data_hash", "data_range")
        },
        "code": lambda s: {
            "git_commit_hash": s.get("git_commit_hash"),
            "git_dirty": s.get("git_dirty"),
            "engine_version": s.get("engine_version"),
            "config_hash": s.get("config_hash"),
            "python": (s.get("env") or {}).get("python"),
            "packages_sha256": (s.get("env") or {}).get("packages_sha256"),
        },
        "metrics": lambda s: dict(s.get("metrics") or {}),
    }
    rows = []
    for section, pick in sections.items():
        va, vb = pick(sa), pick(sb)
        for key in list(dict.fromkeys([*va, *vb])):
            if va.get(key) != vb.get(key):
                rows.append(DiffRow(section, key, va.get(key), vb.get(key)))
    return rows


def pinned_runs(workspace: Workspace) -> dict[str, str]:
    """``{run_id: reason}`` of every ``ita/keep/<run_id>`` tag."""
    raw = gitcli.git(
        [
            "for-each-ref",
            f"refs/tags/{KEEP_TAG_PREFIX}",
            "--format=%(refname:strip=4)%09%(contents:subject)",
        ],
        workspace.root,
    )
    pins = {}
    for line in raw.decode().splitlines():
        run_id, _, reason = line.partition("\t")
        if run_id:
            pins[run_id] = reason
    return pins


def keep_run(
    workspace: Workspace, run_id: str, reason: str | None = None, *, wait: float = 0
) -> str:
    """Pin a run: an annotated tag ``ita/keep/<run_id>`` on the commit that recorded it (on
    whichever branch or tag it is), under the workspace lock.

    Raises:
        UsageError: a malformed run id.
        ItaVcError: no such run on any ref, or its snapshot is not committed yet.
        WorkspaceLockedError: another command holds the workspace.
    """
    check_run_id(run_id)
    with workspace.lock(timeout=wait, purpose=f"ita-vc runs keep {run_id}"):
        recorded = recorded_runs(workspace).get(run_id)
        if recorded is None:
            raise ItaVcError(
                f"no run {run_id}: no snapshot of it is committed on any branch or "
                "tag, nor in the working tree"
            )
        if not recorded.commits:
            raise ItaVcError(f"{recorded.path} is not committed yet: commit the run, then pin it")
        tag = f"{KEEP_TAG_PREFIX}{run_id}"
        message = reason or "kept"
        gitcli.git(["tag", "-f", "-a", tag, "-m", message, recorded.commits[0]], workspace.root)
    return tag
