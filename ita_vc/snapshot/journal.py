"""The run journal: what an ``ita-vc run`` in progress has changed, so a killed run can be
repaired by the next one.

``.ita/run-journal.json`` is written (atomically) before a run touches anything, and updated at
each phase; a run that ends - well or with an error - removes it. Finding one at the start of a
run (under the workspace lock, so its writer is gone) means a run was killed:

* ``repro`` phase: ``params.yaml`` may still hold that run's ``-S`` overrides. If it is exactly
  what the run wrote, the values from before are put back (the user is told which overrides
  were dropped); if it was edited since, it is left as it is and the user is told.
* ``snapshot`` / ``commit`` phases: the snapshot may be written but not committed. If the
  workspace still holds exactly what the snapshot records (its ``dvc.lock`` bytes), the commit
  is completed; otherwise the orphan snapshot is moved to ``.ita/orphans/`` and its index row
  removed, so it can neither block later runs nor pass for a recorded run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ita_vc.snapshot.capture import RUN_WRITTEN, snapshot_hash
from ita_vc.snapshot.manifest import MANIFEST_SUFFIX
from ita_vc.store.index import MetadataIndex
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from pathlib import Path

    from ita_vc.workspace import Workspace

__all__ = ["JOURNAL_NAME", "RunJournal", "recover_interrupted_run"]

JOURNAL_NAME = "run-journal.json"
_log = logging.getLogger(__name__)


@dataclass
class RunJournal:
    """The state of one run in progress."""

    workspace: Workspace
    phase: str = "start"
    params_original: str | None = None
    params_written: str | None = None
    overrides: list[str] = field(default_factory=list)
    run_id: str | None = None
    snapshot_path: str | None = None
    to_stage: list[str] = field(default_factory=list)
    message: str | None = None
    started: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    pid: int = field(default_factory=os.getpid)

    @property
    def path(self) -> Path:
        """``.ita/run-journal.json``."""
        return self.workspace.state_dir / JOURNAL_NAME

    def to_dict(self) -> dict[str, Any]:
        """The journal document."""
        return {
            "phase": self.phase,
            "params_original": self.params_original,
            "params_written": self.params_written,
            "overrides": self.overrides,
            "run_id": self.run_id,
            "snapshot_path": self.snapshot_path,
            "to_stage": self.to_stage,
            "message": self.message,
            "started": self.started,
            "pid": self.pid,
        }

    def save(self, phase: str | None = None) -> None:
        """Record the current phase durably (before the step it names)."""
        if phase is not None:
            self.phase = phase
        target = self.workspace.contained(self.path)
        atomic_write_bytes(target, (json.dumps(self.to_dict(), indent=1) + "\n").encode())

    def clear(self) -> None:
        """The run ended (well or with an error it cleaned up after)."""
        self.path.unlink(missing_ok=True)

    @classmethod
    def load(cls, workspace: Workspace) -> RunJournal | None:
        """The journal a killed run left, or None (an unreadable one counts as none)."""
        path = workspace.state_dir / JOURNAL_NAME
        try:
            doc = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            _log.warning("ignoring an unreadable run journal %s", path)
            path.unlink(missing_ok=True)
            return None
        if not isinstance(doc, dict):
            path.unlink(missing_ok=True)
            return None
        journal = cls(workspace)
        for key in (
            "phase",
            "params_original",
            "params_written",
            "run_id",
            "snapshot_path",
            "message",
            "started",
        ):
            if isinstance(doc.get(key), str):
                setattr(journal, key, doc[key])
        journal.overrides = [str(x) for x in doc.get("overrides") or []]
        journal.to_stage = [str(x) for x in doc.get("to_stage") or []]
        if isinstance(doc.get("pid"), int):
            journal.pid = doc["pid"]
        return journal


def _restore_params(journal: RunJournal, notes: list[str]) -> None:
    params = journal.workspace.root / "params.yaml"
    if (
        journal.params_written is None
        or journal.params_original is None
        or journal.params_written == journal.params_original
    ):
        return
    current = params.read_bytes().decode("utf-8", "replace") if params.is_file() else ""
    overrides = ", ".join(journal.overrides) or "its overrides"
    if current == journal.params_written:
        atomic_write_bytes(
            journal.workspace.contained(params), journal.params_original.encode("utf-8")
        )
        notes.append(
            f"params.yaml: put back the values from before an interrupted run "
            f"(pid {journal.pid}, started {journal.started}), dropping its -S "
            f"{overrides}"
        )
    else:
        notes.append(
            f"params.yaml was edited after an interrupted run (pid {journal.pid}) "
            f"had set -S {overrides}; kept as it is now - check it"
        )


def _is_committed(root: Path, rel: str) -> bool:
    tracked = gitcli.git(["ls-files", "--", rel], root).strip()
    return bool(tracked) and rel not in gitcli.status_paths(root)


def _finish_commit(journal: RunJournal, snapshot: dict[str, Any], notes: list[str]) -> bool:
    root = journal.workspace.root
    lock = root / "dvc.lock"
    lock_sha = "sha256:" + hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None
    if (
        snapshot.get("snapshot_sha256") != snapshot_hash(snapshot)
        or snapshot.get("dvc_lock_sha256") != lock_sha
    ):
        return False
    changed = set(gitcli.status_paths(root))
    wanted = set(journal.to_stage) | set(RUN_WRITTEN)
    if not journal.to_stage:  # killed before it knew: what a run writes
        wanted |= {p for p in changed if p.endswith(".gitignore")}
    manifest = str(journal.snapshot_path).removesuffix(".json") + MANIFEST_SUFFIX
    if manifest in changed:
        wanted.add(manifest)
    paths = sorted({p for p in wanted if p in changed} | {str(journal.snapshot_path)})
    gitcli.git(["add", "--", *paths], root)
    message = journal.message or f"ita-vc run {journal.run_id}"
    gitcli.git(
        ["commit", "-q", "-m", f"{message} (completed after an interruption)", "--", *paths], root
    )
    notes.append(
        f"completed the commit of run {journal.run_id}, which was interrupted after "
        "its snapshot was written"
    )
    return True


def _set_aside(journal: RunJournal, notes: list[str]) -> None:
    root = journal.workspace.root
    rel = str(journal.snapshot_path)
    orphans = journal.workspace.contained(journal.workspace.state_dir / "orphans" / "x")
    orphans.parent.mkdir(parents=True, exist_ok=True)
    target = orphans.parent / f"{journal.run_id}.json"
    manifest = rel.removesuffix(".json") + MANIFEST_SUFFIX
    gitcli.git(["reset", "-q", "--", rel, manifest], root, check=False)
    os.replace(root / rel, target)
    if (root / manifest).is_file():
        os.replace(root / manifest, orphans.parent / f"{journal.run_id}{MANIFEST_SUFFIX}")
    MetadataIndex(journal.workspace.index_path).delete_run(str(journal.run_id))
    notes.append(
        f"run {journal.run_id} was interrupted before its commit and the workspace "
        f"has changed since: its snapshot is not a recorded run; moved it to "
        f"{journal.workspace.relpath(target)}"
    )


def _set_aside_manifest(journal: RunJournal, notes: list[str]) -> None:
    """A run killed after writing its manifest but before its snapshot left the manifest
    alone: it belongs to no recorded run, so it goes to ``.ita/orphans/`` (else it would make
    the tree dirty and refuse every later run)."""
    if not journal.snapshot_path:
        return
    root = journal.workspace.root
    rel = str(journal.snapshot_path).removesuffix(".json") + MANIFEST_SUFFIX
    if not (root / rel).is_file() or (root / str(journal.snapshot_path)).is_file():
        return  # no manifest, or its snapshot is there (committed or just completed)
    if _is_committed(root, rel):
        return
    orphans = journal.workspace.contained(journal.workspace.state_dir / "orphans" / "x")
    orphans.parent.mkdir(parents=True, exist_ok=True)
    gitcli.git(["reset", "-q", "--", rel], root, check=False)
    os.replace(root / rel, orphans.parent / PurePosixPath(rel).name)
    notes.append(
        f"run {journal.run_id} was killed after writing its manifest, before its snapshot: "
        f"moved {rel} to {journal.workspace.relpath(orphans.parent)}/"
    )


def recover_interrupted_run(workspace: Workspace) -> list[str]:
    """Repair what a killed ``ita-vc run`` left (see the module docstring); returns notes for
    the user. Call it holding the workspace lock.

    Raises:
        VcsError: completing the interrupted commit failed.
    """
    journal = RunJournal.load(workspace)
    if journal is None:
        return []
    notes: list[str] = []
    snapshot_file = workspace.root / journal.snapshot_path if journal.snapshot_path else None
    if (
        journal.phase in ("snapshot", "commit")
        and snapshot_file is not None
        and snapshot_file.is_file()
        and not _is_committed(workspace.root, str(journal.snapshot_path))
    ):
        try:
            snapshot = json.loads(snapshot_file.read_text("utf-8"))
        except (OSError, ValueError):
            snapshot = {}
        if not (isinstance(snapshot, dict) and _finish_commit(journal, snapshot, notes)):
            _set_aside(journal, notes)
            _restore_params(journal, notes)
    elif journal.phase in ("start", "repro", "snapshot", "commit"):
        _restore_params(journal, notes)
    _set_aside_manifest(journal, notes)
    journal.clear()
    for note in notes:
        _log.warning("%s", note)
    return notes
