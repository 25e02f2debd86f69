"""``ita-vc jobs adopt JOB``: a succeeded job's outputs become a committed run.

Only when the workspace would produce exactly those outputs: the params sections the stages
read equal the frozen request's, the candles file has the recorded md5, the pinned engine is
the request's, and every git-tracked dependency of the job's stages is unchanged between the
job's commit and HEAD (and not modified in the working tree). Otherwise it refuses and says what
differs. Then, as ``ita-vc run`` (its own lock, checks, journal and commit): the job's files
are written into the stages' outputs, ``dvc commit`` records them in ``dvc.lock``, and the run
reproduces the stages - which DVC finds up to date - and snapshots and commits them; the
snapshot, manifest and record are ``ita-vc run``'s.
"""

from __future__ import annotations

import os
import shutil
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ita_vc.errors import (
    DirtyWorkspaceError,
    IntegrityError,
    JobStoreError,
    UsageError,
    VcsError,
)
from ita_vc.utils.atomic import atomic_write_bytes
from ita_vc.utils.hashing import md5_file
from ita_vc.vcs import gitcli

if TYPE_CHECKING:
    from pathlib import Path

    from ita_vc.jobs.store import JobStore
    from ita_vc.snapshot.runner import RunReport
    from ita_vc.workspace import Workspace

__all__ = ["adopt_job", "adoption_differences"]

_SECTIONS = ("rule", "data", "backtest", "grid", "validation")


_ABSENT = object()


def _shown(value: object) -> str:
    return "(absent)" if value is _ABSENT else repr(value)[:80]


def _params_differences(
    params: dict[str, Any], frozen: dict[str, Any], sections: tuple[str, ...]
) -> list[str]:
    """Each params key of ``sections`` whose value differs, with both values."""
    from ita_vc.utils.mappings import flatten

    diffs = []
    for section in sections:
        here, there = params.get(section), frozen.get(section)
        if here == there:
            continue
        if not (isinstance(here, dict) and isinstance(there, dict)):
            diffs.append(f"params.yaml: {section}: {here!r} here, {there!r} in the job")
            continue
        flat_here, flat_there = flatten(here, section), flatten(there, section)
        for key in sorted(set(flat_here) | set(flat_there)):
            if flat_here.get(key, _ABSENT) != flat_there.get(key, _ABSENT):
                diffs.append(
                    f"params.yaml: {key}: {_shown(flat_here.get(key, _ABSENT))} here, "
                    f"{_shown(flat_there.get(key, _ABSENT))} in the job (-S {key}=...)"
                )
    return diffs


def _candles_difference(root: Path, data: dict[str, Any]) -> str | None:
    """Why the workspace's candles are not the job's (None: they are)."""
    from ita_vc.errors import DataValidationError
    from ita_vc.jobs.worker import inside

    rel = str(data.get("path"))
    try:
        path = inside(root, rel, "data.path")
    except DataValidationError as exc:
        return str(exc)
    # a regular file only: a FIFO would block the read
    if path.is_symlink() or not path.is_file() or md5_file(path) != data.get("md5"):
        return f"{rel}: not the job's candles (md5 {data.get('md5')})"
    return None


def _dependency_differences(
    root: Path, request: dict[str, Any], stages: list[str], candles: str
) -> list[str]:
    """DVC cannot run the stages here (missing params), the job's commit is missing, or a
    git-tracked dependency changed since it."""
    from ita_vc.jobs.worker import ensure_commit
    from ita_vc.vcs.dvc import missing_stage_params, stage_paths

    try:
        missing = missing_stage_params(root, stages)  # what `dvc commit` would refuse
    except VcsError as exc:
        missing = [str(exc)]
    if missing:
        return [f"DVC cannot run the {' and '.join(stages)} stage here: {m}" for m in missing]
    commit = str(request.get("git_commit"))
    try:
        ensure_commit(root, commit)
    except (IntegrityError, VcsError) as exc:
        return [str(exc)]
    deps, outs = stage_paths(root, stages)
    tracked = [
        d for d in deps if d != candles and not any(d == o or d.startswith(o + "/") for o in outs)
    ]
    if not tracked:
        return []
    changed = (
        gitcli.git(["diff", "--name-only", commit, "--", *tracked], root)
        .decode("utf-8", "replace")
        .split()
    )
    return [f"{path}: changed since the job's commit {commit[:10]}" for path in changed]


