"""``ita-vc reproduce RUN_ID``: re-run a recorded run with that commit's code, compare.

In a temporary ``git worktree`` at the snapshot's ``git_commit_hash`` (created with git hooks
off: DVC's post-checkout hook would run ``dvc checkout`` before the worktree shares the cache;
sharing the workspace's DVC cache through ``.dvc/config.local``): check out the recorded inputs
from the cache, write the recorded ``params.yaml``, run ``dvc repro --force`` of the stages the
run reproduced (every stage for a schema-1 snapshot) with that commit's code on
``PYTHONPATH``, then compare those stages' inputs, outputs and the metrics with the snapshot.
The user's workspace is not touched, and the worktree and its folder are removed whatever
happens.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ita_vc._version import __version__
from ita_vc.errors import VcsError
from ita_vc.snapshot.capture import SnapshotStore, environment
from ita_vc.snapshot.runner import _stream, pipeline_env
from ita_vc.vcs import gitcli
from ita_vc.vcs.dvc import cache_dir
from ita_vc.yaml_read import load_lockfile

if TYPE_CHECKING:
    from collections.abc import Callable

    from ita_vc.workspace import Workspace

__all__ = ["ReproduceReport", "recorded_stages", "reproduce_run"]


@dataclass
class ReproduceReport:
    """The comparison of a re-run with its snapshot."""

    run_id: str
    commit: str
    output_diffs: list[str] = field(default_factory=list)
    input_diffs: list[str] = field(default_factory=list)
    metric_diffs: list[str] = field(default_factory=list)
    package_diffs: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    engine_note: str | None = None

    @property
    def bit_exact(self) -> bool:
        """Same inputs, every output md5 and every metric identical."""
        return not (self.output_diffs or self.input_diffs or self.metric_diffs)


def recorded_stages(snapshot: dict[str, Any]) -> list[str]:
    """The ``dvc.yaml`` stages a run reproduced: ``stages`` (schema 2) or every stage of its
    recorded ``dvc.lock`` (schema 1)."""
    marks = snapshot.get("stages")
    if isinstance(marks, dict):
        names = [str(name) for name, state in marks.items() if state == "run"]
    else:
        names = [str(name) for name in ((snapshot.get("dvc_lock") or {}).get("stages") or {})]
    flow = str((snapshot.get("meta") or {}).get("flow") or "").removeprefix("dvc repro: ")
    order = {name: i for i, name in enumerate(flow.split(" -> "))}  # pipeline order
    return sorted(names, key=lambda name: (order.get(name, len(order)), name))


def _lock_hashes(lock: dict[str, Any], role: str, stages: list[str]) -> dict[str, str]:
    found = {}
    for name, body in (lock.get("stages") or {}).items():
        if name not in stages:
            continue
        for item in (body or {}).get(role) or []:
            found[str(item.get("path"))] = str(item.get("md5"))
    return found


def engine_note(snapshot: dict[str, Any]) -> str | None:
    """One line when the installed ita-vc does not implement the run's engine, or when only
    the ita-vc version differs; else None."""
    from ita_vc.backtest.run import (  # lazy: backtest.run imports numpy
        ENGINE_VERSION,
        SUPPORTED_ENGINES,
    )

    recorded = snapshot.get("engine_version")
    if recorded is not None and str(recorded) not in SUPPORTED_ENGINES:
        return (
            f"the installed engine is {ENGINE_VERSION}, the run used engine {recorded}: "
            "the backtest, report and grid outputs (trades, equity, metrics) may differ"
        )
    was = snapshot.get("ita_vc_version") or ((snapshot.get("env") or {}).get("packages") or {}).get(
        "ita-vc"
    )
    if was is not None and str(was) != __version__:
        return (
            f"ita-vc is {__version__} here, {was} when the run was recorded; it implements "
            f"the run's engine ({recorded or ENGINE_VERSION}), so its outputs should be identical"
        )
    return None


def _fetch_inputs(
    workspace: Workspace,
    snapshot: dict[str, Any],
    remote: str | None,
    timeout: float,
    progress: Callable[[str], None] | None,
) -> None:
    """The run's sources the cache lacks (a fresh clone), from the DVC remote."""
    from ita_vc.snapshot.objects import (  # lazy: DVC remotes only when needed
        data_source_objects,
        fetch_run_inputs,
    )

    fetched = fetch_run_inputs(
        workspace,
        snapshot,
        extra=data_source_objects(workspace.root, str(snapshot["git_commit_hash"])),
        dvc_remote=remote,
        timeout=timeout,
    )
    if fetched and progress is not None:
        progress(f"fetched {fetched} input object(s) from the DVC remote")


