"""``ita-vc gc --cloud``: the retention policy applied to a DVC remote, never ``dvc gc --cloud``.

Under the workspace lock (the gc lock of the local plan):

1. ``git fetch --tags`` from the team's git remote, so the plan sees every branch, tag and pin
   (``ita/keep/*``) the team has pushed - a teammate's pinned run on another branch included.
   When the git remote cannot be reached, nothing is planned (a remote plan made without the
   team's refs could delete what a teammate needs).
2. The remote's objects and its trash are listed (:meth:`Remote.inventory`), and the *same*
   facts and planner as the local ``gc`` decide each object (:func:`gather_facts` with the
   remote's inventory): pins, active rules, the newest runs, exception tags, ``max_runs`` and
   the classes' ``retain_days`` keep or release it. Objects no commit references (data a
   teammate pushed before their commits) are kept.
3. Unless ``dry_run``: trashed objects the plan keeps go back; objects to ``archive`` are copied
   to the archive remote and checked there first; objects to remove are soft-deleted into the
   remote's trash (copy, then delete the original: S3 has no move), and trash copies older than
   ``safety_window_days`` that the plan does not keep are purged. Every step is journaled
   locally (``<trash>/cloud-<remote>.jsonl``: a ``begin`` durable before a batch, a ``done``
   after); a killed gc is settled by the next one (an interrupted trash step is rolled back: the
   object back in place, the trash copy dropped), so an object is always in place or in the
   trash. DVC's local index of the remote is cleared afterwards (as ``dvc gc --cloud`` does).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ita_vc.errors import RetentionRefusedError
from ita_vc.retention.apply import append_audit, check_archive_s3, select_removals
from ita_vc.retention.facts import Inventory, gather_facts
from ita_vc.retention.policy import load_policy, make_plan
from ita_vc.store.artifacts import PersistentStore
from ita_vc.vcs import gitcli
from ita_vc.vcs.remote import DEFAULT_TIMEOUT, Remote, open_remote

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ita_vc.retention.facts import Facts
    from ita_vc.retention.policy import Decision, Plan, RetentionPolicy
    from ita_vc.workspace import Workspace

__all__ = ["CloudReport", "collect_cloud_garbage", "fetch_team_refs"]

_BATCH = 500
_GB = 1024**3
_OID = re.compile(r"[0-9a-f]{32}(\.dir)?")


@dataclass
class CloudReport:
    """What one ``gc --cloud`` did on a remote."""

    remote: str
    url: str
    trash: str
    date: str
    trashed: list[dict[str, Any]] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    restored: list[dict[str, Any]] = field(default_factory=list)
    purged: list[dict[str, Any]] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    report_path: str = ""
    audit_log_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The report document."""
        return {
            "remote": self.remote,
            "url": self.url,
            "trash": self.trash,
            "purge_date": self.date,
            "total_files_trashed": len(self.trashed),
            "trashed_gb": sum(t["size"] for t in self.trashed) / _GB,
            "total_files_purged": len(self.purged),
            "freed_space_gb": sum(p["size"] for p in self.purged) / _GB,
            "archived": sorted(self.archived),
            "restored_from_trash": self.restored,
            "recovered_interrupted_steps": self.recovered,
            "affected_objects": self.trashed + [{**p, "purged": True} for p in self.purged],
            "audit_log_path": self.audit_log_path,
        }


def fetch_team_refs(root: Path, git_remote: str) -> None:
    """``git fetch --tags`` of the git remote's branches and tags (pins included).

    Raises:
        RetentionRefusedError: no such git remote, or the fetch failed (nothing planned).
    """
    names = gitcli.git(["remote"], root).decode().split()
    if git_remote not in names:
        raise RetentionRefusedError(
            f"gc --cloud must see the team's branches and pins, but there is no git remote "
            f"{git_remote!r} (remotes: {', '.join(names) or 'none'}); pass --git-remote NAME"
        )
    proc = gitcli.run(
        ["fetch", "--quiet", "--tags", git_remote], root, env={"GIT_TERMINAL_PROMPT": "0"}
    )
    if proc.returncode != 0:
        text = proc.stderr.decode("utf-8", "replace").strip()
        raise RetentionRefusedError(
            f"git fetch {git_remote} failed, so the team's branches and pins are unknown; "
            f"nothing was planned: {text}"
        )


