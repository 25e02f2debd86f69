"""The DVC objects a run needs, and fetching them: what ``ita-vc push`` sends for a run, what
``ita-vc pull`` verifies, and what ``ita-vc reproduce`` fetches in a fresh clone.

A run needs its recorded outs and its deps under DVC-tracked paths (the candles), directory
outputs file by file, and the objects ``data.dvc`` records at the run's commit (what reproducing
it checks out). Reproducing needs only the *sources*: a dep another recorded stage writes is
re-made.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ita_vc.errors import RemoteError, VcsError
from ita_vc.snapshot.verify import dvc_objects
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import local_objects, tracked_paths
from ita_vc.vcs.remote import DEFAULT_TIMEOUT, Remote, default_remote, open_remote
from ita_vc.yaml_read import YamlError, load_yaml_text

if TYPE_CHECKING:
    from pathlib import Path

    from ita_vc.snapshot.history import RecordedRun
    from ita_vc.workspace import Workspace

__all__ = [
    "data_source_objects",
    "describe_objects",
    "expand_dirs",
    "fetch_missing",
    "fetch_run_inputs",
    "run_needs",
]

Progress = Callable[[int, int], None]


def _dir_listing(root: Path, remote: Remote, oid: str) -> list[str] | None:
    """The object ids inside a ``.dir`` object (from the cache, else the remote), or None."""
    local = local_objects(root, [oid])
    try:
        raw = local[oid].read_bytes() if oid in local else remote.read_object(oid)
        entries = json.loads(raw)
        return [str(e["md5"]) for e in entries if isinstance(e, dict) and e.get("md5")]
    except (RemoteError, OSError, ValueError, TypeError):
        return None


def expand_dirs(
    root: Path, remote: Remote, wanted: dict[str, set[str]], labels: dict[str, str]
) -> None:
    """Add the files of every directory object (owned by the same owners)."""
    for oid in [o for o in wanted if o.endswith(".dir")]:
        inner = _dir_listing(root, remote, oid) or []
        for entry in inner:
            wanted.setdefault(entry, set()).update(wanted[oid])
            labels.setdefault(entry, f"{labels.get(oid, oid)}/{entry[:8]}")


def fetch_missing(
    root: Path,
    remote: Remote,
    wanted: dict[str, set[str]],
    labels: dict[str, str],
    jobs: int | None = None,
    progress: Progress | None = None,
) -> tuple[int, set[str]]:
    """Fetch what the cache lacks of ``wanted``: the directory listings first (so their files
    join ``wanted``), then the files. Returns (objects fetched, objects that failed)."""
    dirs = [o for o in wanted if o.endswith(".dir")]
    dirs = sorted(set(dirs) - set(local_objects(root, dirs)))
    failed = remote.fetch(dirs, jobs=jobs)
    expand_dirs(root, remote, wanted, labels)
    absent = sorted(set(wanted) - set(local_objects(root, sorted(wanted))))
    failed |= remote.fetch(absent, jobs=jobs, progress=progress)
    return len(dirs) + len(absent) - len(failed), failed


def data_source_objects(root: Path, commit: str) -> dict[str, str]:
    """``{object id: path}`` of the outs ``data.dvc`` records at ``commit`` (what reproducing a
    run at that commit checks out), or {} when there is none or it cannot be read."""
    spec = f"{commit}:data.dvc"
    blob = gitcli.cat_files(root, [spec]).get(spec)
    if blob is None:
        return {}
    try:
        doc = load_yaml_text(blob.decode("utf-8", "replace"), "data.dvc")
    except YamlError:
        return {}
    outs = doc.get("outs") if isinstance(doc, dict) else None
    return {
        str(out["md5"]): str(out.get("path", "data"))
        for out in outs or []
        if isinstance(out, dict) and isinstance(out.get("md5"), str)
    }


def run_needs(
    root: Path, runs: dict[str, RecordedRun], chosen: list[str], managed: list[str]
) -> tuple[dict[str, set[str]], dict[str, str]]:
    """What each run needs: its recorded outs and DVC-tracked deps, and the data sources
    (``data.dvc``) at its commit, which reproducing it checks out."""
    wanted: dict[str, set[str]] = {}
    labels: dict[str, str] = {}
    for run_id in chosen:
        snapshot = runs[run_id].snapshot
        objects = [(path, md5) for _role, path, md5 in dvc_objects(snapshot, managed)]
        commit = snapshot.get("git_commit_hash")
        if isinstance(commit, str) and commit:
            objects += [(p, o) for o, p in data_source_objects(root, commit).items()]
        for path, md5 in objects:
            wanted.setdefault(md5, set()).add(run_id)
            labels.setdefault(md5, path)
    return wanted, labels


def describe_objects(
    oids: list[str], wanted: dict[str, set[str]], labels: dict[str, str]
) -> list[str]:
    return [
        f"{labels.get(oid, '?')} ({oid}) - needed by {', '.join(sorted(wanted.get(oid, ())))}"
        for oid in oids
    ]


def _sources(
    root: Path, snapshot: dict[str, Any], extra: dict[str, str]
) -> tuple[dict[str, set[str]], dict[str, str]]:
    """The run's sources: recorded deps no recorded stage writes, and ``extra``."""
    recorded = dvc_objects(snapshot, tracked_paths(root))
    produced = [path for role, path, _md5 in recorded if role == "out"]
    deps = [
        (path, md5)
        for role, path, md5 in recorded
        if role == "dep" and not any(path == o or path.startswith(f"{o}/") for o in produced)
    ]
    deps += [(path, oid) for oid, path in extra.items()]
    return {md5: {"the run"} for _path, md5 in deps}, {md5: path for path, md5 in deps}


