"""Execute a retention plan: archive (push + verify), soft delete to the trash, purge the
trash after the safety window, write a purge report and the audit log."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ita_vc.errors import ItaVcError, RetentionRefusedError, UsageError
from ita_vc.retention.facts import gather_facts
from ita_vc.retention.policy import POLICY_RELPATH, load_policy, make_plan
from ita_vc.retention.trash import Trash
from ita_vc.snapshot.records import prune_records
from ita_vc.store.artifacts import PersistentStore
from ita_vc.store.index import MetadataIndex
from ita_vc.vcs.dvc import cache_dir, shared_cache_reason
from ita_vc.vcs.remote import open_remote

if TYPE_CHECKING:
    from collections.abc import Callable

    from ita_vc.retention.facts import Facts
    from ita_vc.retention.policy import Decision, Plan, RetentionPolicy
    from ita_vc.workspace import Workspace

__all__ = [
    "AUDIT_LOG",
    "PurgeReport",
    "append_audit",
    "check_archive_s3",
    "collect_garbage",
    "compute_plan",
    "execute_plan",
    "purge_trash",
    "purge_trash_safely",
    "restore_from_trash",
    "select_removals",
]

AUDIT_LOG = "retention-audit.jsonl"
_BATCH = 500  # objects per journal/index/audit transaction
_GB = 1024**3


@dataclass
class PurgeReport:
    """What one execution did (also written as JSON through the Persistent Store)."""

    purge_date: str
    trashed: list[dict[str, Any]] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    purged: list[dict[str, Any]] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    restored: list[dict[str, Any]] = field(default_factory=list)
    audit_log_path: str = ""
    report_path: str = ""
    records_dropped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report document."""
        by_type: dict[str, dict[str, int]] = {}
        for item in self.trashed:
            row = by_type.setdefault(item["class"] or "(none)", {"objects": 0, "bytes": 0})
            row["objects"] += 1
            row["bytes"] += item["size"]
        return {
            "purge_date": self.purge_date,
            "total_files_purged": len(self.purged),
            "freed_space_gb": sum(p["size"] for p in self.purged) / _GB,
            "total_files_trashed": len(self.trashed),
            "trashed_gb": sum(t["size"] for t in self.trashed) / _GB,
            "by_type": by_type,
            "archived": sorted(self.archived),
            "affected_objects": self.trashed + [{**p, "purged": True} for p in self.purged],
            "recovered_interrupted_steps": self.recovered,
            "restored_from_trash": self.restored,
            "audit_log_path": self.audit_log_path,
            "run_records_dropped": self.records_dropped,
        }


def compute_plan(
    workspace: Workspace, *, now: int | None = None, progress: Callable[[str], None] | None = None
) -> tuple[Plan, Facts]:
    """Gather facts through DVC and plan; modifies nothing.

    Raises:
        ConfigError: invalid policy.
    """
    policy = load_policy(workspace.root)
    facts = gather_facts(workspace, policy, progress)
    stamp = int(dt.datetime.now(dt.UTC).timestamp()) if now is None else now
    return make_plan(facts.objects, facts.runs, policy, stamp, facts.active_versions), facts


def append_audit(workspace: Workspace, *records: dict[str, Any]) -> str:
    """Append records to the retention audit log (one fsync); returns its relative path."""
    path = workspace.logs_dir / AUDIT_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as stream:
        stream.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        stream.flush()
        os.fsync(stream.fileno())
    return workspace.relpath(path)


def check_archive_s3(
    policy: RetentionPolicy, archived: list[Decision], remote: str, url: str
) -> None:
    """Raises RetentionRefusedError when one of ``archived`` belongs to a class written
    ``archive_to_s3`` and the archive remote ``remote`` (at ``url``) is not S3."""
    s3_only = {c.name for c in policy.classes if c.written == "archive_to_s3"}
    if any(d.cls in s3_only for d in archived) and not url.startswith("s3://"):
        raise RetentionRefusedError(
            f"{POLICY_RELPATH}: strategy archive_to_s3 needs an S3 archive remote, but "
            f"archive_remote {remote!r} is {url}; nothing was removed"
        )


