"""``ita-vc gc --cloud`` on a real S3 API: the local policy, the team's refs fetched first,
soft delete under the bucket's trash prefix, restore, purge, a killed gc settled, aliases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ita_vc.errors import ConfigError, RetentionRefusedError
from tests.helpers import REPO_ROOT, TmpRepo, invoke, run
from tests.team.test_team import _stored, _team

FUTURE = int(time.time()) + 400 * 86_400  # every commit is old then
AGED_POLICY = """\
candles: {paths: ["data/**"], retain_days: 1, strategy: delete}
results: {paths: ["results/**", "provenance/**"], retain_days: 1, strategy: delete}
keep_last_runs: 0
max_runs: null
safety_window_days: 7
exceptions: {active_rules: false}
"""


def _trashed(server, bucket: str) -> set[str]:
    return {
        k.split("/files/md5/", 1)[1].replace("/", "")
        for k in server.list_keys(bucket, ".ita-trash/store/")
    }


def _run_objects(repo: TmpRepo, run_id: str) -> set[str]:
    from ita_vc.snapshot.history import recorded_runs
    from ita_vc.snapshot.verify import dvc_objects
    from ita_vc.vcs.dvc import tracked_paths
    from ita_vc.workspace import Workspace

    snapshot = recorded_runs(Workspace.at(repo))[run_id].snapshot
    return {md5 for role, _path, md5 in dvc_objects(snapshot, tracked_paths(repo)) if role == "out"}


def _pinned_run_only_on_a_remote_branch(repo: TmpRepo, server, bucket: str, tmp_path: Path):
    """The run lives on branch ``exp`` (pinned), which only the git remote has; ``main`` is
    the commit before the run (+ the remote and an all-ages-out policy)."""
    run_id = repo.report.run_id
    _team(repo, server, bucket, tmp_path, hooks=False)
    team_commit = repo.git("rev-parse", "HEAD").stdout.strip()
    repo.git("branch", "exp")
    repo.git("reset", "-q", "--hard", repo.head_before)
    repo.git("cherry-pick", team_commit)
    (repo / "configs" / "retention.yaml").write_text(AGED_POLICY)
    repo.git("add", "configs/retention.yaml")
    repo.git("commit", "-q", "-m", "policy")
    repo.git("switch", "-q", "exp")
    assert invoke("runs", "keep", run_id).exit_code == 0
    assert invoke("push").exit_code == 0
    repo.git("switch", "-q", "main")
    assert invoke("push").exit_code == 0
    repo.git("branch", "-D", "exp")
    repo.git("tag", "-d", f"ita/keep/{run_id}")  # only the remote has the branch and the pin
    return run_id


def _gc(repo: TmpRepo, *, dry_run: bool, now: int = FUTURE):
    from ita_vc.retention.cloud import collect_cloud_garbage
    from ita_vc.workspace import Workspace

    return collect_cloud_garbage(Workspace.at(repo), dry_run=dry_run, yes=True, now=now)


@pytest.mark.slow
def test_gc_cloud_keeps_a_pinned_run_on_a_remote_only_branch_trashes_restores_purges(
    run_copy, s3_server, s3_bucket, tmp_path
):
    run_id = _pinned_run_only_on_a_remote_branch(run_copy, s3_server, s3_bucket, tmp_path)
    outs = _run_objects(run_copy, run_id)
    assert outs <= _stored(s3_server, s3_bucket)

    plan, facts, _ = _gc(run_copy, dry_run=True)  # fetches origin/exp and the pin first
    assert run_id in {r.run_id for r in facts.runs if r.pinned}
    decided = {d.oid: d for d in plan.decisions}
    assert all(decided[o].action == "keep" for o in outs)
    assert all("pinned run" in decided[o].reason for o in outs)
    before = _stored(s3_server, s3_bucket)
    dry = invoke("gc", "--cloud", "--dry-run")
    assert dry.exit_code == 0 and "remote retention plan" in dry.output, dry.output
    assert _stored(s3_server, s3_bucket) == before and _trashed(s3_server, s3_bucket) == set()

    # unpinned (here and on the remote: a pin either side keeps the objects): they age out
    run(["git", "tag", "-d", f"ita/keep/{run_id}"], cwd=run_copy)
    run(["git", "push", "-q", "origin", f":refs/tags/ita/keep/{run_id}"], cwd=run_copy)
    plan, _facts, report = _gc(run_copy, dry_run=False)
    trashed = {t["oid"] for t in report.trashed}
    assert outs <= trashed
    assert outs <= _trashed(s3_server, s3_bucket)
    assert not outs & _stored(s3_server, s3_bucket)
    workspace_kept = {d.oid for d in plan.decisions if d.reason == "used by the workspace"}
    assert workspace_kept and workspace_kept <= _stored(s3_server, s3_bucket)
    assert Path(run_copy, ".ita", "trash", "cloud-team.jsonl").exists()

    # pinned again: the next gc --cloud brings the objects back
    assert invoke("runs", "keep", run_id).exit_code == 0
    run(["git", "push", "-q", "origin", f"refs/tags/ita/keep/{run_id}"], cwd=run_copy)
    _plan, _facts, report = _gc(run_copy, dry_run=False)
    assert outs <= {r["oid"] for r in report.restored}
    assert outs <= _stored(s3_server, s3_bucket) and not outs & _trashed(s3_server, s3_bucket)
    run_copy.git("switch", "-q", "--detach", "origin/exp")  # where the run is recorded
    verify = invoke("snapshot", "verify", run_id, "--remote", "team")
    assert verify.exit_code == 0, verify.output
    run_copy.git("switch", "-q", "main")

    # unpinned again, trashed, and purged once the safety window has passed
    run(["git", "tag", "-d", f"ita/keep/{run_id}"], cwd=run_copy)
    run(["git", "push", "-q", "origin", f":refs/tags/ita/keep/{run_id}"], cwd=run_copy)
    _gc(run_copy, dry_run=False)
    _plan, _facts, early = _gc(run_copy, dry_run=False, now=int(time.time()) + 86_400)
    assert early.purged == []  # within safety_window_days of being trashed
    assert outs <= _trashed(s3_server, s3_bucket)
    _plan, _facts, late = _gc(run_copy, dry_run=False, now=FUTURE + 8 * 86_400)
    assert outs <= {p["oid"] for p in late.purged}
    assert not outs & (_trashed(s3_server, s3_bucket) | _stored(s3_server, s3_bucket))
    audit = (run_copy / "logs" / "retention-audit.jsonl").read_text()
    assert "cloud-trash" in audit and "cloud-restore" in audit and "cloud-purge" in audit


_KILL_IN_TRASH = textwrap.dedent(
    """
    import os, signal, sys
    from ita_vc.vcs import remote as r
    calls = [0]
    def trash(self, oid):
        src, dst = self._object_path(oid), self._trash_path(oid)
        calls[0] += 1
        self._fs.fs.copy(src, dst)
        if calls[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # copied, original not deleted yet
        self._fs.fs.rm_file(src)
    r.Remote.trash = trash
    from ita_vc.retention.cloud import collect_cloud_garbage
    from ita_vc.workspace import Workspace
    collect_cloud_garbage(Workspace.at("."), yes=True, now=int(sys.argv[1]))
    """
)


@pytest.mark.slow
def test_a_killed_gc_cloud_is_settled_by_the_next(run_copy, s3_server, s3_bucket, tmp_path):
    run_id = _pinned_run_only_on_a_remote_branch(run_copy, s3_server, s3_bucket, tmp_path)
    run(["git", "push", "-q", "origin", f":refs/tags/ita/keep/{run_id}"], cwd=run_copy)
    everything = _stored(s3_server, s3_bucket)
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_IN_TRASH, str(FUTURE)],
        cwd=run_copy,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    both = _stored(s3_server, s3_bucket) & _trashed(s3_server, s3_bucket)
    assert len(both) == 1  # the object being moved: in place and in the trash
    assert everything <= _stored(s3_server, s3_bucket) | _trashed(s3_server, s3_bucket)

    _plan, _facts, report = _gc(run_copy, dry_run=False)
    assert both <= set(report.recovered)
    assert everything <= _stored(s3_server, s3_bucket) | _trashed(s3_server, s3_bucket)
    assert not _stored(s3_server, s3_bucket) & _trashed(s3_server, s3_bucket)


def test_gc_cloud_refuses_without_the_team_refs(run_copy, s3_server, s3_bucket, tmp_path):
    _team(run_copy, s3_server, s3_bucket, tmp_path, hooks=False)
    run_copy.git("remote", "remove", "origin")
    result = invoke("gc", "--cloud", "--dry-run")
    assert result.exit_code == 7 and "no git remote 'origin'" in result.output
    run_copy.git("remote", "add", "origin", str(tmp_path / "gone.git"))
    result = invoke("gc", "--cloud")
    assert result.exit_code == 7 and "nothing was planned" in result.output
    assert _stored(s3_server, s3_bucket) == set()


def test_strategy_aliases_resolve_and_keep_their_name():
    from ita_vc.retention.policy import parse_policy

    policy = parse_policy(
        {
            "raw": {"paths": ["data/**"], "retain_days": 365, "strategy": "archive_to_s3"},
            "vectors": {"paths": ["data/vec/**"], "retain_days": 30, "strategy": "prune_old"},
        }
    )
    raw, vectors = policy.classes
    assert (raw.strategy, raw.written) == ("archive", "archive_to_s3")
    assert (vectors.strategy, vectors.written) == ("delete", "prune_old")
    with pytest.raises(ConfigError, match="retain_days"):
        parse_policy({"v": {"paths": ["x/**"], "retain_days": None, "strategy": "prune_old"}})
    with pytest.raises(ConfigError, match="archive_to_s3, prune_old"):
        parse_policy({"v": {"paths": ["x/**"], "retain_days": 1, "strategy": "archive_to_s4"}})


def test_archive_to_s3_refuses_an_archive_remote_that_is_not_s3(workspace, tmp_repo, tmp_path):
    from ita_vc.retention.apply import collect_garbage

    tmp_repo.dvc_gen({"data/candles/x.csv": "a,b\n1,2\n"}, commit="candles")
    tmp_repo.dvc("remote", "add", "archive", str(tmp_path / "folder-remote"))
    (tmp_repo / "configs" / "retention.yaml").write_text(
        'raw: {paths: ["data/**"], retain_days: 0, strategy: archive_to_s3}\n'
        "keep_last_runs: 0\nmax_runs: null\n"
    )
    tmp_repo.git("rm", "-q", "data/candles/x.csv.dvc")
    tmp_repo.git("commit", "-q", "-m", "drop the data from the workspace")
    with pytest.raises(RetentionRefusedError, match="archive_to_s3 needs an S3 archive remote"):
        collect_garbage(workspace, yes=True, now=FUTURE)
    assert not (tmp_path / "folder-remote").exists()  # nothing archived, nothing removed


def test_gc_cloud_on_a_folder_remote_trashes_beside_it(run_copy, tmp_path):
    run_id = run_copy.report.run_id
    run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], cwd=tmp_path)
    run_copy.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    folder = tmp_path / "store"
    run_copy.dvc("remote", "add", "-d", "team", str(folder))
    (run_copy / "configs" / "retention.yaml").write_text(AGED_POLICY)
    run_copy.git("add", ".dvc/config", "configs/retention.yaml")
    run_copy.git("commit", "-q", "-m", "remote and policy")
    assert invoke("push").exit_code == 0
    run_copy.git("rm", "-q", "dvc.lock")  # the workspace no longer uses the run's results
    run_copy.git("commit", "-q", "-m", "drop the results")
    assert invoke("push").exit_code == 0
    outs = _run_objects(run_copy, run_id)
    stored = folder / "files" / "md5"
    assert all((stored / o[:2] / o[2:]).exists() for o in outs)

    _plan, _facts, report = _gc(run_copy, dry_run=False)
    trash = tmp_path / "store.ita-trash" / "files" / "md5"
    assert report.trash.endswith("store.ita-trash/files/md5")
    assert outs <= {t["oid"] for t in report.trashed}
    assert all((trash / o[:2] / o[2:]).exists() for o in outs)
    assert not any((stored / o[:2] / o[2:]).exists() for o in outs)
