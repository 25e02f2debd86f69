"""Run snapshots as git records them: on every branch and tag, not only the checked-out one.

A run lives where its snapshot was committed. Retention must see runs of every ref (a pinned run
on another branch keeps its objects), pins must land on the commit that holds the snapshot, and
run ids must not repeat across branches. One ``git log --all`` finds every commit that added a
snapshot file; one ``git cat-file --batch`` reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ita_vc.snapshot.capture import RUN_FILE_RE
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from ita_vc.workspace import Workspace

__all__ = ["RecordedRun", "recorded_runs"]

_MARK = "@@ita@@"
_RUN_FILE = RUN_FILE_RE


@dataclass
class RecordedRun:
    """A run snapshot and where it is recorded."""

    run_id: str
    path: str
    snapshot: dict[str, Any]
    commits: list[str] = field(default_factory=list)  # commits that added the snapshot
    in_workspace: bool = False  # the file is in the working tree (committed or not)


def _added_snapshots(workspace: Workspace, folder: str) -> list[tuple[str, str]]:
    """``(commit, path)`` of every snapshot any commit of any ref added, oldest first."""
    raw = gitcli.git(
        [
            "log",
            "--all",
            "--reverse",
            "--diff-filter=A",
            f"--format={_MARK}%H",
            "--name-only",
            "--no-renames",
            "--",
            f"{folder}/",
        ],
        workspace.root,
        check=False,
    ).decode("utf-8", "replace")
    found: list[tuple[str, str]] = []
    commit = ""
    for line in raw.splitlines():
        if line.startswith(_MARK):
            commit = line[len(_MARK) :].strip()
        elif (
            line.strip()
            and commit
            and _RUN_FILE.fullmatch(PurePosixPath(line).name)
            and PurePosixPath(line).parent.as_posix() == folder
        ):
            found.append((commit, line.strip()))
    return found


def recorded_runs(workspace: Workspace) -> dict[str, RecordedRun]:
    """Every run with a snapshot committed on any ref, or present in the working tree.

    Unreadable or non-object snapshot blobs are skipped (``snapshot verify`` reports them).
    """
    folder = workspace.config.store.kinds["provenance"]
    added = _added_snapshots(workspace, folder)
    blobs = gitcli.cat_files(workspace.root, [f"{c}:{p}" for c, p in added]) if added else {}
    runs: dict[str, RecordedRun] = {}
    for commit, path in added:
        run_id = PurePosixPath(path).stem
        entry = runs.get(run_id)
        if entry is not None:
            entry.commits.append(commit)
            continue
        snapshot = _parse(blobs.get(f"{commit}:{path}"))
        if snapshot is not None:
            runs[run_id] = RecordedRun(run_id, path, snapshot, [commit])
    base = workspace.path(folder)
    if base.is_dir():
        for file in sorted(base.glob("*.json")):
            if not _RUN_FILE.fullmatch(file.name):
                continue
            run_id = file.stem
            if run_id in runs:
                runs[run_id].in_workspace = True
                continue
            try:
                snapshot = _parse(file.read_bytes())
            except OSError:
                snapshot = None
            if snapshot is not None:
                runs[run_id] = RecordedRun(
                    run_id, f"{folder}/{file.name}", snapshot, [], in_workspace=True
                )
    return runs


def _parse(blob: bytes | None) -> dict[str, Any] | None:
    if blob is None:
        return None
    try:
        doc = json.loads(blob)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
