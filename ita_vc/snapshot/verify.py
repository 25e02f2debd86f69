"""``ita-vc snapshot verify``: is a run still what its snapshot says?

Checks, without re-hashing data: the snapshot's own hash (tamper evidence); the rule file's
``params_hash`` against the registry; every recorded out and dep object present in the DVC
cache (each file of a directory object too), or on a remote; the run's manifest (schema 4)
hashing to ``artifacts_manifest_sha`` and listing files of the recorded outputs. ``deep`` also
re-hashes every object (DVC's md5 of the bytes), each manifest file's sha256 from its cached
object, and recomputes the data hash from the prepared candles.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.errors import ItaVcError
from ita_vc.rules.registry import RuleRegistry
from ita_vc.snapshot.capture import SnapshotStore, check_run_id, snapshot_hash
from ita_vc.snapshot.manifest import load_manifest, manifest_relpath, manifest_sha
from ita_vc.utils.hashing import hash_file, md5_file
from ita_vc.utils.tablehash import hash_dataframe
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import cache_paths, local_objects, tracked_paths

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from ita_vc.workspace import Workspace

__all__ = ["Check", "VerifyReport", "dvc_objects", "verify_run"]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Check:
    """One verification: what, whether it passed, and the details that name the problem."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class VerifyReport:
    """Every check of one run."""

    run_id: str
    checks: list[Check] = field(default_factory=list)
    bytes_hashed: int = 0
    hashed_paths: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]


