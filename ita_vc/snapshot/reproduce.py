"""``ita-vc reproduce RUN_ID``: re-run a recorded run with that commit's code, compare.

In a temporary ``git worktree`` at the snapshot's ``git_commit_hash`` (sharing the workspace's
DVC cache through ``.dvc/config.local``): check out the recorded inputs from the cache, write the
recorded ``params.yaml``, run ``dvc repro --force`` with that commit's code on ``PYTHONPATH``,
then compare every output md5 and metric with the snapshot. The user's workspace is not touched.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ita_vc.errors import VcsError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ita_vc.workspace import Workspace

__all__ = ["ReproduceReport", "reproduce_run"]


@dataclass
class ReproduceReport:
    """The comparison of a re-run with its snapshot."""

    run_id: str
    commit: str
    output_diffs: list[str] = field(default_factory=list)
    input_diffs: list[str] = field(default_factory=list)
    metric_diffs: list[str] = field(default_factory=list)
    package_diffs: list[str] = field(default_factory=list)

    @property
    def bit_exact(self) -> bool:
        """Same inputs, every output md5 and every metric identical."""
        return not (self.output_diffs or self.input_diffs or self.metric_diffs)


def _lock_hashes(lock: dict[str, Any], role: str) -> dict[str, str]:
    found = {}
    for body in (lock.get("stages") or {}).values():
        for item in (body or {}).get(role) or []:
            found[str(item.get("path"))] = str(item.get("md5"))
    return found


def reproduce_run(
    workspace: Workspace, run_id: str, *, progress: Callable[[str], None] | None = None,
    keep_worktree: bool = False,
) -> ReproduceReport:
    """Reproduce ``run_id`` (see the module docstring).

    Raises:
        ItaVcError: unknown run. VcsError: the worktree or ``dvc repro`` failed.
    """
    import yaml

    from ita_vc.snapshot.capture import RunProvenance, environment
    from ita_vc.snapshot.runner import _stream, pipeline_env
    from ita_vc.vcs import gitcli
    from ita_vc.vcs.dvc import cache_dir
    from ita_vc.yamlio import load_yaml_file

    snapshot = RunProvenance(workspace).load_snapshot(run_id)
    commit = str(snapshot["git_commit_hash"])
    root = workspace.root
    report = ReproduceReport(run_id, commit)
    base = Path(tempfile.mkdtemp(prefix=f"ita-vc-reproduce-{run_id}-"))
    tree = base / "worktree"
    shared_cache = cache_dir(root)
    gitcli.git(["worktree", "add", "--detach", "-q", str(tree), commit], root)
    try:
        (tree / ".dvc").mkdir(exist_ok=True)
        (tree / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {shared_cache}\n")
        (tree / "params.yaml").write_text(
            yaml.safe_dump(snapshot.get("params") or {}, sort_keys=False), "utf-8")
        dvc = str(Path(sys.executable).parent / "dvc")
        env = pipeline_env(tree)
        if (tree / "data.dvc").exists():
            code, lines = _stream([dvc, "checkout", "data.dvc"], tree, env, progress)
            if code != 0:
                raise VcsError("restoring the recorded inputs failed (`dvc pull` them into the "
                               "cache first):\n" + "\n".join(lines[-10:]))
        code, lines = _stream([dvc, "repro", "--force"], tree, env, progress)
        if code != 0:
            raise VcsError(f"dvc repro at {commit[:10]} failed:\n" + "\n".join(lines[-20:]))
        lock = load_yaml_file(tree / "dvc.lock") or {}
        recorded = snapshot.get("dvc_lock") or {}
        for role, diffs in (("deps", report.input_diffs), ("outs", report.output_diffs)):
            old, new = _lock_hashes(recorded, role), _lock_hashes(lock, role)
            for path in sorted(set(old) | set(new)):
                if old.get(path) != new.get(path):
                    diffs.append(f"{path}: recorded {old.get(path)}, reproduced {new.get(path)}")
        metrics_path = tree / "results" / "metrics.json"
        import json

        metrics: dict[str, Any] = (json.loads(metrics_path.read_text())
                                   if metrics_path.exists() else {})
        for key in sorted(set(metrics) | set(snapshot.get("metrics") or {})):
            was, now_value = (snapshot.get("metrics") or {}).get(key), metrics.get(key)
            if was != now_value:
                report.metric_diffs.append(f"{key}: recorded {was!r}, reproduced {now_value!r}")
        then: dict[str, str] = dict((snapshot.get("env") or {}).get("packages") or {})
        now: dict[str, str] = environment()["packages"]
        for name in sorted(set(then) | set(now)):
            if then.get(name) != now.get(name):
                report.package_diffs.append(f"{name}: {then.get(name)} -> {now.get(name)}")
    finally:
        if not keep_worktree:
            gitcli.git(["worktree", "remove", "--force", str(tree)], root, check=False)
            shutil.rmtree(base, ignore_errors=True)
            gitcli.git(["worktree", "prune"], root, check=False)
    return report
