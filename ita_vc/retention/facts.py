"""Facts for the retention plan, gathered with DVC's own APIs.

For every revision (all commits of every branch and tag, plus the workspace) the outs DVC sees
there (``repo.brancher`` + ``repo.index.outs``; directory outs expanded through their tree
objects) give the objects each revision uses, with their paths; commit times give ages. The
cache's object database (``repo.cache.local.all()``) gives what is stored. Runs come from the
snapshot files, pins from git tags. Nothing here modifies anything.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.retention.policy import ObjectFacts, RetentionPolicy, RunFacts

if TYPE_CHECKING:
    from collections.abc import Callable

    from ita_vc.workspace import Workspace

__all__ = ["Facts", "gather_facts", "shared_cache_reason"]


@dataclass
class Facts:
    """Everything the planner needs, and the numbers behind it."""

    objects: list[ObjectFacts]
    runs: list[RunFacts]
    active_versions: set[tuple[str, str]]
    revisions: int
    cache_dir: Path
    missing: int  # referenced by some revision, absent from the cache


def _commit_times(root: Path) -> dict[str, int]:
    from ita_vc.vcs import gitcli

    raw = gitcli.git(["log", "--all", "--format=%H %ct"], root, check=False).decode()
    times = {}
    for line in raw.splitlines():
        sha, _, stamp = line.partition(" ")
        if stamp:
            times[sha] = int(stamp)
    return times


def _tags(root: Path) -> dict[str, str]:
    """``{tag name: commit}``."""
    from ita_vc.vcs import gitcli

    raw = gitcli.git(["for-each-ref", "refs/tags", "--format=%(refname:strip=2) %(objectname)"
                      " %(*objectname)"], root, check=False).decode()
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


def shared_cache_reason(root: Path) -> str | None:
    """Why the DVC cache cannot be judged from this repository alone, or None."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        cache = Path(repo.cache.local_cache_dir).resolve()
        shared = repo.config.get("cache", {}).get("shared")
    if shared:
        return f"cache.shared = {shared}: the cache is shared with other users/projects"
    if not cache.is_relative_to(root.resolve()):
        return (f"cache.dir is {cache}, outside this repository: other projects may use "
                "objects this repository does not reference")
    return None


def gather_facts(  # noqa: PLR0912, PLR0915 - a walk over revisions and runs
    workspace: Workspace, policy: RetentionPolicy,
    progress: Callable[[str], None] | None = None,
) -> Facts:
    """Collect the facts (see the module docstring)."""
    from dvc.repo import Repo

    from ita_vc.rules.registry import RuleRegistry
    from ita_vc.snapshot.capture import RunProvenance
    from ita_vc.snapshot.runs import pinned_runs

    root = workspace.root
    times = _commit_times(root)
    tags = _tags(root)
    protected_commits = {}
    for tag, commit in tags.items():
        pattern = _tag_matches(tag, policy.exception_tags)
        if pattern is not None:
            protected_commits[commit] = f"tag {tag}"
    refs: dict[str, dict[str, Any]] = {}  # oid -> {path, last_ref, ws, protected}
    trees: dict[str, list[tuple[str, str]]] = {}

    def note(oid: str, path: str, when: int, rev: str) -> None:
        entry = refs.setdefault(oid, {"path": path, "last_ref": -1, "ws": False,
                                      "protected": None})
        if rev == "workspace":
            entry["ws"] = True
        if rev in protected_commits and entry["protected"] is None:
            entry["protected"] = protected_commits[rev]
        if when > entry["last_ref"] or (when == entry["last_ref"] and path < entry["path"]):
            entry["last_ref"], entry["path"] = when, path

    revisions = 0
    with Repo(str(root)) as repo:
        odb = repo.cache.local
        cache_dir = Path(repo.cache.local_cache_dir)
        now_ws = max(times.values(), default=0)
        for rev in repo.brancher(all_commits=True):  # every commit of every ref + workspace
            revisions += 1
            when = now_ws if rev == "workspace" else times.get(rev, 0)
            if progress is not None:
                progress(rev)
            for out in repo.index.outs:
                info = out.hash_info
                if not info or not info.value or not out.use_cache:
                    continue
                fs_path = str(out.fs_path)
                path = (Path(fs_path).relative_to(root).as_posix() if rev == "workspace"
                        else fs_path.lstrip("/"))
                note(info.value, path, when, rev)
                if info.isdir:
                    if info.value not in trees:
                        try:
                            tree = out.get_obj()
                        except Exception:  # noqa: BLE001 - a manifest missing from the cache
                            tree = None
                        trees[info.value] = [] if tree is None else [
                            ("/".join(key), hi.value) for key, (_meta, hi) in tree.iteritems()
                            if hi is not None and hi.value
                        ]
                    for rel, oid in trees[info.value]:
                        note(oid, f"{path}/{rel}", when, rev)
        stored = set(odb.all())
    provenance = RunProvenance(workspace)
    pins = pinned_runs(workspace)
    runs: list[RunFacts] = []
    run_refs: dict[str, set[str]] = {}
    import datetime as dt

    for run_id in provenance.run_ids():
        snapshot = provenance.load_snapshot(run_id)
        stamp = dt.datetime.fromisoformat(str(snapshot.get("timestamp")).replace("Z", "+00:00"))
        commit = str(snapshot.get("git_commit_hash"))
        reason = pins.get(run_id)
        if reason is None and commit in protected_commits:
            reason = protected_commits[commit]
        runs.append(RunFacts(run_id, int(stamp.timestamp()), snapshot.get("setup_id"),
                             snapshot.get("rule_version"), reason))
        stages = (snapshot.get("dvc_lock") or {}).get("stages") or {}
        for body in stages.values():
            items = [*((body or {}).get("outs") or []), *((body or {}).get("deps") or [])]
            for item in items:
                oid = item.get("md5")
                if not oid:
                    continue
                run_refs.setdefault(oid, set()).add(run_id)
                for _rel, inner in trees.get(oid, []):
                    run_refs.setdefault(inner, set()).add(run_id)
    active: set[tuple[str, str]] = set()
    registry = RuleRegistry(workspace)
    for setup in registry.setups():
        version = registry.get_active_version(setup)
        if version is not None:
            active.add((setup, version.tag))
    objects = []
    missing = 0
    for oid, entry in refs.items():
        if oid not in stored:
            missing += 1
            continue
        size = Path(odb.oid_to_path(oid)).stat().st_size
        objects.append(ObjectFacts(oid, size, entry["path"], max(entry["last_ref"], 0),
                                   run_refs.get(oid, set()), entry["ws"], entry["protected"]))
    for oid in stored - set(refs):
        size = Path(odb.oid_to_path(oid)).stat().st_size
        objects.append(ObjectFacts(oid, size, "", 0, run_refs.get(oid, set())))
    run_times = {r.run_id: r.time for r in runs}
    for obj in objects:
        for run_id in obj.runs:
            obj.last_ref = max(obj.last_ref, run_times.get(run_id, 0))
    return Facts(objects, runs, active, revisions, cache_dir, missing)
