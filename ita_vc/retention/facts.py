"""Facts for the retention plan, gathered with DVC's own APIs.

For every revision (all commits of every branch and tag, plus the workspace) the outs DVC sees
there (``repo.brancher`` + ``repo.index.outs``; directory outs expanded through their tree
objects) give the objects each revision uses, with their paths; commit times give ages. The
cache's object database (``repo.cache.local.all()``) and the trash give what is stored. Runs come
from the snapshots committed on every ref (and the working tree), pins from git tags, tag
exceptions from the commits that hold the snapshots. Nothing here modifies anything.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.retention.policy import ObjectFacts, RetentionPolicy, RunFacts
from ita_vc.retention.trash import Trash
from ita_vc.rules.registry import RuleRegistry
from ita_vc.snapshot.history import recorded_runs
from ita_vc.snapshot.runs import pinned_runs
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import check_pipeline_files, check_pipeline_history, scan_revisions

if TYPE_CHECKING:
    from collections.abc import Callable

    from ita_vc.workspace import Workspace

__all__ = ["Facts", "Inventory", "gather_facts"]


@dataclass
class Facts:
    """Everything the planner needs, and the numbers behind it."""

    objects: list[ObjectFacts]
    runs: list[RunFacts]
    active_versions: set[tuple[str, str]]
    revisions: int
    cache_dir: Path
    missing: int  # referenced by some revision, absent from the cache


@dataclass(frozen=True)
class Inventory:
    """What a store holds: object id -> size, for its objects and for its trash (the local
    cache by default; a DVC remote for ``gc --cloud``)."""

    stored: dict[str, int]
    trashed: dict[str, int]


def _commit_times(root: Path) -> dict[str, int]:
    raw = gitcli.git(["log", "--all", "--format=%H %ct"], root, check=False).decode()
    times = {}
    for line in raw.splitlines():
        sha, _, stamp = line.partition(" ")
        if stamp:
            times[sha] = int(stamp)
    return times


def _tags(root: Path) -> dict[str, str]:
    """``{tag name: commit}``."""
    raw = gitcli.git(
        ["for-each-ref", "refs/tags", "--format=%(refname:strip=2) %(objectname) %(*objectname)"],
        root,
        check=False,
    ).decode()
    tags = {}
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            tags[parts[0]] = parts[2] if len(parts) > 2 else parts[1]
    return tags


def _tag_matches(tag: str, patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        if tag == pattern or tag.startswith(pattern + "/") or fnmatch.fnmatchcase(tag, pattern):
            return pattern
    return None


def gather_facts(  # noqa: PLR0912 - a walk over revisions and runs
    workspace: Workspace,
    policy: RetentionPolicy,
    progress: Callable[[str], None] | None = None,
    *,
    inventory: Inventory | None = None,
) -> Facts:
    """Collect the facts (see the module docstring); ``inventory``: plan another store's
    objects (a DVC remote's) instead of the local cache's.

    Raises:
        VcsError: DVC cannot read a revision's pipeline files (an invalid dvc.lock).
    """
    root = workspace.root
    check_pipeline_files(root)  # DVC reads every revision's pipeline files without limits
    check_pipeline_history(root)
    times = _commit_times(root)
    tags = _tags(root)
    protected_commits = {}
    for tag, commit in tags.items():
        pattern = _tag_matches(tag, policy.exception_tags)
        if pattern is not None:
            protected_commits[commit] = f"tag {tag}"
    refs: dict[str, dict[str, Any]] = {}  # oid -> {path, last_ref, ws, protected}

    def note(oid: str, path: str, when: int, rev: str) -> None:
        entry = refs.setdefault(oid, {"path": path, "last_ref": -1, "ws": False, "protected": None})
        if rev == "workspace":
            entry["ws"] = True
        if rev in protected_commits and entry["protected"] is None:
            entry["protected"] = protected_commits[rev]
        if when > entry["last_ref"] or (when == entry["last_ref"] and path < entry["path"]):
            entry["last_ref"], entry["path"] = when, path

    scan = scan_revisions(root, progress)
    now_ws = max(times.values(), default=0)
    trees = scan.trees
    for rev, outs in scan.revisions:
        when = now_ws if rev == "workspace" else times.get(rev, 0)
        for path, oid in outs:
            note(oid, path, when, rev)
            for rel, inner in trees.get(oid, []):
                note(inner, f"{path}/{rel}", when, rev)
    cache_dir, cache_path = scan.cache_dir, scan.object_path
    if inventory is None:
        sizes = dict.fromkeys(scan.stored, -1)  # read from the cache when needed
        trashed = _trash_sizes(workspace, cache_dir)
    else:
        sizes, trashed = inventory.stored, inventory.trashed

    def size_of(oid: str) -> int:
        size = sizes[oid]
        return Path(cache_path(oid)).stat().st_size if size < 0 else size

    runs, run_refs = _run_facts(workspace, protected_commits, trees)
    active = _active_versions(workspace)
    objects = []
    missing = 0
    for oid, entry in refs.items():
        if oid in sizes:
            size, in_trash = size_of(oid), False
        elif oid in trashed:
            size, in_trash = trashed[oid], True
        else:
            missing += 1
            continue
        objects.append(
            ObjectFacts(
                oid,
                size,
                entry["path"],
                max(entry["last_ref"], 0),
                run_refs.get(oid, set()),
                entry["ws"],
                entry["protected"],
                in_trash,
            )
        )
    for oid in set(sizes) - set(refs):
        objects.append(ObjectFacts(oid, size_of(oid), "", 0, run_refs.get(oid, set())))
    run_times = {r.run_id: r.time for r in runs}
    for obj in objects:
        for run_id in obj.runs:
            obj.last_ref = max(obj.last_ref, run_times.get(run_id, 0))
    return Facts(objects, runs, active, len(scan.revisions), cache_dir, missing)


def _active_versions(workspace: Workspace) -> set[tuple[str, str]]:
    """``(setup, version)`` of every setup's active rule version."""
    active: set[tuple[str, str]] = set()
    registry = RuleRegistry(workspace)
    for setup in registry.setups():
        version = registry.get_active_version(setup)
        if version is not None:
            active.add((setup, version.tag))
    return active


def _trash_sizes(workspace: Workspace, cache_dir: Path) -> dict[str, int]:
    return {e.oid: e.size for e in Trash(workspace, cache_dir).entries()}


def _run_facts(
    workspace: Workspace,
    protected_commits: dict[str, str],
    trees: dict[str, list[tuple[str, str]]],
) -> tuple[list[RunFacts], dict[str, set[str]]]:
    """Runs of every ref (snapshots committed anywhere, or in the working tree), their pins
    (``ita/keep/*`` tags) and tag exceptions (a protected tag on a commit that holds the
    run's snapshot), and which objects each run references."""
    pins = pinned_runs(workspace)
    runs: list[RunFacts] = []
    run_refs: dict[str, set[str]] = {}
    for run_id, recorded in sorted(recorded_runs(workspace).items()):
        snapshot = recorded.snapshot
        try:
            stamp = int(
                dt.datetime.fromisoformat(
                    str(snapshot.get("timestamp")).replace("Z", "+00:00")
                ).timestamp()
            )
        except ValueError:
            stamp = 0
        reason = pins.get(run_id)
        if reason is None:
            reason = next(
                (protected_commits[c] for c in recorded.commits if c in protected_commits), None
            )
        runs.append(
            RunFacts(run_id, stamp, snapshot.get("setup_id"), snapshot.get("rule_version"), reason)
        )
        stages = (snapshot.get("dvc_lock") or {}).get("stages") or {}
        for body in stages.values():
            items = [*((body or {}).get("outs") or []), *((body or {}).get("deps") or [])]
            for item in items:
                oid = item.get("md5") if isinstance(item, dict) else None
                if not oid:
                    continue
                run_refs.setdefault(oid, set()).add(run_id)
                for _rel, inner in trees.get(oid, []):
                    run_refs.setdefault(inner, set()).add(run_id)
    return runs, run_refs