def _objects(snapshot: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(role, path, md5)`` of every out and dep with a hash in the recorded dvc.lock."""
    found: dict[tuple[str, str], str] = {}
    stages = (snapshot.get("dvc_lock") or {}).get("stages") or {}
    for body in stages.values():
        for role in ("deps", "outs"):
            for item in (body or {}).get(role) or []:
                if item.get("md5"):
                    found.setdefault((role.rstrip("s"), str(item.get("path"))), item["md5"])
    return [(role, path, md5) for (role, path), md5 in sorted(found.items())]


def _check_git_deps(
    workspace: Workspace,
    snapshot: Mapping[str, Any],
    deps: list[tuple[str, str, str]],
    report: VerifyReport,
) -> None:
    """Deps git tracks (code, rules, configs): at the run's commit, files must hash to the
    recorded md5 and folders must exist."""
    commit = str(snapshot.get("git_commit_hash"))
    specs = [f"{commit}:{path}" for _role, path, _md5 in deps]
    blobs = gitcli.cat_files(workspace.root, specs) if specs else {}
    bad = []
    for (_role, path, md5), spec in zip(deps, specs, strict=True):
        blob = blobs.get(spec)
        if md5.endswith(".dir"):
            listing = gitcli.git(
                ["ls-tree", "--name-only", commit, "--", path], workspace.root, check=False
            )
            if not listing.strip():
                bad.append(f"{path}: not in commit {commit[:10]}")
        elif blob is None:
            bad.append(f"{path}: not in commit {commit[:10]}")
        elif hashlib.md5(blob, usedforsecurity=False).hexdigest() != md5:
            bad.append(f"{path}: at {commit[:10]} it does not hash to the recorded {md5}")
    report.checks.append(
        Check(
            "git-tracked deps at the run's commit",
            not bad,
            f"{len(deps)} dep(s) match" if not bad else "; ".join(bad[:20]),
        )
    )


def _mark_trashed(workspace: Workspace, missing: list[str]) -> list[str]:
    """Say which missing objects the retention trash holds (restorable)."""
    marked = []
    for item in missing:
        oid = item.rsplit("(", 1)[-1].rstrip(")")
        in_trash = "(" in item and workspace.trashed_object_path(oid).exists()
        marked.append(f"{item} - in the trash (`ita-vc trash restore`)" if in_trash else item)
    return marked


def _check_snapshot_hash(snapshot: dict[str, Any], report: VerifyReport) -> None:
    """Tamper evidence: the recorded hash equals the content's."""
    recorded = snapshot.get("snapshot_sha256")
    computed = snapshot_hash(snapshot)
    report.checks.append(
        Check(
            "snapshot hash",
            recorded == computed,
            "unchanged"
            if recorded == computed
            else f"the snapshot was modified after it was written (tampered): recorded {recorded}, "
            f"content hashes to {computed}",
        )
    )


def _check_rule(workspace: Workspace, snapshot: dict[str, Any], report: VerifyReport) -> None:
    """The rule file's ``params_hash`` against the registry."""
    try:
        rule = RuleRegistry(workspace).verify(
            str(snapshot.get("setup_id")),
            str(snapshot.get("rule_version")),
            params_hash=snapshot.get("params_hash"),
        )
        report.checks.append(Check("rule params_hash", True, f"{rule.path} {rule.params_hash}"))
    except ItaVcError as exc:
        report.checks.append(Check("rule params_hash", False, str(exc)))


def _split_objects(
    snapshot: dict[str, Any],
    managed: list[str],
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The recorded objects DVC holds (outs, deps under DVC-tracked paths) and the git deps."""

    def in_dvc(path: str) -> bool:
        return any(path == m or path.startswith(m + "/") for m in managed)

    all_objects = _objects(snapshot)
    objects = [o for o in all_objects if o[0] == "out" or in_dvc(o[1])]
    git_deps = [o for o in all_objects if o not in objects]
    return objects, git_deps


def dvc_objects(snapshot: dict[str, Any], managed: list[str]) -> list[tuple[str, str, str]]:
    """``(role, path, md5)`` of the run's recorded objects that live in DVC's cache (every out,
    and the deps under a DVC-tracked path such as the candles): what a teammate needs
    to verify or reproduce the run. ``managed``: :func:`ita_vc.vcs.dvc.tracked_paths`."""
    return _split_objects(snapshot, managed)[0]


def _dir_entries(
    workspace: Workspace,
    label: str,
    md5: str,
    cache: Path,
    files: list[tuple[str, str, Path]],
    missing: list[str],
) -> None:
    """Each file of a directory object: into ``files`` if cached, else into ``missing``."""
    try:
        entries = json.loads(cache.read_bytes())
    except ValueError:
        missing.append(f"{label}: unreadable directory manifest {md5}")
        return
    inner = cache_paths(workspace.root, [e["md5"] for e in entries])
    for entry in entries:
        target = inner[entry["md5"]]
        entry_label = f"{label}/{entry['relpath']}"
        if target.is_file():
            files.append((entry_label, entry["md5"], target))
        else:
            missing.append(f"{entry_label} ({entry['md5']})")


def _locate_objects(
    workspace: Workspace,
    objects: list[tuple[str, str, str]],
) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """The cached files (label, md5, cache path) and the missing objects, in record order."""
    paths = cache_paths(workspace.root, [md5 for _r, _p, md5 in objects])
    missing: list[str] = []
    files: list[tuple[str, str, Path]] = []  # (label, md5, cache path)
    for role, path, md5 in objects:
        cache = paths[md5]
        if not cache.is_file():
            missing.append(f"{role} {path} ({md5})")
            continue
        files.append((f"{role} {path}", md5.removesuffix(".dir"), cache))
        if md5.endswith(".dir"):
            _dir_entries(workspace, f"{role} {path}", md5, cache, files, missing)
    return files, missing


def _oid_of(item: str) -> str:
    return item.rsplit("(", 1)[-1].rstrip(")")


def _still_missing(
    workspace: Workspace, missing: list[str], remote: str | None, timeout: float
) -> list[str]:
    """The missing objects the remote does not hold either (a directory object the remote
    holds: each of its files too, from its listing read on the remote - nothing is
    downloaded into the cache), the trashed ones marked."""
    if missing and remote:
        from ita_vc.vcs.remote import open_remote  # lazy: DVC remotes only with --remote

        with open_remote(workspace.root, remote, timeout=timeout) as store:
            held = store.has([_oid_of(m) for m in missing if "(" in m])
            inner: list[tuple[str, str]] = []
            for item in missing:
                oid = _oid_of(item)
                if oid.endswith(".dir") and oid in held:
                    label = item.rsplit(" (", 1)[0]
                    entries = json.loads(store.read_object(oid))
                    inner += [(f"{label}/{e['relpath']}", str(e["md5"])) for e in entries]
            local = local_objects(workspace.root, [md5 for _label, md5 in inner])
            wanted = [(label, md5) for label, md5 in inner if md5 not in local]
            inner_held = store.has([md5 for _label, md5 in wanted])
        missing = [m for m in missing if _oid_of(m) not in held]
        missing += [f"{label} ({md5})" for label, md5 in wanted if md5 not in inner_held]
    if missing:
        missing = _mark_trashed(workspace, missing)
    return missing


def _check_content(
    files: list[tuple[str, str, Path]], report: VerifyReport, progress: Callable[[int], None] | None
) -> None:
    """Deep: every cached object re-hashed."""
    bad: list[str] = []
    for label, md5, cache in files:
        report.bytes_hashed += cache.stat().st_size
        report.hashed_paths.append(cache)
        if md5_file(cache, progress) != md5:
            bad.append(f"{label}: {cache} does not hash to {md5}")
    report.checks.append(
        Check(
            "deep: object content",
            not bad,
            f"{len(files)} object(s) re-hashed" if not bad else "; ".join(bad[:20]),
        )
    )


def _check_data_hash(
    files: list[tuple[str, str, Path]], snapshot: dict[str, Any], report: VerifyReport
) -> None:
    """Deep: the data hash recomputed from the prepared candles."""
    prepared = next(
        (c for label, _m, c in files if label.endswith("/candles.parquet") and "prepared" in label),
        None,
    )
    if prepared is None:
        report.checks.append(Check("deep: data_hash", False, "prepared candles not in cache"))
        return
    import pandas as pd  # lazy: only a deep verify reads the candles

    frame = pd.read_parquet(prepared)
    data_hash = hash_dataframe(frame[["ts_utc", "open", "high", "low", "close", "volume"]])
    ok = data_hash == snapshot.get("data_hash")
    report.checks.append(
        Check(
            "deep: data_hash",
            ok,
            data_hash
            if ok
            else f"prepared candles hash to {data_hash}, the snapshot says "
            f"{snapshot.get('data_hash')}",
        )
    )


def _check_manifest(
    workspace: Workspace,
    snapshot: dict[str, Any],
    files: list[tuple[str, str, Path]],
    report: VerifyReport,
    deep: bool,
) -> None:
    """Schema 4: the committed manifest hashes to ``artifacts_manifest_sha`` and lists files of
    the recorded outputs; ``deep``: each file's sha256, computed from its DVC cache object."""
    expected = snapshot.get("artifacts_manifest_sha")
    if expected is None:
        return  # a snapshot from before manifests (schema < 4)
    run_id = str(snapshot.get("run_id"))
    try:
        manifest = load_manifest(workspace, run_id)
    except ItaVcError as exc:
        report.checks.append(Check("manifest", False, str(exc)))
        return
    rel = manifest_relpath(workspace, run_id)
    if manifest is None:
        report.checks.append(Check("manifest", False, f"{rel} is missing"))
        return
    outs = [str(o.get("path")) for o in snapshot.get("outputs") or []]
    stray = [
        f["path"]
        for f in manifest["files"]
        if not any(f["path"] == o or f["path"].startswith(o + "/") for o in outs)
    ]
    sha = manifest_sha(manifest)
    problems = [f"{rel} hashes to {sha}, the snapshot says {expected}"] if sha != expected else []
    problems += [f"{p}: not in a recorded output" for p in stray[:20]]
    report.checks.append(
        Check(
            "manifest",
            not problems,
            f"{len(manifest['files'])} file(s), {sha}" if not problems else "; ".join(problems),
        )
    )
    if not deep or problems:
        return
    cached = {label.removeprefix("out "): path for label, _md5, path in files}
    bad = []
    for entry in manifest["files"]:
        path = cached.get(entry["path"])
        if path is None:
            bad.append(f"{entry['path']}: no cached object")
            continue
        sha256, size = hash_file(path)
        report.bytes_hashed += size
        if (sha256, size) != (entry["sha256"], entry["size"]):
            bad.append(f"{entry['path']}: {sha256} ({size:,} bytes), manifest {entry['sha256']}")
    report.checks.append(
        Check(
            "deep: manifest sha256",
            not bad,
            f"{len(manifest['files'])} file(s) re-hashed" if not bad else "; ".join(bad[:20]),
        )
    )


def verify_run(
    workspace: Workspace,
    run_id: str,
    *,
    deep: bool = False,
    remote: str | None = None,
    progress: Callable[[int], None] | None = None,
    timeout: float = 30.0,
) -> VerifyReport:
    """Verify one run (see the module docstring); never raises for a failed check.

    Raises:
        UsageError: a malformed run id.
        VcsError: DVC cannot read the pipeline files (an invalid dvc.lock).
        RemoteError, ConfigError: ``remote`` refused, did not answer or does not exist.
    """
    check_run_id(run_id)  # a malformed id is a usage error, not a failed verification
    report = VerifyReport(run_id)
    provenance = SnapshotStore(workspace)
    try:
        snapshot = provenance.load_snapshot(run_id)
    except ItaVcError as exc:
        report.checks.append(Check("snapshot", False, str(exc)))
        return report
    _check_snapshot_hash(snapshot, report)
    _check_rule(workspace, snapshot, report)
    objects, git_deps = _split_objects(snapshot, tracked_paths(workspace.root))
    _check_git_deps(workspace, snapshot, git_deps, report)
    files, missing = _locate_objects(workspace, objects)
    missing = _still_missing(workspace, missing, remote, timeout)
    report.checks.append(
        Check(
            "objects in the DVC cache" + (f" or remote {remote}" if remote else ""),
            not missing,
            f"{len(files)} object(s) present"
            if not missing
            else f"{len(missing)} missing: " + "; ".join(missing[:20]),
        )
    )
    _check_manifest(workspace, snapshot, files, report, deep)
    if deep:
        _check_content(files, report, progress)
        _check_data_hash(files, snapshot, report)
    return report