def adoption_differences(workspace: Workspace, request: dict[str, Any]) -> list[str]:
    """What differs between the workspace and the job's frozen request (empty: adoptable)."""
    from ita_vc.pipeline.engine_pin import pinned_engine
    from ita_vc.snapshot.runner import _load_params_text, _read_params

    root = workspace.root
    grid = request.get("kind") == "grid"
    params = _load_params_text(_read_params(workspace.contained("params.yaml")))
    frozen = request.get("params")
    sections = ("rule", "data", "backtest") + (("grid", "validation") if grid else ())
    diffs = _params_differences(params, frozen if isinstance(frozen, dict) else {}, sections)
    engine = pinned_engine(root)
    if engine != request.get("engine"):
        diffs.append(f"dvc.yaml pins engine {engine}, the job ran engine {request.get('engine')}")
    data = request.get("data")
    data = data if isinstance(data, dict) else {}
    if (why := _candles_difference(root, data)) is not None:
        diffs.append(why)
    stages = ["grid"] if grid else ["prepare", "backtest", "report"]
    return diffs + _dependency_differences(root, request, stages, str(data.get("path")))


def _checked_names(files: dict[str, bytes], outs: list[str]) -> None:
    """Every stored file name is a plain relative path inside one of the stage outputs.

    Raises:
        JobStoreError: a name with ``..``, an absolute path, or outside the outputs (a damaged
            or hostile store: nothing is written).
    """
    for name in files:
        parts = PurePosixPath(name).parts
        if (
            not parts
            or PurePosixPath(name).as_posix() != name  # "a//b", "a/", "./a"
            or PurePosixPath(name).is_absolute()
            or any(p in ("", ".", "..") for p in parts)
            or "\\" in name
            or not any(name == o or name.startswith(o + "/") for o in outs)
        ):
            raise JobStoreError(
                f"the job's stored output {name!r} is not a file of its stages' outputs "
                f"({', '.join(outs)}): the job store is damaged; nothing was written"
            )


def _write_outputs(workspace: Workspace, files: dict[str, bytes], outs: list[str]) -> None:
    """The job's files in place of the stage outputs: each output folder is built beside it,
    then swapped in (the previous one stays in the DVC cache)."""
    _checked_names(files, outs)
    for out in outs:
        target = workspace.contained(out)
        inside = {n: d for n, d in files.items() if n.startswith(out + "/")}
        if out in files:
            atomic_write_bytes(target, files[out])
            continue
        if not inside:
            continue
        staging = workspace.contained(f"{out}.ita-adopt")
        shutil.rmtree(staging, ignore_errors=True)
        for name, data in sorted(inside.items()):
            atomic_write_bytes(staging / name[len(out) + 1 :], data)
        old = workspace.contained(f"{out}.ita-old")
        shutil.rmtree(old, ignore_errors=True)
        if target.is_dir() and not target.is_symlink():
            target.rename(old)
        elif os.path.lexists(target):
            target.unlink()
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)


def adopt_job(
    workspace: Workspace,
    store: JobStore,
    job_id: int,
    *,
    note: str | None = None,
    wait: float = 0,
) -> RunReport:
    """Adopt a succeeded job (see the module docstring); the run's report.

    Raises:
        UsageError: the job did not succeed. ItaVcError: no such job.
        DirtyWorkspaceError: the workspace differs from the job's request (each difference
            named), or uncommitted changes.
        JobStoreError: a stored output is damaged.
    """
    from ita_vc.snapshot.runner import run_pipeline
    from ita_vc.vcs.dvc import commit_stages, stage_paths

    job = store.get(job_id)
    if job.state != "succeeded" or job.result is None:
        raise UsageError(
            f"job {job_id} is {job.state}: only a succeeded job can be adopted"
            + (f" ({job.last_error})" if job.last_error else "")
        )
    request = job.request
    diffs = adoption_differences(workspace, request)
    if diffs:
        raise DirtyWorkspaceError(
            f"job {job_id} cannot be adopted here: the workspace would not produce its "
            "outputs:\n  " + "\n  ".join(diffs)
        )
    files = store.files(job_id)
    stages = ["grid"] if job.kind == "grid" else ["prepare", "backtest", "report"]
    _deps, outs = stage_paths(workspace.root, stages)  # this workspace's outputs, not the store's
    _checked_names(files, outs)

    def place_outputs() -> None:
        if adoption_differences(workspace, request):  # re-checked under the run's lock
            raise DirtyWorkspaceError(f"the workspace changed while adopting job {job_id}")
        _write_outputs(workspace, files, outs)
        commit_stages(workspace.root, stages)

    return run_pipeline(
        workspace,
        stages=["report", "grid"] if "grid" in stages else ["report"],
        note=" ".join(
            part
            for part in (note or job.note, f"[adopted job {job_id}, request {job.request_hash}]")
            if part
        ),
        wait=wait,
        before_repro=place_outputs,
    )