def _all_local(root: Path, wanted: dict[str, set[str]]) -> bool:
    """True when the cache holds every wanted object and every file of its directories (the
    directories' files join ``wanted``)."""
    dirs = [o for o in wanted if o.endswith(".dir")]
    local = local_objects(root, sorted(wanted))
    if not set(dirs) <= set(local):
        return False
    for oid in dirs:
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            for entry in json.loads(local[oid].read_bytes()):
                wanted.setdefault(str(entry["md5"]), {"the run"})
    return not set(wanted) - set(local_objects(root, sorted(wanted)))


def fetch_run_inputs(
    workspace: Workspace,
    snapshot: dict[str, Any],
    *,
    extra: dict[str, str] | None = None,
    dvc_remote: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Bring into the local cache the DVC-tracked inputs a run needs to be reproduced (its
    recorded deps under DVC-tracked paths that no recorded stage writes - the candles, not
    ``results/backtest`` - directory deps file by file, and ``extra``:
    ``{object id: path}`` such as the ``.dvc`` files' outs at the run's commit) that the cache
    lacks, from ``dvc_remote`` (default: core.remote). Returns how many objects were fetched; 0
    without opening any remote when nothing is missing.

    Raises:
        VcsError: objects missing locally with no DVC remote configured, or missing on the
            remote too (named). RemoteError: the remote refused or did not answer.
    """
    root = workspace.root
    wanted, labels = _sources(root, snapshot, extra or {})
    if _all_local(root, wanted):
        return 0
    if not (dvc_remote or default_remote(root)):
        raise VcsError(
            "the run's inputs are not in the local cache and no DVC remote is configured: "
            "`dvc remote add -d NAME URL`, or fetch them into the cache by hand"
        )
    with open_remote(root, dvc_remote, timeout=timeout) as remote:
        fetched, failed = fetch_missing(root, remote, wanted, labels)
        if failed:
            raise VcsError(
                f"{len(failed)} input object(s) of the run are neither in the local cache nor "
                f"on DVC remote {remote.name!r}:\n  "
                + "\n  ".join(describe_objects(sorted(failed), wanted, labels)[:20])
            )
    return fetched