def _archive(workspace: Workspace, archived: list[Decision], policy: RetentionPolicy) -> None:
    """Push objects to the archive remote and check every one arrived.

    Raises:
        RetentionRefusedError: the push or its verification failed, or a class written
            ``archive_to_s3`` and an archive remote that is not ``s3://`` (nothing is removed).
    """
    remote, oids = policy.archive_remote, [d.oid for d in archived]
    try:
        with open_remote(workspace.root, remote) as archive:
            check_archive_s3(policy, archived, remote, archive.url)
            _sent, failed = archive.push(oids)
            missing = set(oids) - archive.has(oids)
    except RetentionRefusedError:
        raise
    except ItaVcError as exc:
        raise RetentionRefusedError(
            f"archiving to DVC remote {remote!r} failed ({exc}); nothing was removed"
        ) from exc
    if missing or failed:
        raise RetentionRefusedError(
            f"the archive remote {remote!r} does not hold "
            f"{len(missing | failed)} pushed object(s); nothing was removed"
        )


def _check_days(days: float) -> None:
    if (
        isinstance(days, bool)
        or not isinstance(days, int | float)
        or not math.isfinite(days)
        or days < 0
    ):
        raise UsageError(f"--older-than must be a number of days >= 0, got {days!r}")


def purge_trash(
    workspace: Workspace,
    older_than_days: float,
    *,
    report: PurgeReport | None = None,
    now: dt.datetime | None = None,
    protect: set[str] | None = None,
) -> PurgeReport:
    """Physically delete trash objects trashed more than ``older_than_days`` ago, except the
    ``protect`` ones (objects a current plan keeps). Call it holding the workspace lock
    (:func:`purge_trash_safely` takes it and protects what the plan keeps).

    Raises:
        UsageError: a negative or NaN number of days.
    """
    _check_days(older_than_days)
    moment = now or dt.datetime.now(dt.UTC)
    report = report or PurgeReport(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    trash = Trash(workspace, cache_dir(workspace.root))
    index = MetadataIndex(workspace.index_path)
    for entry in trash.entries():
        if protect and entry.oid in protect:
            continue
        when = (
            dt.datetime.fromisoformat(entry.trashed_at.replace("Z", "+00:00"))
            if entry.trashed_at
            else moment
        )
        if (moment - when).total_seconds() >= older_than_days * 86_400:
            freed = trash.purge(entry.oid)
            report.purged.append(
                {"oid": entry.oid, "size": freed, "path": entry.path, "class": entry.cls}
            )
            index.mark_object(
                entry.oid, path=entry.path, cls=entry.cls, size=freed, status="purged"
            )
            report.audit_log_path = append_audit(
                workspace,
                {"at": report.purge_date, "op": "purge", "oid": entry.oid, "path": entry.path},
            )
    return report


def _kept_in_trash(plan: Plan, facts: Facts) -> list[Any]:
    """Decisions that keep an object an earlier gc trashed: the repository needs it again
    (a pin, a revert, a new branch) - it goes back into the cache."""
    trashed = {o.oid for o in facts.objects if o.in_trash}
    return [d for d in plan.decisions if d.action == "keep" and d.oid in trashed]


def _restore_kept(workspace: Workspace, plan: Plan, facts: Facts, report: PurgeReport) -> None:
    wanted = _kept_in_trash(plan, facts)
    if not wanted:
        return
    trash = Trash(workspace, facts.cache_dir)
    index = MetadataIndex(workspace.index_path)
    for decision in wanted:
        if trash.restore(decision.oid):
            index.mark_object(
                decision.oid,
                path=decision.path,
                cls=decision.cls,
                size=decision.size,
                status="restored",
            )
            report.restored.append(
                {
                    "oid": decision.oid,
                    "path": decision.path,
                    "size": decision.size,
                    "reason": decision.reason,
                }
            )
            report.audit_log_path = append_audit(
                workspace,
                {
                    "at": report.purge_date,
                    "op": "restore",
                    "oid": decision.oid,
                    "path": decision.path,
                    "reason": f"kept by the current plan: {decision.reason}",
                },
            )


def purge_trash_safely(
    workspace: Workspace, older_than_days: float, *, wait: float = 0, now: dt.datetime | None = None
) -> PurgeReport:
    """``ita-vc trash purge``: under the workspace lock, restore trashed objects the current
    plan keeps, then purge the rest of what is older than ``older_than_days``.

    Raises:
        UsageError: a bad number of days or wait. WorkspaceLockedError: the workspace is busy.
    """
    _check_days(older_than_days)
    with workspace.lock(timeout=wait, purpose="ita-vc trash purge"):
        MetadataIndex(workspace.index_path).check()

        plan, facts = compute_plan(workspace)
        moment = now or dt.datetime.now(dt.UTC)
        report = PurgeReport(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
        report.recovered = Trash(workspace, facts.cache_dir).recover()
        _restore_kept(workspace, plan, facts, report)
        keep = {d.oid for d in plan.decisions if d.action == "keep"}
        return purge_trash(workspace, older_than_days, report=report, now=moment, protect=keep)


def collect_garbage(
    workspace: Workspace,
    *,
    yes: bool = False,
    force_shared_cache: bool = False,
    wait: float = 0,
    now: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Plan, Facts, PurgeReport]:
    """``ita-vc gc``: under the workspace lock (no run, import or restore can change the
    repository or the cache meanwhile), plan from the repository as it is now and execute.

    Raises:
        WorkspaceLockedError: another command holds the workspace after ``wait`` seconds.
        RetentionRefusedError, ConfigError, VcsError: see :func:`execute_plan`.
    """
    with workspace.lock(timeout=wait, purpose="ita-vc gc"):
        MetadataIndex(workspace.index_path).check()  # before the recovery moves anything

        recovered = Trash(workspace, cache_dir(workspace.root)).recover()  # before planning
        plan, facts = compute_plan(workspace, now=now)
        policy = load_policy(workspace.root)
        report = execute_plan(
            workspace,
            plan,
            policy,
            facts,
            yes=yes,
            force_shared_cache=force_shared_cache,
            progress=progress,
        )
        report.recovered = recovered + report.recovered
        report.records_dropped = prune_records(
            workspace,
            policy.max_runs,
            protect=[r.run_id for r in facts.runs if r.pinned],
        )
    return plan, facts, report


def _refuse_shared_cache(workspace: Workspace, force_shared_cache: bool) -> None:
    """A shared DVC cache is not collected unless forced."""
    reason = shared_cache_reason(workspace.root)
    if reason and not force_shared_cache:
        raise RetentionRefusedError(
            f"refusing to collect a shared DVC cache: {reason}. This repository cannot know "
            "which objects the others need; pass --force-shared-cache if it truly is yours"
        )


def select_removals(
    plan: Plan,
    facts: Facts,
    policy: RetentionPolicy,
    yes: bool,
    *,
    where: str = "",
    command: str = "ita-vc gc --dry-run",
) -> list[Decision]:
    """The objects to delete or archive that are not in the trash yet; more than
    ``confirm_above_gb`` of them needs ``yes`` (``where``/``command``: for the message)."""
    trashed = {o.oid for o in facts.objects if o.in_trash}
    removals = [
        d for d in plan.decisions if d.action in ("delete", "archive") and d.oid not in trashed
    ]
    total = sum(d.size for d in removals)
    if total > policy.confirm_above_gb * _GB and not yes:
        raise RetentionRefusedError(
            f"the plan removes {total / _GB:.2f} GB{where}, more than confirm_above_gb = "
            f"{policy.confirm_above_gb}; review `{command}` and pass --yes"
        )
    return removals


def _archive_removals(
    workspace: Workspace, removals: list[Decision], policy: RetentionPolicy, report: PurgeReport
) -> None:
    """Push the objects to archive to the archive remote first."""
    archive = [d for d in removals if d.action == "archive"]
    if archive:
        _archive(workspace, archive, policy)
        report.archived = [d.oid for d in archive]


def _trash_removals(
    workspace: Workspace,
    trash: Trash,
    store: PersistentStore,
    removals: list[Decision],
    facts: Facts,
    report: PurgeReport,
    progress: Callable[[int], None] | None,
) -> None:
    """Soft delete in batches: each batch into the trash, marked in the index, audited."""
    runs_of = {o.oid: sorted(o.runs) for o in facts.objects}
    for start in range(0, len(removals), _BATCH):
        batch = removals[start : start + _BATCH]
        trash.put_many(
            [
                {
                    "oid": d.oid,
                    "size": d.size,
                    "path": d.path,
                    "class": d.cls,
                    "runs": runs_of.get(d.oid, []),
                }
                for d in batch
            ]
        )
        store.index.mark_objects([(d.oid, d.path, d.cls, d.size) for d in batch], "trashed")
        items = [
            {
                "oid": d.oid,
                "size": d.size,
                "path": d.path,
                "class": d.cls,
                "action": d.action,
                "reason": d.reason,
            }
            for d in batch
        ]
        report.trashed.extend(items)
        report.audit_log_path = append_audit(
            workspace, *({"at": report.purge_date, "op": "trash", **i} for i in items)
        )
        if progress is not None:
            progress(sum(d.size for d in batch))


def _save_report(
    workspace: Workspace, store: PersistentStore, report: PurgeReport, now: dt.datetime
) -> None:
    """The report's audit log path, then the report itself saved in the store."""
    if not report.audit_log_path:
        report.audit_log_path = workspace.relpath(workspace.logs_dir / AUDIT_LOG)
    ref = store.save_json(report.to_dict(), "retention", f"purge_{now:%Y%m%dT%H%M%S%f}.json")
    report.report_path = ref.path


def execute_plan(
    workspace: Workspace,
    plan: Plan,
    policy: RetentionPolicy,
    facts: Facts,
    *,
    yes: bool = False,
    force_shared_cache: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PurgeReport:
    """Execute ``plan``: bring back trashed objects it keeps, archive, soft delete, purge
    what aged out of the trash, report. Call it holding the workspace lock, with a plan made
    under that lock (:func:`collect_garbage` does both).

    Raises:
        RetentionRefusedError: a shared cache (without ``force_shared_cache``), more than
            ``confirm_above_gb`` without ``yes``, a failed archive push, or a trash on another
            filesystem. Nothing is touched then.
    """
    MetadataIndex(workspace.index_path).check()  # before any move: the index records them
    _refuse_shared_cache(workspace, force_shared_cache)
    trash = Trash(workspace, facts.cache_dir)
    trash.check_same_filesystem()
    now = dt.datetime.now(dt.UTC)
    report = PurgeReport(now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    report.recovered = trash.recover()
    if report.recovered:  # objects came back from an interrupted batch: decide afresh
        plan, facts = compute_plan(workspace, now=plan.now)
    removals = select_removals(plan, facts, policy, yes)
    _restore_kept(workspace, plan, facts, report)
    _archive_removals(workspace, removals, policy, report)
    store = PersistentStore(workspace)
    _trash_removals(workspace, trash, store, removals, facts, report, progress)
    purge_trash(
        workspace,
        policy.safety_window_days,
        report=report,
        now=now,
        protect={d.oid for d in plan.decisions if d.action == "keep"},
    )
    _save_report(workspace, store, report, now)
    return report


def restore_from_trash(
    workspace: Workspace,
    *,
    run_id: str | None = None,
    oid: str | None = None,
    everything: bool = False,
    wait: float = 0,
) -> list[str]:
    """Move objects back from the trash into the DVC cache (``dvc checkout`` works again),
    under the workspace lock.

    Raises:
        UsageError: nothing selected.
        ItaVcError: the selection is not in the trash.
        WorkspaceLockedError: another command holds the workspace.
    """
    if everything + (run_id is not None) + (oid is not None) != 1:
        raise UsageError("say what to restore: one RUN_ID, one object id, or --all")
    with workspace.lock(timeout=wait, purpose="ita-vc trash restore"):
        MetadataIndex(workspace.index_path).check()
        return _restore_from_trash(workspace, run_id=run_id, oid=oid, everything=everything)


def _restore_from_trash(
    workspace: Workspace, *, run_id: str | None, oid: str | None, everything: bool
) -> list[str]:
    trash = Trash(workspace, cache_dir(workspace.root))
    trash.recover()
    entries = trash.entries()
    if everything:
        chosen = entries
    elif run_id is not None:
        chosen = [e for e in entries if run_id in e.runs]
    else:
        chosen = [e for e in entries if e.oid == str(oid).removeprefix("md5:")]
    if not chosen:
        raise ItaVcError("nothing of that is in the trash")
    index = MetadataIndex(workspace.index_path)
    restored = []
    for entry in chosen:
        if trash.restore(entry.oid):
            index.mark_object(
                entry.oid, path=entry.path, cls=entry.cls, size=entry.size, status="restored"
            )
            append_audit(
                workspace,
                {
                    "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "op": "restore",
                    "oid": entry.oid,
                    "path": entry.path,
                },
            )
            restored.append(entry.oid)
    return restored