class _Journal:
    """The local journal of one remote's trash steps (see the module docstring)."""

    def __init__(self, workspace: Workspace, remote: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", remote)
        self.path = workspace.trash_dir / f"cloud-{safe}.jsonl"
        self.remote = remote

    def log(self, *records: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = "".join(
            json.dumps({"at": now, "remote": self.remote, **r}, sort_keys=True) + "\n"
            for r in records
        )
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())

    def open_steps(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        steps: dict[str, dict[str, Any]] = {}
        for line in self.path.read_text("utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if not isinstance(record, dict) or not _OID.fullmatch(str(record.get("oid"))):
                    continue
                key = f"{record.get('op')}:{record['oid']}"
                if record.get("step") == "begin":
                    steps[key] = record
                else:
                    steps.pop(key, None)
        return list(steps.values())


def _recover(journal: _Journal, remote: Remote) -> list[str]:
    """Settle steps a killed gc left open (rolled back; an interrupted restore completed)."""
    settled = []
    for step in journal.open_steps():
        oid, op = str(step["oid"]), step.get("op")
        if op == "trash":
            remote.settle(oid)
        elif op == "restore":
            remote.restore(oid)
        journal.log({"op": op, "step": "rolled_back" if op != "restore" else "done", "oid": oid})
        settled.append(oid)
    return settled


def _archive(
    workspace: Workspace, remote: Remote, policy: RetentionPolicy, removals: list[Decision]
) -> list[str]:
    """Copy the objects to archive to the archive remote and check they are there."""
    oids = [d.oid for d in removals if d.action == "archive"]
    if not oids:
        return []
    if policy.archive_remote == remote.name:
        raise RetentionRefusedError(
            f"archive_remote is {remote.name!r}, the remote being collected: archiving needs "
            "another DVC remote; nothing was removed"
        )
    with open_remote(workspace.root, policy.archive_remote, timeout=remote.timeout) as archive:
        archived = [d for d in removals if d.action == "archive"]
        check_archive_s3(policy, archived, archive.name, archive.url)
        missing = remote.copy_to(archive, oids)
    if missing:
        raise RetentionRefusedError(
            f"the archive remote {policy.archive_remote!r} does not hold {len(missing)} "
            "copied object(s); nothing was removed"
        )
    return oids


def _trash(
    remote: Remote,
    journal: _Journal,
    removals: list[Decision],
    report: CloudReport,
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, Any]]:
    audit = []
    for start in range(0, len(removals), _BATCH):
        batch = removals[start : start + _BATCH]
        journal.log(*({"op": "trash", "step": "begin", "oid": d.oid} for d in batch))
        for decision in batch:
            remote.trash(decision.oid)
        journal.log(*({"op": "trash", "step": "done", "oid": d.oid} for d in batch))
        for d in batch:
            item = {
                "oid": d.oid,
                "size": d.size,
                "path": d.path,
                "class": d.cls,
                "action": d.action,
                "reason": d.reason,
            }
            report.trashed.append(item)
            audit.append({"at": report.date, "op": "cloud-trash", "remote": remote.name, **item})
        if progress is not None:
            progress(min(start + _BATCH, len(removals)), len(removals))
    return audit


def _restore(
    remote: Remote, journal: _Journal, plan: Plan, facts: Facts, report: CloudReport
) -> list[dict[str, Any]]:
    trashed = {o.oid for o in facts.objects if o.in_trash}
    audit = []
    for decision in plan.decisions:
        if decision.action != "keep" or decision.oid not in trashed:
            continue
        journal.log({"op": "restore", "step": "begin", "oid": decision.oid})
        if remote.restore(decision.oid):
            item = {"oid": decision.oid, "path": decision.path, "size": decision.size}
            report.restored.append({**item, "reason": decision.reason})
            audit.append({"at": report.date, "op": "cloud-restore", "remote": remote.name, **item})
        journal.log({"op": "restore", "step": "done", "oid": decision.oid})
    return audit


def _purge(
    remote: Remote,
    journal: _Journal,
    plan: Plan,
    trash: dict[str, Any],
    policy: RetentionPolicy,
    report: CloudReport,
    now: float,
) -> list[dict[str, Any]]:
    keep = {d.oid for d in plan.decisions if d.action == "keep"}
    window = policy.safety_window_days * 86_400
    audit = []
    for oid, obj in sorted(trash.items()):
        if oid in keep or now - obj.mtime < window:
            continue
        journal.log({"op": "purge", "step": "begin", "oid": oid})
        remote.purge(oid)
        journal.log({"op": "purge", "step": "done", "oid": oid})
        report.purged.append({"oid": oid, "size": obj.size})
        audit.append({"at": report.date, "op": "cloud-purge", "remote": remote.name, "oid": oid})
    return audit


def collect_cloud_garbage(
    workspace: Workspace,
    *,
    dvc_remote: str | None = None,
    git_remote: str = "origin",
    dry_run: bool = False,
    yes: bool = False,
    fetch: bool = True,
    wait: float = 0,
    now: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Plan, Facts, CloudReport]:
    """``ita-vc gc --cloud [--dry-run]`` (see the module docstring). ``fetch`` False plans from
    the refs already fetched (tests, or no git remote on purpose); ``now``: epoch seconds.

    Raises:
        RetentionRefusedError: the git remote cannot be fetched, more than
            ``confirm_above_gb`` without ``yes``, a failed archive copy.
        RemoteError, ConfigError: the DVC remote refused, did not answer, or does not exist.
        WorkspaceLockedError: another command holds the workspace.
    """
    with workspace.lock(timeout=wait, purpose="ita-vc gc --cloud"):
        if fetch:
            fetch_team_refs(workspace.root, git_remote)
        policy = load_policy(workspace.root)
        stamp = int(dt.datetime.now(dt.UTC).timestamp()) if now is None else now
        with open_remote(workspace.root, dvc_remote, timeout=timeout) as remote:
            report = CloudReport(
                remote.name,
                remote.url,
                remote.trash_location,
                dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            journal = _Journal(workspace, remote.name)
            if not dry_run:
                report.recovered = _recover(journal, remote)
            objects, trash = remote.inventory(), remote.trash_inventory()
            inventory = Inventory(
                {o: v.size for o, v in objects.items()}, {o: v.size for o, v in trash.items()}
            )
            facts = gather_facts(workspace, policy, inventory=inventory)
            plan = make_plan(facts.objects, facts.runs, policy, stamp, facts.active_versions)
            if dry_run:
                return plan, facts, report
            removals = select_removals(
                plan,
                facts,
                policy,
                yes,
                where=" from the remote",
                command="ita-vc gc --cloud --dry-run",
            )
            audit = _restore(remote, journal, plan, facts, report)
            report.archived = _archive(workspace, remote, policy, removals)
            audit += _trash(remote, journal, removals, report, progress)
            audit += _purge(remote, journal, plan, trash, policy, report, stamp)
            remote.clear_index()
        report.audit_log_path = append_audit(workspace, *audit)
        ref = PersistentStore(workspace).save_json(
            report.to_dict(),
            "retention",
            f"cloud_{re.sub(r'[^A-Za-z0-9_.-]', '_', report.remote)}_"
            f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}.json",
        )
        report.report_path = ref.path
    return plan, facts, report