def reproduce_run(
    workspace: Workspace,
    run_id: str,
    *,
    progress: Callable[[str], None] | None = None,
    keep_worktree: bool = False,
    wait: float = 0,
    remote: str | None = None,
    timeout: float = 30.0,
) -> ReproduceReport:
    """Reproduce ``run_id`` (see the module docstring). It writes the shared DVC cache, so it
    holds the workspace lock (``wait`` seconds to get it). Inputs the local cache lacks (a
    fresh clone) are fetched first from ``remote`` (default: core.remote).

    Raises:
        UsageError: a malformed run id. ItaVcError: unknown run.
        WorkspaceLockedError: another command holds the workspace.
        VcsError: the worktree, the input checkout or ``dvc repro`` failed, or inputs are
            missing locally and on the remote. RemoteError: the remote refused or timed out.
    """
    snapshot = SnapshotStore(workspace).load_snapshot(run_id)
    commit = str(snapshot["git_commit_hash"])
    root = workspace.root
    stages = recorded_stages(snapshot)
    report = ReproduceReport(run_id, commit, stages=stages, engine_note=engine_note(snapshot))
    schema_1 = not isinstance(snapshot.get("stages"), dict)
    with workspace.lock(timeout=wait, purpose=f"ita-vc reproduce {run_id}"):
        _fetch_inputs(workspace, snapshot, remote, timeout, progress)
    with (
        workspace.lock(timeout=wait, purpose=f"ita-vc reproduce {run_id}"),
        gitcli.temporary_worktree(
            root, commit, f"ita-vc-reproduce-{run_id}-", keep=keep_worktree
        ) as tree,
    ):
        shared_cache = cache_dir(root)
        (tree / ".dvc").mkdir(exist_ok=True)
        (tree / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {shared_cache}\n")
        (tree / "params.yaml").write_text(
            yaml.safe_dump(snapshot.get("params") or {}, sort_keys=False), "utf-8"
        )
        dvc = str(Path(sys.executable).parent / "dvc")
        env = pipeline_env(tree)
        if (tree / "data.dvc").exists():
            code, lines = _stream([dvc, "checkout", "data.dvc"], tree, env, progress)
            if code != 0:
                raise VcsError(
                    "restoring the recorded inputs failed (`dvc pull` them into the "
                    "cache first):\n" + "\n".join(lines[-10:])
                )
        targets = [] if schema_1 else stages
        code, lines = _stream([dvc, "repro", "--force", *targets], tree, env, progress)
        if code != 0:
            raise VcsError(f"dvc repro at {commit[:10]} failed:\n" + "\n".join(lines[-20:]))
        lock = load_lockfile(tree / "dvc.lock") or {}
        recorded = snapshot.get("dvc_lock") or {}
        for role, diffs in (("deps", report.input_diffs), ("outs", report.output_diffs)):
            old, new = _lock_hashes(recorded, role, stages), _lock_hashes(lock, role, stages)
            for path in sorted(set(old) | set(new)):
                if old.get(path) != new.get(path):
                    diffs.append(f"{path}: recorded {old.get(path)}, reproduced {new.get(path)}")
        results = workspace.config.store.kinds["results"]
        metrics_path = tree.joinpath(*results.split("/"), "metrics.json")
        metrics: dict[str, Any] = (
            json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        )
        for key in sorted(set(metrics) | set(snapshot.get("metrics") or {})):
            was, now_value = (snapshot.get("metrics") or {}).get(key), metrics.get(key)
            if was != now_value:
                report.metric_diffs.append(f"{key}: recorded {was!r}, reproduced {now_value!r}")
        then: dict[str, str] = dict((snapshot.get("env") or {}).get("packages") or {})
        now: dict[str, str] = environment()["packages"]
        for name in sorted(set(then) | set(now)):
            if then.get(name) != now.get(name):
                report.package_diffs.append(f"{name}: {then.get(name)} -> {now.get(name)}")
    return report
